"""Property-based tests of the merge (hypothesis)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from issues.merge import (
    FIELDS,
    SET_FIELDS,
    Policy,
    Side,
    VersionVector,
    merge_issue,
    merge_sets,
    normalise_snapshot,
)

# Small alphabets make equal values (and therefore every rule) likely.
ELEMENTS = st.sampled_from(["a", "b", "c", "d", "e"])
ELEMENT_SETS = st.frozensets(ELEMENTS, max_size=5)
REPLICAS = st.sampled_from(["local", "remote", "gitea"])

SNAPSHOTS = st.fixed_dictionaries(
    {
        "title": st.sampled_from(["t1", "t2", "t3"]),
        "body": st.sampled_from(["", "b1", "b2"]),
        "state": st.sampled_from(["open", "closed"]),
        "labels": ELEMENT_SETS,
        "assignees": ELEMENT_SETS,
        "milestone": st.sampled_from([None, "m1", "m2"]),
    }
)
OPTIONAL_BASES = st.one_of(st.none(), SNAPSHOTS)
POLICIES = st.sampled_from(list(Policy))
NON_MANUAL = st.sampled_from([p for p in Policy if p is not Policy.MANUAL])
VECTORS = st.builds(VersionVector, st.dictionaries(REPLICAS, st.integers(0, 2), max_size=3))
# A few fields at a time: vectors for all six make examples slow without finding more.
FIELD_VECTORS = st.one_of(st.none(), st.dictionaries(st.sampled_from(FIELDS), VECTORS, max_size=3))
TIMESTAMPS = st.one_of(
    st.none(),
    st.integers(0, 3).map(lambda s: datetime(2025, 1, 1, tzinfo=UTC) + timedelta(seconds=s)),
)

EXAMPLES = settings(max_examples=200, deadline=None)


@st.composite
def merge_inputs(draw: st.DrawFn, policies: st.SearchStrategy[Policy] = POLICIES) -> dict[str, Any]:
    # Both sides get vectors for the same fields so the causal rule is exercised
    # often; dropping one side's map keeps the "one-sided means concurrent" case.
    versioned = draw(st.lists(st.sampled_from(FIELDS), max_size=3, unique=True))
    versions = [
        None if draw(st.integers(0, 4)) == 0 else {f: draw(VECTORS) for f in versioned}
        for _ in range(2)
    ]
    return {
        "base": draw(OPTIONAL_BASES),
        "local": draw(SNAPSHOTS),
        "remote": draw(SNAPSHOTS),
        "policy": draw(policies),
        "local_updated_at": draw(TIMESTAMPS),
        "remote_updated_at": draw(TIMESTAMPS),
        "local_versions": versions[0],
        "remote_versions": versions[1],
    }


def as_lists(snapshot: dict[str, Any], rnd: Any) -> dict[str, Any]:
    """Same snapshot with sets as shuffled lists with duplicates."""
    out = dict(snapshot)
    for name in SET_FIELDS:
        items = sorted(snapshot[name]) * 2
        rnd.shuffle(items)
        out[name] = items
    return out


@EXAMPLES
@given(merge_inputs(), st.randoms(use_true_random=False))
def test_merge_is_deterministic_and_ignores_input_ordering(
    kwargs: dict[str, Any], rnd: Any
) -> None:
    first = merge_issue(**kwargs)
    assert merge_issue(**kwargs) == first
    shuffled = {
        **kwargs,
        "local": as_lists(kwargs["local"], rnd),
        "remote": as_lists(kwargs["remote"], rnd),
    }
    if kwargs["base"] is not None:
        shuffled["base"] = as_lists(kwargs["base"], rnd)
    assert merge_issue(**shuffled) == first


@EXAMPLES
@given(SNAPSHOTS, SNAPSHOTS, POLICIES, FIELD_VECTORS, FIELD_VECTORS, st.sampled_from(list(Side)))
def test_change_on_one_side_only_never_conflicts(
    base: dict[str, Any],
    changed: dict[str, Any],
    policy: Policy,
    lv: dict[str, VersionVector] | None,
    rv: dict[str, VersionVector] | None,
    changed_side: Side,
) -> None:
    local, remote = (changed, base) if changed_side is Side.LOCAL else (base, changed)
    result = merge_issue(
        base=base, local=local, remote=remote, policy=policy, local_versions=lv, remote_versions=rv
    )
    assert result.conflicts == ()
    assert result.resolutions == ()
    assert dict(result.merged) == normalise_snapshot(changed)
    assert dict(result.new_base) == normalise_snapshot(changed)


@EXAMPLES
@given(merge_inputs())
def test_no_edit_is_lost_field_by_field(kwargs: dict[str, Any]) -> None:
    """Wherever exactly one side changed a field, that change is the outcome."""
    base = kwargs["base"]
    if base is None:
        return
    result = merge_issue(**kwargs)
    b = normalise_snapshot(base)
    loc, rem = normalise_snapshot(kwargs["local"]), normalise_snapshot(kwargs["remote"])
    for name in FIELDS:
        if loc[name] == b[name]:
            assert result.merged[name] == rem[name]
        elif rem[name] == b[name]:
            assert result.merged[name] == loc[name]


@EXAMPLES
@given(OPTIONAL_BASES, SNAPSHOTS, POLICIES, FIELD_VECTORS, FIELD_VECTORS)
def test_identical_sides_merge_to_themselves(
    base: dict[str, Any] | None,
    x: dict[str, Any],
    policy: Policy,
    lv: dict[str, VersionVector] | None,
    rv: dict[str, VersionVector] | None,
) -> None:
    result = merge_issue(
        base=base, local=x, remote=x, policy=policy, local_versions=lv, remote_versions=rv
    )
    assert dict(result.merged) == normalise_snapshot(x)
    assert result.conflicts == ()
    assert dict(result.push) == {}
    assert dict(result.changed_locally) == {}
    assert result.is_noop


@EXAMPLES
@given(
    st.one_of(st.none(), ELEMENT_SETS),
    ELEMENT_SETS,
    ELEMENT_SETS,
    st.randoms(use_true_random=False),
)
def test_set_merge_is_order_independent(
    base: frozenset[str] | None, local: frozenset[str], remote: frozenset[str], rnd: Any
) -> None:
    merged, conflicts = merge_sets(base, local, remote)
    assert merge_sets(base, remote, local) == (merged, conflicts)

    def shuffled(items: frozenset[str]) -> list[str]:
        out = list(items) * 2
        rnd.shuffle(out)
        return out

    shuffled_base = None if base is None else shuffled(base)
    assert merge_sets(shuffled_base, shuffled(local), shuffled(remote)) == (merged, conflicts)


@EXAMPLES
@given(ELEMENT_SETS, ELEMENT_SETS, ELEMENT_SETS)
def test_set_merge_with_base_is_element_wise_and_never_conflicts(
    base: frozenset[str], local: frozenset[str], remote: frozenset[str]
) -> None:
    merged, conflicts = merge_sets(base, local, remote)
    assert conflicts == frozenset()
    for e in base | local | remote:
        in_base, in_local, in_remote = e in base, e in local, e in remote
        expected = in_remote if in_local == in_base else in_local
        assert (e in merged) == expected


@EXAMPLES
@given(ELEMENT_SETS, ELEMENT_SETS)
def test_set_merge_without_base_splits_agreed_and_disputed(
    local: frozenset[str], remote: frozenset[str]
) -> None:
    merged, conflicts = merge_sets(None, local, remote)
    assert merged == local & remote
    assert conflicts == local ^ remote


@EXAMPLES
@given(merge_inputs())
def test_applying_push_and_local_changes_converges(kwargs: dict[str, Any]) -> None:
    result = merge_issue(**kwargs)
    loc, rem = normalise_snapshot(kwargs["local"]), normalise_snapshot(kwargs["remote"])
    local_after = {**loc, **result.changed_locally}
    remote_after = {**rem, **result.push}
    conflicted = result.conflicted_fields
    for name in FIELDS:
        if name in conflicted:
            # The mirror shows the tracker's value; the local one lives in the conflict.
            assert remote_after[name] == rem[name] == local_after[name]
        else:
            assert local_after[name] == remote_after[name] == result.merged[name]
            assert result.new_base[name] == result.merged[name]


@EXAMPLES
@given(merge_inputs())
def test_conflicts_are_well_formed(kwargs: dict[str, Any]) -> None:
    result = merge_issue(**kwargs)
    base = kwargs["base"]
    loc, rem = normalise_snapshot(kwargs["local"]), normalise_snapshot(kwargs["remote"])
    for conflict in result.conflicts:
        name = conflict.field
        assert kwargs["policy"] is Policy.MANUAL
        assert name not in result.push
        assert (conflict.local, conflict.remote) == (loc[name], rem[name])
        assert loc[name] != rem[name]
        if base is None:
            assert conflict.base is None
        else:
            # With a known base only scalars conflict, and only if both moved.
            assert name not in SET_FIELDS
            b = normalise_snapshot(base)[name]
            assert conflict.base == b == result.new_base[name]
            assert b not in (loc[name], rem[name])
        if name in SET_FIELDS:
            assert conflict.elements == loc[name] ^ rem[name]
        else:
            assert conflict.elements == frozenset()


@EXAMPLES
@given(merge_inputs(NON_MANUAL))
def test_non_manual_policy_never_leaves_open_conflicts(kwargs: dict[str, Any]) -> None:
    result = merge_issue(**kwargs)
    assert result.conflicts == ()
    for resolution in result.resolutions:
        side = kwargs["local"] if resolution.winner is Side.LOCAL else kwargs["remote"]
        assert result.merged[resolution.field] == normalise_snapshot(side)[resolution.field]


@EXAMPLES
@given(merge_inputs(st.sampled_from([Policy.LOCAL_WINS, Policy.REMOTE_WINS])))
def test_swapping_sides_and_policy_mirrors_the_result(kwargs: dict[str, Any]) -> None:
    result = merge_issue(**kwargs)
    swapped = merge_issue(
        base=kwargs["base"],
        local=kwargs["remote"],
        remote=kwargs["local"],
        policy=Policy.LOCAL_WINS if kwargs["policy"] is Policy.REMOTE_WINS else Policy.REMOTE_WINS,
        local_versions=kwargs["remote_versions"],
        remote_versions=kwargs["local_versions"],
    )
    assert swapped.merged == result.merged
    assert swapped.push == result.changed_locally
    assert swapped.changed_locally == result.push


@EXAMPLES
@given(SNAPSHOTS, TIMESTAMPS, TIMESTAMPS)
def test_last_writer_wins_follows_strictly_later_timestamp(
    base: dict[str, Any], t_local: datetime | None, t_remote: datetime | None
) -> None:
    result = merge_issue(
        base=base,
        local={**base, "title": "local"},
        remote={**base, "title": "remote"},
        policy=Policy.LAST_WRITER_WINS,
        local_updated_at=t_local,
        remote_updated_at=t_remote,
    )
    local_later = t_local is not None and t_remote is not None and t_local > t_remote
    assert result.merged["title"] == ("local" if local_later else "remote")


# --- VersionVector --------------------------------------------------------------


@EXAMPLES
@given(VECTORS, VECTORS, VECTORS)
def test_dominance_is_a_strict_partial_order(
    a: VersionVector, b: VersionVector, c: VersionVector
) -> None:
    assert not a.dominates(a)
    assert not (a.dominates(b) and b.dominates(a))
    if a.dominates(b) and b.dominates(c):
        assert a.dominates(c)
    # exactly one of: equal, a > b, b > a, concurrent
    relations = [a == b, a.dominates(b), b.dominates(a), a.concurrent_with(b)]
    assert relations.count(True) == 1


@EXAMPLES
@given(VECTORS, VECTORS, REPLICAS)
def test_merged_is_least_upper_bound_and_increment_dominates(
    a: VersionVector, b: VersionVector, replica: str
) -> None:
    m = a.merged(b)
    for v in (a, b):
        assert m == v or m.dominates(v)
    assert m == b.merged(a)
    replicas = set(a.counters) | set(b.counters)
    assert all(m.get(r) == max(a.get(r), b.get(r)) for r in replicas)
    assert a.incremented(replica).dominates(a)
    assert VersionVector.from_dict(a.to_dict()) == a


@EXAMPLES
@given(merge_inputs())
def test_push_and_changed_locally_are_exactly_the_differing_fields(kwargs: dict[str, Any]) -> None:
    # The merge fills both while deciding each field; they must still be what the module
    # docstring defines: every field whose merged value differs from that side's snapshot
    # (push never an open conflict), with the merged value.
    result = merge_issue(**kwargs)
    loc, rem = normalise_snapshot(kwargs["local"]), normalise_snapshot(kwargs["remote"])
    conflicted = result.conflicted_fields
    assert dict(result.push) == {
        f: result.merged[f] for f in FIELDS if f not in conflicted and result.merged[f] != rem[f]
    }
    assert dict(result.changed_locally) == {
        f: result.merged[f] for f in FIELDS if result.merged[f] != loc[f]
    }
