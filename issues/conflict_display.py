"""How the conflict-resolution page shows a conflict and reads a person's decision.

Presentation only: each conflicted field becomes a `ConflictView` (base / local / remote,
each marked against the base: a word diff for text, added/removed elements for sets), and
`ResolutionForm` turns the posted choices into (conflict, strategy, value) decisions for
`issues.services.issues.conflict_resolve`.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Sequence
from typing import Any

from django import forms

from issues.canonical import FIELDS, SET_FIELDS, normalise_value
from issues.models import Conflict, ConflictResolution, IssueState

FIELD_LABELS = {
    "title": "Title",
    "body": "Description",
    "state": "State",
    "labels": "Labels",
    "assignees": "Assignees",
    "milestone": "Milestone",
}
_TOKENS = re.compile(r"(\s+)")


@dataclasses.dataclass(frozen=True)
class Segment:
    op: str  # "equal" | "insert" | "delete"
    text: str


@dataclasses.dataclass(frozen=True)
class Element:
    name: str
    status: str  # "kept" | "added" | "removed" (against the base) | "only" (base unknown)


@dataclasses.dataclass
class SideView:
    value: Any
    changed: bool
    display: str = ""
    segments: list[Segment] = dataclasses.field(default_factory=list)
    elements: list[Element] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class ConflictView:
    conflict: Conflict
    field: str
    label: str
    kind: str  # "text" | "set" | "scalar"
    base: SideView | None
    local: SideView
    remote: SideView
    multiline: bool
    offers_merge: bool
    # Bound form fields, attached by the view.
    choice_field: Any = None
    merged_field: Any = None


def word_diff(old: str, new: str) -> list[Segment]:
    """`new` against `old`, word by word (whitespace kept), as equal/insert/delete runs."""
    a, b = _TOKENS.split(old), _TOKENS.split(new)
    segments: list[Segment] = []
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            segments.append(Segment("equal", "".join(a[i1:i2])))
            continue
        if op in ("delete", "replace"):
            segments.append(Segment("delete", "".join(a[i1:i2])))
        if op in ("insert", "replace"):
            segments.append(Segment("insert", "".join(b[j1:j2])))
    return [s for s in segments if s.text]


def set_elements(
    value: Sequence[str], reference: Sequence[str] | None, *, base_known: bool
) -> list[Element]:
    """Elements of `value`, and the ones of `reference` it dropped, marked against it."""
    mine = set(value)
    if reference is None:
        return [Element(name, "kept") for name in sorted(mine)]
    theirs = set(reference)
    if not base_known:  # compared with the other side: what only this side holds
        return [Element(n, "kept" if n in theirs else "only") for n in sorted(mine)]
    out = []
    for name in sorted(mine | theirs):
        if name in mine and name in theirs:
            out.append(Element(name, "kept"))
        elif name in mine:
            out.append(Element(name, "added"))
        else:
            out.append(Element(name, "removed"))
    return out


def _display(field: str, value: Any) -> str:
    if field in SET_FIELDS:
        return ", ".join(value) if value else "(none)"
    if value is None or value == "":
        return "(none)" if field == "milestone" else "(empty)"
    return str(value)


def _side(
    field: str, kind: str, value: Any, base: Any, other: Any, *, base_known: bool
) -> SideView:
    reference = base if base_known else other
    # With no base there is nothing to call "changed": the elements say what differs.
    view = SideView(
        value=value, changed=base_known and value != base, display=_display(field, value)
    )
    if kind == "set":
        view.elements = set_elements(value, reference, base_known=base_known)
    elif kind == "text":
        view.segments = (
            word_diff(str(base or ""), str(value or ""))
            if base_known
            else [Segment("equal", str(value or ""))]
        )
    return view


def conflict_view(conflict: Conflict) -> ConflictView:
    field = conflict.field
    kind = "set" if field in SET_FIELDS else "text" if field in ("title", "body") else "scalar"
    base_known = conflict.base_value is not None or field in ("milestone",)
    base = normalise_value(field, conflict.base_value) if base_known else None
    local = normalise_value(field, conflict.local_value)
    remote = normalise_value(field, conflict.remote_value)
    base_view = None
    if base_known:
        base_view = SideView(
            value=base,
            changed=False,
            display=_display(field, base),
            segments=[Segment("equal", str(base or ""))],
            elements=[Element(n, "kept") for n in (base or [])] if kind == "set" else [],
        )
    return ConflictView(
        conflict=conflict,
        field=field,
        label=FIELD_LABELS.get(field, field),
        kind=kind,
        base=base_view,
        local=_side(field, kind, local, base, remote, base_known=base_known),
        remote=_side(field, kind, remote, base, local, base_known=base_known),
        multiline=field == "body",
        offers_merge=field != "state",
    )


def field_order(conflict: Conflict) -> int:
    return FIELDS.index(conflict.field) if conflict.field in FIELDS else len(FIELDS)


def merged_suggestion(conflict: Conflict) -> str:
    """What the merged-value box starts with: both sides' elements for sets, else remote."""
    field = conflict.field
    remote = normalise_value(field, conflict.remote_value)
    if field in SET_FIELDS:
        local = normalise_value(field, conflict.local_value)
        return ", ".join(sorted(set(local) | set(remote)))
    return "" if remote is None else str(remote)


