"""Three-way, per-field merge of an issue's local mirror against its tracker.

Pure: no Django, no I/O, no clock reads. Every input arrives as an argument and
the result is a value; the sync engine decides what to store, push and log.

Snapshots
---------
A snapshot is a mapping with the six canonical fields (``FIELDS``):

* ``title`` (str), ``body`` (str; ``None`` is read as ``""`` because trackers
  send a null body for an empty one), ``state`` (``"open"`` or ``"closed"``),
  ``milestone`` (str or ``None``) -- the scalar fields;
* ``labels`` and ``assignees`` -- the set fields (``SET_FIELDS``): any iterable
  of strings, normalised to ``frozenset``. A bare string is rejected, since
  iterating it would silently turn ``"bug"`` into ``{"b", "u", "g"}``.

A missing field raises ``ValueError`` naming it; unknown keys are ignored.

Per-field rules (``base`` = the last state both sides agreed on)
----------------------------------------------------------------
1. ``local == remote``: that value, nothing to do (covers "neither changed"
   and "both made the same change").
2. Only one side differs from ``base``: take that side's value.
3. Both sides differ from ``base`` and from each other:

   a. **Causal.** If a per-field ``VersionVector`` is given for *both* sides and
      one strictly dominates the other, that side saw the other's change
      before making its own, so its whole value wins (``Resolution`` reason
      ``"causal"``). This also applies to set fields: an element-wise merge
      against a stale base would resurrect an element the later side removed
      on purpose. A vector missing on either side, equal vectors or
      concurrent vectors all mean "concurrent".
   b. **Set fields, known base.** Element-wise three-way merge: for each
      element, if one side's membership equals its membership in ``base`` the
      other side's membership is taken. An element can be added or removed
      by one side only, or by both in the same direction, so with a known base
      a set merge **never conflicts** and never consults the policy — unless
      the result holds more elements than the tracker can (``capacity``: one
      assignee on Jira, one category on OpenProject): two sides that each
      replaced the one element made a scalar change, and rule c applies.
   c. **Scalar fields** (and set fields with an unknown base, see below): the
      conflict policy decides:

      * ``manual`` -- a ``FieldConflict``; the mirror keeps the remote value
        (so the field appears in ``changed_locally`` when the local value
        differs), nothing is pushed, and ``new_base`` keeps the old base value.
      * ``last_writer_wins`` -- the side whose ``*_updated_at`` is strictly
        later wins. A tie or a missing timestamp lets remote win: the tracker is
        the source of truth (ADR-011). Mixing naive and aware datetimes is a
        caller bug and raises ``ValueError`` under every policy, so it shows
        up before the first conflict needs the comparison.
      * ``remote_wins`` / ``local_wins``.

      Every automatic decision is reported as a ``Resolution`` with reason
      ``"policy:<policy value>"``.

Unknown base (``base=None``, e.g. first contact with an issue that exists on
both sides, or a lost base): every field where local and remote differ is a
change by both sides, so rule 3 applies (vectors first, then the policy).

Set conflicts -- the exact semantics
------------------------------------
"Added here, removed there" for one element needs to know which side held it
before, i.e. the base. With a known base this question always has an answer
(rule 3b), so the *only* set conflict is with an unknown base: an element held
by exactly one side (``local ^ remote``) may have been added there or removed
on the other side. Elements held by both sides are agreed. Such a conflict is a
``FieldConflict`` whose ``elements`` are the symmetric difference and whose
``local``/``remote`` hold each side's full set. A winning side (causal or
policy) decides every disputed element, i.e. its full set is taken.

Results
-------
``merged`` holds every field's value in the mirror after the merge; ``push``
the fields whose merged value differs from the remote snapshot (never an open
conflict); ``changed_locally`` the fields whose merged value differs from the
local snapshot. ``new_base`` is the merged value for every field both sides now
hold, and the old base value for a field with an open conflict, since nothing
was agreed for it. With an unknown base there is no old value, so a conflicted
field's ``new_base`` is the remote value, which the mirror and tracker both hold
once the merge is applied. ``new_base`` may differ from ``base`` even when the
result ``is_noop`` (both sides made the same change): store it anyway.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from integrations.providers.base import FIELDS, SET_FIELDS, ConflictPolicy, DeletePolicy, IssueState

STATES: frozenset[str] = frozenset(IssueState)


# The policies are defined once, beside the canonical fields (no Django there either).
Policy = ConflictPolicy


class Side(StrEnum):
    LOCAL = "local"
    REMOTE = "remote"


class _FrozenCounters(Mapping[str, int]):
    """Read-only, hashable, picklable counters; a zero counter is not stored so
    that ``{"a": 0}`` and ``{}`` are the same vector."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, int]) -> None:
        self._data: dict[str, int] = {k: data[k] for k in sorted(data) if data[k] != 0}

    def __getitem__(self, key: str) -> int:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == {k: v for k, v in other.items() if v != 0}
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._data)


