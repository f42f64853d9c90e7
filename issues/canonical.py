"""Conversions between provider values, mirror rows and merge snapshots (JSON-safe dicts)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from integrations.providers.base import UNSET, IssueFields, IssueState, RemoteIssue

FIELDS: tuple[str, ...] = ("title", "body", "state", "labels", "assignees", "milestone")
SET_FIELDS = frozenset({"labels", "assignees"})


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
    return normalise(
        {
            "title": remote.title,
            "body": remote.body,
            "state": remote.state.value,
            "labels": remote.labels,
            "assignees": remote.assignees,
            "milestone": remote.milestone,
        }
    )


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