def parse_merged(field: str, text: str) -> Any:
    """The typed merged value as the service takes it; ValidationError when it cannot be."""
    if field in SET_FIELDS:
        return sorted({part.strip() for part in text.split(",") if part.strip()})
    if field == "milestone":
        return text.strip() or None
    if field == "state":
        if text.strip() not in IssueState.values:
            raise forms.ValidationError("State must be open or closed.")
        return text.strip()
    if field == "title":
        if not text.strip():
            raise forms.ValidationError("A title cannot be empty.")
        return text.strip()
    return text.replace("\r\n", "\n")


STRATEGY_CHOICES = [
    ("", "Decide later"),
    (ConflictResolution.REMOTE_WINS, "Keep the tracker's value (remote)"),
    (ConflictResolution.LOCAL_WINS, "Take the local value"),
    (ConflictResolution.MERGE, "Use this merged value:"),
]


@dataclasses.dataclass(frozen=True)
class Decision:
    conflict: Conflict
    strategy: str
    value: Any = None


class ResolutionForm(forms.Form):
    """One radio group (and a merged-value box) per open conflict of an issue."""

    shown = forms.CharField(widget=forms.HiddenInput)  # the conflict ids the page showed

    def __init__(self, *args: Any, conflicts: Sequence[Conflict], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.conflicts = list(conflicts)
        self.fields["shown"].initial = ",".join(str(c.pk) for c in self.conflicts)
        for conflict in self.conflicts:
            label = FIELD_LABELS.get(conflict.field, conflict.field)
            choices = [
                c
                for c in STRATEGY_CHOICES
                if conflict.field != "state" or c[0] != ConflictResolution.MERGE
            ]
            self.fields[f"choice_{conflict.pk}"] = forms.ChoiceField(
                label=f"Resolution for {label}",
                choices=choices,
                required=False,
                initial="",
                widget=forms.RadioSelect,
            )
            widget: forms.Widget = (
                forms.Textarea(attrs={"rows": 6, "cols": 60})
                if conflict.field == "body"
                else forms.TextInput(attrs={"size": 50})
            )
            help_text = "Comma-separated." if conflict.field in SET_FIELDS else ""
            self.fields[f"merged_{conflict.pk}"] = forms.CharField(
                label=f"Merged {label.lower()}",
                required=False,
                strip=False,
                widget=widget,
                initial=merged_suggestion(conflict),
                help_text=help_text,
            )

    def clean_shown(self) -> list[int]:
        raw = self.cleaned_data.get("shown") or ""
        try:
            shown = sorted(int(part) for part in raw.split(",") if part)
        except ValueError as exc:
            raise forms.ValidationError("The page was tampered with; reload it.") from exc
        if shown != sorted(c.pk for c in self.conflicts):
            raise forms.ValidationError(
                "The open conflicts of this issue changed since the page was loaded "
                "(the sync settled one, or another person resolved it). Review them again."
            )
        return shown

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        decisions: list[Decision] = []
        for conflict in self.conflicts:
            strategy = cleaned.get(f"choice_{conflict.pk}") or ""
            if not strategy:
                continue
            if strategy != ConflictResolution.MERGE:
                decisions.append(Decision(conflict, strategy))
                continue
            try:
                value = parse_merged(conflict.field, cleaned.get(f"merged_{conflict.pk}") or "")
            except forms.ValidationError as exc:
                self.add_error(f"merged_{conflict.pk}", exc)
                continue
            decisions.append(Decision(conflict, strategy, value))
        if not decisions and not self.errors:
            raise forms.ValidationError("Pick a resolution for at least one field.")
        cleaned["decisions"] = decisions
        return cleaned
