"""Table-driven tests: one row per SPEC §5 merge rule and per input-hygiene rule."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from integrations.providers.base import IssueState
from issues.merge import (
    FIELDS,
    SET_FIELDS,
    FieldConflict,
    Policy,
    Resolution,
    Side,
    VersionVector,
    diff_fields,
    merge_issue,
    merge_sets,
    normalise_snapshot,
    snapshot_to_json,
)

BASE: dict[str, Any] = {
    "title": "Crash on save",
    "body": "It crashes.",
    "state": "open",
    "labels": frozenset({"a", "b"}),
    "assignees": frozenset({"alice"}),
    "milestone": "v1",
}

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
T1 = T0 + timedelta(seconds=1)


def snap(**changes: Any) -> dict[str, Any]:
    out = {**BASE, **changes}
    return {k: frozenset(v) if k in SET_FIELDS else v for k, v in out.items()}


def fs(*items: str) -> frozenset[str]:
    return frozenset(items)


def vv(**counters: int) -> VersionVector:
    return VersionVector(counters)


@dataclass(frozen=True)
class Row:
    base: dict[str, Any] | None
    local: dict[str, Any]
    remote: dict[str, Any]
    merged: dict[str, Any]
    push: dict[str, Any] = field(default_factory=dict)
    changed_locally: dict[str, Any] = field(default_factory=dict)
    conflicts: tuple[FieldConflict, ...] = ()
    resolutions: tuple[Resolution, ...] = ()
    new_base: dict[str, Any] | None = None  # None: same as merged
    kwargs: dict[str, Any] = field(default_factory=dict)


ROWS: dict[str, Row] = {
    # --- nothing changed
    "nothing-changed": Row(BASE, snap(), snap(), merged=snap()),
    # --- only one side changed a field → take that change
    "only-local-changed-scalar": Row(
        BASE, snap(title="New"), snap(), merged=snap(title="New"), push={"title": "New"}
    ),
    "only-remote-changed-scalar": Row(
        BASE,
        snap(),
        snap(state="closed"),
        merged=snap(state="closed"),
        changed_locally={"state": "closed"},
    ),
    "only-local-cleared-milestone": Row(
        BASE, snap(milestone=None), snap(), merged=snap(milestone=None), push={"milestone": None}
    ),
    "only-remote-set-milestone-from-none": Row(
        snap(milestone=None),
        snap(milestone=None),
        snap(milestone="v2"),
        merged=snap(milestone="v2"),
        changed_locally={"milestone": "v2"},
    ),
    "only-local-changed-set": Row(
        BASE,
        snap(labels=fs("a", "b", "c")),
        snap(),
        merged=snap(labels=fs("a", "b", "c")),
        push={"labels": fs("a", "b", "c")},
    ),
    # --- the sides changed different fields → keep both
    "different-fields-both-kept": Row(
        BASE,
        snap(title="Local title", assignees=fs("alice", "bob")),
        snap(state="closed", milestone=None),
        merged=snap(
            title="Local title", assignees=fs("alice", "bob"), state="closed", milestone=None
        ),
        push={"title": "Local title", "assignees": fs("alice", "bob")},
        changed_locally={"state": "closed", "milestone": None},
    ),
    # --- both changed a field to the same value → nothing to do
    "same-change-both-sides": Row(
        BASE,
        snap(title="Same", labels=fs("a")),
        snap(title="Same", labels=fs("a")),
        merged=snap(title="Same", labels=fs("a")),
    ),
    # --- sets merge element by element (known base: never a conflict)
    "set-local-adds-remote-removes": Row(
        BASE,
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("a")),
        merged=snap(labels=fs("a", "c")),
        push={"labels": fs("a", "c")},
        changed_locally={"labels": fs("a", "c")},
    ),
    "set-both-add-different": Row(
        BASE,
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("a", "b", "d")),
        merged=snap(labels=fs("a", "b", "c", "d")),
        push={"labels": fs("a", "b", "c", "d")},
        changed_locally={"labels": fs("a", "b", "c", "d")},
    ),
    # --- a tracker holding at most n elements (one assignee, one category): an element-wise
    # merge holding more is no value it can take — the policy decides, as for a scalar
    "set-over-capacity-is-a-conflict-under-manual": Row(
        BASE,
        snap(assignees=fs("bob")),
        snap(assignees=fs("carol")),
        merged=snap(assignees=fs("carol")),
        changed_locally={"assignees": fs("carol")},
        conflicts=(
            FieldConflict("assignees", fs("alice"), fs("bob"), fs("carol"), fs("bob", "carol")),
        ),
        new_base=snap(),
        kwargs={"capacity": {"assignees": 1}},
    ),
    "set-over-capacity-goes-to-the-policy": Row(
        BASE,
        snap(assignees=fs("bob")),
        snap(assignees=fs("carol")),
        merged=snap(assignees=fs("bob")),
        push={"assignees": fs("bob")},
        resolutions=(Resolution("assignees", Side.LOCAL, "policy:local_wins"),),
        kwargs={"capacity": {"assignees": 1}, "policy": Policy.LOCAL_WINS},
    ),
    "set-within-capacity-merges-by-element": Row(
        BASE,
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("a", "b", "d")),
        merged=snap(labels=fs("a", "b", "c", "d")),
        push={"labels": fs("a", "b", "c", "d")},
        changed_locally={"labels": fs("a", "b", "c", "d")},
        kwargs={"capacity": {"labels": 4, "assignees": 1}},
    ),
    "set-both-remove-different": Row(
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("b", "c")),
        snap(labels=fs("a", "c")),
        merged=snap(labels=fs("c")),
        push={"labels": fs("c")},
        changed_locally={"labels": fs("c")},
    ),
    "set-same-element-removed-both-plus-add": Row(
        BASE,
        snap(labels=fs("a")),
        snap(labels=fs("a", "x")),
        merged=snap(labels=fs("a", "x")),
        changed_locally={"labels": fs("a", "x")},
    ),
    "set-assignees-element-wise": Row(
        snap(assignees=fs("alice", "bob")),
        snap(assignees=fs("bob", "carol")),
        snap(assignees=fs("alice", "bob", "dave")),
        merged=snap(assignees=fs("bob", "carol", "dave")),
        push={"assignees": fs("bob", "carol", "dave")},
        changed_locally={"assignees": fs("bob", "carol", "dave")},
    ),
    "set-concurrent-ignores-policy": Row(
        BASE,
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("b")),
        merged=snap(labels=fs("b", "c")),
        push={"labels": fs("b", "c")},
        changed_locally={"labels": fs("b", "c")},
        kwargs={"policy": Policy.REMOTE_WINS},
    ),
    # --- concurrent scalar change, manual policy → conflict, mirror keeps remote
    "scalar-concurrent-manual-conflict": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        conflicts=(FieldConflict("title", "Crash on save", "L", "R"),),
        new_base=snap(),
    ),
    "scalar-conflict-other-fields-still-merge": Row(
        BASE,
        snap(title="L", labels=fs("a", "b", "c")),
        snap(title="R", labels=fs("b"), state="closed"),
        merged=snap(title="R", labels=fs("b", "c"), state="closed"),
        push={"labels": fs("b", "c")},
        changed_locally={"title": "R", "labels": fs("b", "c"), "state": "closed"},
        conflicts=(FieldConflict("title", "Crash on save", "L", "R"),),
        new_base=snap(labels=fs("b", "c"), state="closed"),
    ),
    "milestone-concurrent-none-vs-value": Row(
        BASE,
        snap(milestone=None),
        snap(milestone="v2"),
        merged=snap(milestone="v2"),
        changed_locally={"milestone": "v2"},
        conflicts=(FieldConflict("milestone", "v1", None, "v2"),),
        new_base=snap(),
    ),
    # --- policies
    "lww-local-later-wins": Row(
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="L"),
        push={"body": "L"},
        resolutions=(Resolution("body", Side.LOCAL, "policy:last_writer_wins"),),
        kwargs={
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": T1,
            "remote_updated_at": T0,
        },
    ),
    "lww-remote-later-wins": Row(
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="R"),
        changed_locally={"body": "R"},
        resolutions=(Resolution("body", Side.REMOTE, "policy:last_writer_wins"),),
        kwargs={
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": T0,
            "remote_updated_at": T1,
        },
    ),
    "lww-per-field-time-of-the-contested-field": Row(
        # The last local edit (T1) was of another field; this one was edited at T0 - 1 s.
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="R"),
        changed_locally={"body": "R"},
        resolutions=(Resolution("body", Side.REMOTE, "policy:last_writer_wins"),),
        kwargs={
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": T1,
            "remote_updated_at": T0,
            "local_field_updated_at": {"body": T0 - timedelta(seconds=1), "title": T1},
        },
    ),
    "lww-per-field-time-missing-falls-back": Row(
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="L"),
        push={"body": "L"},
        resolutions=(Resolution("body", Side.LOCAL, "policy:last_writer_wins"),),
        kwargs={
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": T1,
            "remote_updated_at": T0,
            "local_field_updated_at": {"title": T0},
        },
    ),
    "local-set-and-reset-is-a-change-when-touched": Row(
        # The local side edited the field and set it back (unacknowledged); the remote
        # changed it concurrently: a clash for the policy, not "local unchanged".
        BASE,
        snap(),
        snap(state="closed"),
        merged=snap(state="closed"),
        changed_locally={"state": "closed"},
        conflicts=(FieldConflict("state", "open", "open", "closed"),),
        new_base=snap(),
        kwargs={"local_touched": frozenset({"state"})},
    ),
    "remote-set-and-reset-is-a-change-when-touched": Row(
        # The tracker may have changed the field and been set back (our write landed, its
        # answer lost, then reverted); the local side changed it: a clash for the policy,
        # not "remote unchanged".
        BASE,
        snap(state="closed"),
        snap(),
        merged=snap(),
        changed_locally={"state": "open"},
        conflicts=(FieldConflict("state", "open", "closed", "open"),),
        new_base=snap(),
        kwargs={"remote_touched": frozenset({"state"})},
    ),
    "lww-tie-remote-wins": Row(
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="R"),
        changed_locally={"body": "R"},
        resolutions=(Resolution("body", Side.REMOTE, "policy:last_writer_wins"),),
        kwargs={
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": T0,
            "remote_updated_at": T0,
        },
    ),
    "lww-tie-across-timezones-remote-wins": Row(
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="R"),
        changed_locally={"body": "R"},
        resolutions=(Resolution("body", Side.REMOTE, "policy:last_writer_wins"),),
        kwargs={
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": T0.astimezone(timezone(timedelta(hours=2))),
            "remote_updated_at": T0,
        },
    ),
    "lww-missing-remote-timestamp-remote-wins": Row(
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="R"),
        changed_locally={"body": "R"},
        resolutions=(Resolution("body", Side.REMOTE, "policy:last_writer_wins"),),
        kwargs={"policy": Policy.LAST_WRITER_WINS, "local_updated_at": T1},
    ),
    "lww-missing-both-timestamps-remote-wins": Row(
        BASE,
        snap(body="L"),
        snap(body="R"),
        merged=snap(body="R"),
        changed_locally={"body": "R"},
        resolutions=(Resolution("body", Side.REMOTE, "policy:last_writer_wins"),),
        kwargs={"policy": Policy.LAST_WRITER_WINS},
    ),
    "remote-wins-policy": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        resolutions=(Resolution("title", Side.REMOTE, "policy:remote_wins"),),
        kwargs={"policy": Policy.REMOTE_WINS, "local_updated_at": T1, "remote_updated_at": T0},
    ),
    "local-wins-policy": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="L"),
        push={"title": "L"},
        resolutions=(Resolution("title", Side.LOCAL, "policy:local_wins"),),
        kwargs={"policy": Policy.LOCAL_WINS, "local_updated_at": T0, "remote_updated_at": T1},
    ),
    "policy-as-plain-string": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="L"),
        push={"title": "L"},
        resolutions=(Resolution("title", Side.LOCAL, "policy:local_wins"),),
        kwargs={"policy": "local_wins"},
    ),
    # --- version vectors: a causally later change wins before any policy
    "causal-local-dominates-beats-manual": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="L"),
        push={"title": "L"},
        resolutions=(Resolution("title", Side.LOCAL, "causal"),),
        kwargs={
            "local_versions": {"title": vv(local=2, remote=3)},
            "remote_versions": {"title": vv(local=1, remote=3)},
        },
    ),
    "causal-remote-dominates-beats-local-wins": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        resolutions=(Resolution("title", Side.REMOTE, "causal"),),
        kwargs={
            "policy": Policy.LOCAL_WINS,
            "local_versions": {"title": vv(local=1)},
            "remote_versions": {"title": vv(local=1, remote=1)},
        },
    ),
    "causal-concurrent-vectors-manual-conflict": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        conflicts=(FieldConflict("title", "Crash on save", "L", "R"),),
        new_base=snap(),
        kwargs={
            "local_versions": {"title": vv(local=2, remote=1)},
            "remote_versions": {"title": vv(local=1, remote=2)},
        },
    ),
    "causal-equal-vectors-policy-decides": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="L"),
        push={"title": "L"},
        resolutions=(Resolution("title", Side.LOCAL, "policy:local_wins"),),
        kwargs={
            "policy": Policy.LOCAL_WINS,
            "local_versions": {"title": vv(local=1)},
            "remote_versions": {"title": vv(local=1)},
        },
    ),
    "causal-one-sided-vector-is-concurrent": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        conflicts=(FieldConflict("title", "Crash on save", "L", "R"),),
        new_base=snap(),
        kwargs={"local_versions": {"title": vv(local=5, remote=5)}},
    ),
    "causal-vectors-of-other-field-ignored": Row(
        BASE,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        conflicts=(FieldConflict("title", "Crash on save", "L", "R"),),
        new_base=snap(),
        kwargs={
            "local_versions": {"body": vv(local=2)},
            "remote_versions": {"body": vv(local=1)},
        },
    ),
    "causal-not-consulted-when-one-side-only-changed": Row(
        BASE,
        snap(),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        kwargs={
            "local_versions": {"title": vv(local=9)},
            "remote_versions": {"title": vv(local=1)},
        },
    ),
    "causal-set-remote-dominates-removal-sticks": Row(
        # remote saw local's "c", then removed it: element-wise would resurrect it
        BASE,
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("a")),
        merged=snap(labels=fs("a")),
        changed_locally={"labels": fs("a")},
        resolutions=(Resolution("labels", Side.REMOTE, "causal"),),
        kwargs={
            "local_versions": {"labels": vv(local=1)},
            "remote_versions": {"labels": vv(local=1, remote=1)},
        },
    ),
    # --- unknown base: every differing field is a concurrent change
    "no-base-equal-sides-noop": Row(None, snap(), snap(), merged=snap()),
    "no-base-scalar-manual-conflict": Row(
        None,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        conflicts=(FieldConflict("title", None, "L", "R"),),
        new_base=snap(title="R"),
    ),
    "no-base-state-differs-manual-conflict": Row(
        None,
        snap(state="closed"),
        snap(),
        merged=snap(),
        changed_locally={"state": "open"},
        conflicts=(FieldConflict("state", None, "closed", "open"),),
    ),
    "no-base-set-manual-conflict-names-elements": Row(
        None,
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("a", "d")),
        merged=snap(labels=fs("a", "d")),
        changed_locally={"labels": fs("a", "d")},
        conflicts=(
            FieldConflict(
                "labels", None, fs("a", "b", "c"), fs("a", "d"), elements=fs("b", "c", "d")
            ),
        ),
    ),
    "no-base-set-local-wins-takes-full-set": Row(
        None,
        snap(labels=fs("a", "b", "c")),
        snap(labels=fs("a", "d")),
        merged=snap(labels=fs("a", "b", "c")),
        push={"labels": fs("a", "b", "c")},
        resolutions=(Resolution("labels", Side.LOCAL, "policy:local_wins"),),
        kwargs={"policy": Policy.LOCAL_WINS},
    ),
    "no-base-lww": Row(
        None,
        snap(title="L", assignees=fs("bob")),
        snap(title="R"),
        merged=snap(title="L", assignees=fs("bob")),
        push={"title": "L", "assignees": fs("bob")},
        resolutions=(
            Resolution("title", Side.LOCAL, "policy:last_writer_wins"),
            Resolution("assignees", Side.LOCAL, "policy:last_writer_wins"),
        ),
        kwargs={
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": T1,
            "remote_updated_at": T0,
        },
    ),
    "no-base-vectors-still-decide": Row(
        None,
        snap(title="L"),
        snap(title="R"),
        merged=snap(title="R"),
        changed_locally={"title": "R"},
        resolutions=(Resolution("title", Side.REMOTE, "causal"),),
        kwargs={
            "local_versions": {"title": vv(local=1)},
            "remote_versions": {"title": vv(local=1, remote=1)},
        },
    ),
}


@pytest.mark.parametrize("row", list(ROWS.values()), ids=list(ROWS))
def test_merge_rule(row: Row) -> None:
    result = merge_issue(base=row.base, local=row.local, remote=row.remote, **row.kwargs)

    assert dict(result.merged) == row.merged
    assert dict(result.push) == row.push
    assert dict(result.changed_locally) == row.changed_locally
    assert result.conflicts == row.conflicts
    assert result.resolutions == row.resolutions
    assert dict(result.new_base) == (row.merged if row.new_base is None else row.new_base)
    assert result.is_noop == (not row.push and not row.changed_locally and not row.conflicts)


def test_conflicted_field_is_never_pushed_even_if_local_wins_elsewhere() -> None:
    result = merge_issue(base=BASE, local=snap(title="L", body="L"), remote=snap(title="R"))
    assert result.conflicted_fields == {"title"}
    assert dict(result.push) == {"body": "L"}


def test_same_change_both_sides_moves_the_base_although_noop() -> None:
    result = merge_issue(base=BASE, local=snap(title="X"), remote=snap(title="X"))
    assert result.is_noop
    assert result.new_base["title"] == "X"


def test_lww_mixed_naive_and_aware_timestamps_rejected() -> None:
    with pytest.raises(ValueError, match="naive and aware"):
        merge_issue(
            base=BASE,
            local=snap(),
            remote=snap(),
            policy=Policy.LAST_WRITER_WINS,
            local_updated_at=T0.replace(tzinfo=None),
            remote_updated_at=T0,
        )


def test_unknown_policy_rejected() -> None:
    with pytest.raises(ValueError):
        merge_issue(base=BASE, local=snap(), remote=snap(), policy="newest")


# --- input hygiene ----------------------------------------------------------


def without(key: str) -> dict[str, Any]:
    return {k: v for k, v in BASE.items() if k != key}


MISSING_KEY_ROWS = [
    pytest.param(side, key, id=f"{side}-missing-{key}")
    for side in ("base", "local", "remote")
    for key in FIELDS
]


@pytest.mark.parametrize(("side", "key"), MISSING_KEY_ROWS)
def test_missing_key_is_rejected_by_name(side: str, key: str) -> None:
    snapshots: dict[str, Any] = {"base": BASE, "local": BASE, "remote": BASE}
    snapshots[side] = without(key)
    with pytest.raises(ValueError, match=rf"{side} is missing field '{key}'"):
        merge_issue(**snapshots)


BAD_VALUE_ROWS = {
    "state-unknown": ("state", "reopened", "state must be 'open' or 'closed'"),
    "state-wrong-case": ("state", "Open", "state must be 'open' or 'closed'"),
    "state-gitlab-opened": ("state", "opened", "state must be 'open' or 'closed'"),
    "labels-bare-string": ("labels", "bug", "labels must be an iterable"),
    "labels-none": ("labels", None, "labels must be an iterable"),
    "labels-non-string-element": ("labels", [1], "labels elements must be strings"),
    "labels-frozenset-non-string": ("labels", frozenset({"a", 1}), "labels elements must be"),
    "labels-set-of-bytes": ("labels", {b"bug"}, "labels elements must be strings"),
    "assignees-bare-string": ("assignees", "alice", "assignees must be an iterable"),
    "title-none": ("title", None, "title must be a string"),
    "body-int": ("body", 3, "body must be a string"),
    "milestone-int": ("milestone", 7, "milestone must be a string or None"),
}


@pytest.mark.parametrize(
    ("key", "value", "message"), list(BAD_VALUE_ROWS.values()), ids=list(BAD_VALUE_ROWS)
)
def test_bad_value_rejected(key: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        merge_issue(base=BASE, local={**BASE, key: value}, remote=BASE)


def test_snapshot_must_be_a_mapping() -> None:
    with pytest.raises(ValueError, match="remote must be a mapping"):
        merge_issue(base=BASE, local=BASE, remote=[("title", "x")])  # type: ignore[arg-type]


class _Label(str):
    """A str subclass (e.g. a StrEnum member): accepted, not only the exact type."""


SET_INPUT_ROWS = {
    "list": ["b", "a", "b"],
    "tuple": ("a", "b"),
    "set": {"a", "b"},
    "frozenset": frozenset({"b", "a"}),
    "dict-keys": {"a": 1, "b": 2}.keys(),
    "generator": (x for x in ("a", "b")),
    "str-subclass-elements": [_Label("a"), _Label("b")],
}


@pytest.mark.parametrize("labels", list(SET_INPUT_ROWS.values()), ids=list(SET_INPUT_ROWS))
def test_set_fields_accept_any_iterable(labels: Any) -> None:
    result = merge_issue(base=BASE, local={**BASE, "labels": labels}, remote=BASE)
    assert result.is_noop
    assert result.merged["labels"] == frozenset({"a", "b"})
    assert isinstance(result.merged["labels"], frozenset)


def test_unknown_keys_ignored_and_not_returned() -> None:
    noisy = {**BASE, "external_id": "42", "comments": [], "updated_at": "x"}
    result = merge_issue(base=noisy, local=noisy, remote=noisy)
    assert result.is_noop
    assert set(result.merged) == set(FIELDS)
    assert set(result.new_base) == set(FIELDS)


def test_null_body_reads_as_empty() -> None:
    result = merge_issue(base={**BASE, "body": ""}, local={**BASE, "body": None}, remote=BASE)
    assert result.merged["body"] == "It crashes."
    assert result.conflicts == ()


def test_snapshot_to_json_sorts_sets() -> None:
    assert snapshot_to_json({**BASE, "labels": {"z", "a"}}) == {
        **BASE,
        "labels": ["a", "z"],
        "assignees": ["alice"],
    }


def test_normalise_snapshot_returns_fields_only() -> None:
    assert normalise_snapshot({**BASE, "extra": 1, "labels": ["a", "b"]}) == snap()


# --- merge_sets ---------------------------------------------------------------

SET_ROWS = {
    "unchanged": ({"a"}, {"a"}, {"a"}, {"a"}, set()),
    "local-adds-remote-removes": ({"a", "b"}, {"a", "b", "c"}, {"a"}, {"a", "c"}, set()),
    "both-add-same": (set(), {"x"}, {"x"}, {"x"}, set()),
    "both-remove-same": ({"x", "y"}, {"y"}, {"y"}, {"y"}, set()),
    "remove-and-readd-elsewhere": ({"a"}, set(), {"a", "b"}, {"b"}, set()),
    "everything-cleared-one-side": ({"a", "b"}, set(), {"a", "b"}, set(), set()),
    "no-base-agree": (None, {"a"}, {"a"}, {"a"}, set()),
    "no-base-disagree": (None, {"a", "b"}, {"a", "c"}, {"a"}, {"b", "c"}),
    "no-base-one-empty": (None, set(), {"x"}, set(), {"x"}),
}


@pytest.mark.parametrize(
    ("base", "local", "remote", "merged", "conflicts"), list(SET_ROWS.values()), ids=list(SET_ROWS)
)
def test_merge_sets(
    base: set[str] | None,
    local: set[str],
    remote: set[str],
    merged: set[str],
    conflicts: set[str],
) -> None:
    assert merge_sets(base, local, remote) == (frozenset(merged), frozenset(conflicts))


# --- diff_fields ---------------------------------------------------------------

DIFF_ROWS = {
    "identical": (BASE, BASE, {}),
    "set-order-irrelevant": (BASE, {**BASE, "labels": ["b", "a"]}, {}),
    "scalar-and-set": (
        BASE,
        {**BASE, "title": "T", "assignees": []},
        {"title": "T", "assignees": frozenset()},
    ),
    "milestone-cleared": (BASE, {**BASE, "milestone": None}, {"milestone": None}),
}


@pytest.mark.parametrize(("a", "b", "expected"), list(DIFF_ROWS.values()), ids=list(DIFF_ROWS))
def test_diff_fields(a: dict[str, Any], b: dict[str, Any], expected: dict[str, Any]) -> None:
    assert diff_fields(a, b) == expected


def test_diff_fields_validates() -> None:
    with pytest.raises(ValueError, match="b is missing field 'state'"):
        diff_fields(BASE, without("state"))


def test_a_state_enum_member_is_stored_as_the_plain_string() -> None:
    result = merge_issue(base=BASE, local={**BASE, "state": IssueState.CLOSED}, remote=BASE)
    assert result.merged["state"] == "closed"
    assert type(result.merged["state"]) is str
    assert type(normalise_snapshot({**BASE, "state": IssueState.OPEN})["state"]) is str


def test_a_policy_is_taken_as_its_member_or_its_value() -> None:
    by_value = merge_issue(
        base=BASE, local=snap(title="L"), remote=snap(title="R"), policy="remote_wins"
    )
    by_member = merge_issue(
        base=BASE, local=snap(title="L"), remote=snap(title="R"), policy=Policy.REMOTE_WINS
    )
    assert by_value == by_member
    assert by_value.resolutions[0].reason == "policy:remote_wins"