@dataclass(frozen=True)
class VersionVector:
    """Replica id -> counter; a replica that is absent counts as 0."""

    counters: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for replica, count in self.counters.items():
            if not isinstance(replica, str):
                raise ValueError(f"version vector replica id must be a string: {replica!r}")
            # bool is an int subclass; True as a counter is always a bug upstream
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise ValueError(f"version vector counter for {replica!r} must be an int >= 0")
        object.__setattr__(self, "counters", _FrozenCounters(self.counters))

    def get(self, replica: str) -> int:
        return self.counters.get(replica, 0)

    def _replicas(self, other: VersionVector) -> set[str]:
        return set(self.counters) | set(other.counters)

    def dominates(self, other: VersionVector) -> bool:
        """True when self has seen everything other has, and more."""
        replicas = self._replicas(other)
        return all(self.get(r) >= other.get(r) for r in replicas) and any(
            self.get(r) > other.get(r) for r in replicas
        )

    def concurrent_with(self, other: VersionVector) -> bool:
        """Neither has seen all of the other; equal vectors are not concurrent."""
        return self != other and not self.dominates(other) and not other.dominates(self)

    def merged(self, other: VersionVector) -> VersionVector:
        return VersionVector({r: max(self.get(r), other.get(r)) for r in self._replicas(other)})

    def incremented(self, replica: str) -> VersionVector:
        return VersionVector({**self.counters, replica: self.get(replica) + 1})

    def to_dict(self) -> dict[str, int]:
        return dict(self.counters)

    @classmethod
    def from_dict(cls, data: Mapping[str, int] | None) -> VersionVector:
        return cls(dict(data or {}))


@dataclass(frozen=True)
class FieldConflict:
    field: str
    base: Any
    local: Any
    remote: Any
    # Set fields only: the disputed elements; local/remote still carry full sets.
    elements: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Resolution:
    field: str
    winner: Side
    reason: str  # "causal" or "policy:<policy value>"


@dataclass(frozen=True)
class MergeResult:
    merged: Mapping[str, Any]
    push: Mapping[str, Any]
    changed_locally: Mapping[str, Any]
    conflicts: tuple[FieldConflict, ...]
    resolutions: tuple[Resolution, ...]
    new_base: Mapping[str, Any]

    @property
    def is_noop(self) -> bool:
        return not self.push and not self.changed_locally and not self.conflicts

    @property
    def conflicted_fields(self) -> frozenset[str]:
        return frozenset(c.field for c in self.conflicts)


def _normalise_set(name: str, value: Any) -> frozenset[str]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        raise ValueError(f"{name} must be an iterable of strings, got {type(value).__name__}")
    items = frozenset(value)
    for item in items:
        if not isinstance(item, str):
            raise ValueError(f"{name} elements must be strings, got {item!r}")
    return items


def _plain_set(value: Any) -> frozenset[str] | None:
    """The common input, a built-in container of plain strings, as a frozenset without the
    ABC checks of ``_normalise_set`` (isinstance against ``Iterable`` is slow); ``None``
    for anything else, which then takes the full check (and its error message)."""
    kind = type(value)
    if kind is frozenset:
        items = value
    elif kind is list or kind is tuple or kind is set:
        items = frozenset(value)
    else:
        return None
    for item in items:
        if type(item) is not str:
            return None
    return items


_FIELD_KEYS: frozenset[str] = frozenset(FIELDS)


