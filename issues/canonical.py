"""Conversions between provider values, mirror rows and merge snapshots (JSON-safe dicts)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from integrations.providers.base import UNSET, Capabilities, IssueFields, IssueState, RemoteIssue
from integrations.providers.registry import capabilities

FIELDS: tuple[str, ...] = ("title", "body", "state", "labels", "assignees", "milestone")
SET_FIELDS = frozenset({"labels", "assignees"})

# The mirror's columns (issues.models.Issue). Trackers allow shorter titles (GitHub 256, Gitea
# and GitLab 255) — but Trello allows 16,384, and a forged payload anything.
MAX_TITLE_LENGTH = 1000
MAX_MILESTONE_LENGTH = 300
# What no column can hold: U+0000 (PostgreSQL text and jsonb refuse it) and a lone surrogate
# (only a JSON escape such as "\ud800" yields one; it has no UTF-8 encoding).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def storable_text(value: str) -> str:
    """`value` as the mirror can store it: NUL removed, a lone surrogate → U+FFFD.

    Everything else (other control characters, U+2028, bidi and combining marks, astral
    characters, surrounding spaces) is kept exactly, without Unicode normalisation.
    """
    if value.isascii():
        return value.replace("\x00", "")
    if _UNSTORABLE.search(value) is None:
        return value
    return _UNSTORABLE.sub(lambda found: "" if found.group() == "\x00" else "\ufffd", value)


def storable_tracker_status(remote: RemoteIssue) -> str:
    """The tracker's own status name as `Issue.tracker_status` can hold it (200 characters)."""
    return storable_text(remote.tracker_status)[:200]


def normalise_value(field: str, value: Any) -> Any:
    """JSON-safe canonical form: sets as sorted lists, milestone "" as None."""
    if field in SET_FIELDS:
        return sorted({str(v) for v in (value or ())})
    if field == "milestone":
        return value or None
    if field == "state":
        return str(value)
    return "" if value is None else str(value)


def normalise(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    return {field: normalise_value(field, snapshot.get(field)) for field in FIELDS}


def remote_snapshot(remote: RemoteIssue) -> dict[str, Any]:
    """The tracker's state as the mirror stores it.

    Why the text is made storable here: the tracker's text went to the database unchanged,
    and one NUL in a title (or a title over the column) made storing the issue fail — for a
    webhook on every retry, for a poll on every run. A tracker's state cannot be refused, so
    it is kept as closely as the columns allow: see storable_text; the title and milestone
    are cut to their columns; a name left empty by it is dropped.
    """
    milestone = remote.milestone
    if milestone:
        milestone = storable_text(milestone)[:MAX_MILESTONE_LENGTH] or None
    return normalise(
        {
            "title": storable_text(remote.title)[:MAX_TITLE_LENGTH],
            "body": storable_text(remote.body),
            "state": remote.state.value,
            "labels": _storable_names(remote.labels),
            "assignees": _storable_names(remote.assignees),
            "milestone": milestone,
        }
    )


def remote_state_hash(remote: RemoteIssue, snapshot: Mapping[str, Any]) -> str:
    """A digest of everything the mirror takes from one remote state (`snapshot` is its
    `remote_snapshot`): equal digests, nothing to apply. A reconciliation compares it with
    the one stored on the row instead of loading and comparing the row's state."""
    stamp = remote.updated_at.isoformat() if remote.updated_at else None
    created = remote.created_at.isoformat() if remote.created_at else None
    text = json.dumps(
        [snapshot, stamp, created, remote.number, remote.remote_url, remote.tracker_status],
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def _storable_names(names: Iterable[str]) -> set[str]:
    """Label names or logins as storable text; a name that was nothing but NUL is dropped."""
    cleaned: set[str] = set()
    for name in names:
        text = storable_text(name)
        if text or not name:
            cleaned.add(text)
    return cleaned


def changed_fields(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Fields whose value in `after` differs from `before` (both normalised)."""
    return {
        field: normalise_value(field, after[field])
        for field in FIELDS
        if field in after
        and normalise_value(field, before.get(field)) != normalise_value(field, after[field])
    }


def to_issue_fields(values: Mapping[str, Any]) -> IssueFields:
    """Only the fields present in `values` are written; the rest are left alone."""

    def as_set(name: str) -> frozenset[str] | None:
        raw: Iterable[str] | None = values.get(name)
        return None if name not in values else frozenset(raw or ())

    return IssueFields(
        title=values.get("title"),
        body=values.get("body"),
        state=IssueState(values["state"]) if "state" in values else None,
        labels=as_set("labels"),
        assignees=as_set("assignees"),
        milestone=values.get("milestone", UNSET),
    )


def same_on_tracker(provider: str) -> Callable[[str, Any, Any], bool]:
    """`same(field, a, b)`: whether two values of a field are one value on this tracker
    (its canonical comparison keys are equal — label case on GitHub, CRLF vs LF, ...)."""

    # (Imported here: the registry needs Django settings, this module is imported by the
    # providers' pure helpers' users before settings exist in some tools.)
    try:
        tracker = capabilities(provider)
    except Exception:  # noqa: BLE001 - an unknown provider compares values exactly
        tracker = Capabilities()

    def same(field: str, a: Any, b: Any) -> bool:
        a, b = normalise_value(field, a), normalise_value(field, b)
        return a == b or tracker.same(field, a, b)

    return same