def normalise_snapshot(snapshot: Mapping[str, Any], *, name: str = "snapshot") -> dict[str, Any]:
    """Validated copy with exactly ``FIELDS``, sets as frozensets."""
    # Runs three times per merge: the checks are ordered cheapest first (a plain dict,
    # all keys present in one set comparison), the slow paths only name what is wrong.
    if type(snapshot) is not dict and not isinstance(snapshot, Mapping):
        raise ValueError(f"{name} must be a mapping, got {type(snapshot).__name__}")
    if not snapshot.keys() >= _FIELD_KEYS:
        for key in FIELDS:
            if key not in snapshot:
                raise ValueError(f"{name} is missing field {key!r}")
    title = snapshot["title"]
    if not isinstance(title, str):
        raise ValueError(f"{name} title must be a string, got {type(title).__name__}")
    body = snapshot["body"]
    if body is None:
        body = ""
    elif not isinstance(body, str):
        raise ValueError(f"{name} body must be a string, got {type(body).__name__}")
    state = snapshot["state"]
    if not isinstance(state, str) or state not in STATES:
        raise ValueError(f"{name} state must be 'open' or 'closed', got {state!r}")
    if type(state) is not str:
        state = str(state)  # a StrEnum member becomes the plain string
    milestone = snapshot["milestone"]
    if milestone is not None and not isinstance(milestone, str):
        raise ValueError(f"{name} milestone must be a string or None")
    labels = _plain_set(snapshot["labels"])
    if labels is None:
        labels = _normalise_set(f"{name} labels", snapshot["labels"])
    assignees = _plain_set(snapshot["assignees"])
    if assignees is None:
        assignees = _normalise_set(f"{name} assignees", snapshot["assignees"])
    return {
        "title": title,
        "body": body,
        "state": state,
        "labels": labels,
        "assignees": assignees,
        "milestone": milestone,
    }


def snapshot_to_json(snapshot: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready form for storing a base: sets become sorted lists so the
    stored text is stable and diffs cleanly."""
    normal = normalise_snapshot(snapshot)
    return {k: sorted(v) if k in SET_FIELDS else v for k, v in normal.items()}


def diff_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Fields whose value in ``b`` differs from ``a``, with ``b``'s value."""
    na, nb = normalise_snapshot(a, name="a"), normalise_snapshot(b, name="b")
    return {f: nb[f] for f in FIELDS if na[f] != nb[f]}


def merge_sets(
    base: Iterable[str] | None, local: Iterable[str], remote: Iterable[str]
) -> tuple[frozenset[str], frozenset[str]]:
    """Element-wise three-way set merge: ``(merged, conflicting elements)``.

    With a base, an element's membership is taken from whichever side changed
    it (both sides can only change it in the same direction), so the conflict
    set is always empty. Without a base (``None``), elements held by both sides
    are merged and elements held by one side only are the conflicts -- they
    are left out of ``merged`` for the caller to decide.
    """
    loc = _normalise_set("local", local)
    rem = _normalise_set("remote", remote)
    if base is None:
        return loc & rem, loc ^ rem
    bas = _normalise_set("base", base)
    # (base - removed by either) + added by either
    return (bas & loc & rem) | (loc - bas) | (rem - bas), frozenset()


def _merged_set(
    base: frozenset[str], local: frozenset[str], remote: frozenset[str], capacity: int | None
) -> frozenset[str] | None:
    """The element-wise merge, or None when it holds more than the tracker can."""
    merged, _ = merge_sets(base, local, remote)
    return merged if capacity is None or len(merged) <= capacity else None


def resolve_delete(
    *, policy: DeletePolicy | str, deleted_side: Side | str, other_side_changed: bool
) -> Literal["delete", "keep"]:
    """Delete vs update (ADR-011, default delete wins).

    A delete of an issue the other side did not touch since the base always
    applies; only a real concurrent update lets the policy choose. The answer
    does not depend on which side deleted: the rule is symmetric on purpose.
    """
    policy = DeletePolicy(policy)
    Side(deleted_side)  # validates; a typo must not silently pick a branch
    if not other_side_changed:
        return "delete"
    return "delete" if policy is DeletePolicy.DELETE_WINS else "keep"


# Value (or member: a StrEnum member hashes and compares as its value) -> member, so the
# common call does not go through Enum.__call__.
_POLICIES: dict[str, Policy] = {p.value: p for p in Policy}


def _check_timestamps(a: datetime | None, b: datetime | None) -> None:
    if a is not None and b is not None and (a.tzinfo is None) != (b.tzinfo is None):
        raise ValueError("local_updated_at and remote_updated_at mix naive and aware datetimes")


def _policy_winner(
    policy: Policy, local_updated_at: datetime | None, remote_updated_at: datetime | None
) -> Side:
    if policy is Policy.LOCAL_WINS:
        return Side.LOCAL
    if policy is Policy.LAST_WRITER_WINS:
        if (
            local_updated_at is not None
            and remote_updated_at is not None
            and local_updated_at > remote_updated_at
        ):
            return Side.LOCAL
        return Side.REMOTE
    return Side.REMOTE


def _causal_winner(
    name: str,
    local_versions: Mapping[str, VersionVector] | None,
    remote_versions: Mapping[str, VersionVector] | None,
) -> Side | None:
    lv = (local_versions or {}).get(name)
    rv = (remote_versions or {}).get(name)
    # One-sided knowledge proves nothing about what the other side saw.
    if lv is None or rv is None:
        return None
    if lv.dominates(rv):
        return Side.LOCAL
    if rv.dominates(lv):
        return Side.REMOTE
    return None


def merge_issue(
    *,
    base: Mapping[str, Any] | None,
    local: Mapping[str, Any],
    remote: Mapping[str, Any],
    policy: Policy | str = Policy.MANUAL,
    local_updated_at: datetime | None = None,
    remote_updated_at: datetime | None = None,
    local_versions: Mapping[str, VersionVector] | None = None,
    remote_versions: Mapping[str, VersionVector] | None = None,
    local_field_updated_at: Mapping[str, datetime] | None = None,
    local_touched: frozenset[str] = frozenset(),
    remote_touched: frozenset[str] = frozenset(),
    capacity: Mapping[str, int] | None = None,
) -> MergeResult:
    """Merge one issue field by field; see the module docstring for the rules.

    `local_field_updated_at` (field → when it was last edited locally) is what
    ``last_writer_wins`` compares for a contested field; a field missing from it falls back
    to `local_updated_at`.

    `local_touched` names fields the local side edited (unacknowledged by the tracker) even
    if back to the base value: set and reset is still a local change, concurrent with a
    remote one, not "local unchanged" (rule 2 does not apply to them).

    `remote_touched` is its mirror image: fields the tracker may have changed since the base
    even though it shows the base value again (our write may have landed, its answer lost,
    and someone then put the old value back): not "remote unchanged" (rule 3 does not apply).

    `capacity` (set field → the most elements the tracker holds) turns an element-wise
    merge the tracker could not hold into a contested value (rule 3b).
    """
    try:
        policy = _POLICIES[policy]
    except (KeyError, TypeError):
        policy = Policy(policy)  # raises ValueError naming the unknown policy
    if local_updated_at is not None and remote_updated_at is not None:
        _check_timestamps(local_updated_at, remote_updated_at)
    if local_field_updated_at and remote_updated_at is not None:
        for edited in local_field_updated_at.values():
            _check_timestamps(edited, remote_updated_at)
    b = None if base is None else normalise_snapshot(base, name="base")
    loc = normalise_snapshot(local, name="local")
    rem = normalise_snapshot(remote, name="remote")

    merged: dict[str, Any] = {}
    new_base: dict[str, Any] = {}
    push: dict[str, Any] = {}
    changed_locally: dict[str, Any] = {}
    conflicts: list[FieldConflict] = []
    resolutions: list[Resolution] = []

    # One pass: push and changed_locally are filled where a field is decided (an agreed
    # field is in neither), not by comparing every field again afterwards.
    for name in FIELDS:
        lv = loc[name]
        rv = rem[name]
        if lv == rv:
            merged[name] = new_base[name] = lv
            continue
        value: Any
        if b is not None and lv == b[name] and name not in local_touched:
            value = rv
        elif b is not None and rv == b[name] and name not in remote_touched:
            value = lv
        elif (winner := _causal_winner(name, local_versions, remote_versions)) is not None:
            value = lv if winner is Side.LOCAL else rv
            resolutions.append(Resolution(name, winner, "causal"))
        elif (
            b is not None
            and name in SET_FIELDS
            and (held := _merged_set(b[name], lv, rv, (capacity or {}).get(name))) is not None
        ):
            value = held
        elif policy is Policy.MANUAL:
            elements = lv ^ rv if name in SET_FIELDS else frozenset()
            conflicts.append(FieldConflict(name, None if b is None else b[name], lv, rv, elements))
            # The mirror shows the remote value; nothing is pushed while the conflict is open.
            merged[name] = changed_locally[name] = rv
            new_base[name] = rv if b is None else b[name]
            continue
        else:
            local_time = (local_field_updated_at or {}).get(name, local_updated_at)
            winner = _policy_winner(policy, local_time, remote_updated_at)
            value = lv if winner is Side.LOCAL else rv
            resolutions.append(Resolution(name, winner, f"policy:{policy.value}"))
        merged[name] = new_base[name] = value
        if value != rv:
            push[name] = value
        if value != lv:
            changed_locally[name] = value

    return MergeResult(
        merged=merged,
        push=push,
        changed_locally=changed_locally,
        conflicts=tuple(conflicts),
        resolutions=tuple(resolutions),
        new_base=new_base,
    )
