"""Table-driven tests for delete-vs-update and for VersionVector."""

from __future__ import annotations

import json
import pickle

import pytest

from issues.merge import DeletePolicy, Side, VersionVector, resolve_delete

DELETE_ROWS = {
    "local-delete-untouched-remote-delete-wins": (
        DeletePolicy.DELETE_WINS,
        Side.LOCAL,
        False,
        "delete",
    ),
    "local-delete-untouched-remote-update-wins": (
        DeletePolicy.UPDATE_WINS,
        Side.LOCAL,
        False,
        "delete",
    ),
    "remote-delete-untouched-local-update-wins": (
        DeletePolicy.UPDATE_WINS,
        Side.REMOTE,
        False,
        "delete",
    ),
    "local-delete-vs-remote-update-delete-wins": (
        DeletePolicy.DELETE_WINS,
        Side.LOCAL,
        True,
        "delete",
    ),
    "remote-delete-vs-local-update-delete-wins": (
        DeletePolicy.DELETE_WINS,
        Side.REMOTE,
        True,
        "delete",
    ),
    "local-delete-vs-remote-update-update-wins": (
        DeletePolicy.UPDATE_WINS,
        Side.LOCAL,
        True,
        "keep",
    ),
    "remote-delete-vs-local-update-update-wins": (
        DeletePolicy.UPDATE_WINS,
        Side.REMOTE,
        True,
        "keep",
    ),
    "policy-and-side-as-strings": ("update_wins", "remote", True, "keep"),
}


@pytest.mark.parametrize(
    ("policy", "side", "changed", "expected"), list(DELETE_ROWS.values()), ids=list(DELETE_ROWS)
)
def test_resolve_delete(
    policy: DeletePolicy | str, side: Side | str, changed: bool, expected: str
) -> None:
    assert resolve_delete(policy=policy, deleted_side=side, other_side_changed=changed) == expected


@pytest.mark.parametrize(
    ("policy", "side"), [("keep_all", Side.LOCAL), (DeletePolicy.DELETE_WINS, "tracker")]
)
def test_resolve_delete_rejects_unknown_values(policy: str, side: str) -> None:
    with pytest.raises(ValueError):
        resolve_delete(policy=policy, deleted_side=side, other_side_changed=True)


def vv(**counters: int) -> VersionVector:
    return VersionVector(counters)


ORDER_ROWS = {
    # a, b, a.dominates(b), b.dominates(a), concurrent
    "equal": (vv(local=1, remote=2), vv(local=1, remote=2), False, False, False),
    "both-empty": (vv(), vv(), False, False, False),
    "strictly-greater-one-replica": (
        vv(local=2, remote=2),
        vv(local=1, remote=2),
        True,
        False,
        False,
    ),
    "missing-replica-is-zero": (vv(local=1), vv(), True, False, False),
    "explicit-zero-equals-missing": (vv(local=1, remote=0), vv(local=1), False, False, False),
    "concurrent": (vv(local=2, remote=1), vv(local=1, remote=2), False, False, True),
    "concurrent-disjoint-replicas": (vv(local=1), vv(remote=1), False, False, True),
}


@pytest.mark.parametrize(
    ("a", "b", "a_dom", "b_dom", "concurrent"), list(ORDER_ROWS.values()), ids=list(ORDER_ROWS)
)
def test_version_vector_order(
    a: VersionVector, b: VersionVector, a_dom: bool, b_dom: bool, concurrent: bool
) -> None:
    assert a.dominates(b) is a_dom
    assert b.dominates(a) is b_dom
    assert a.concurrent_with(b) is concurrent
    assert b.concurrent_with(a) is concurrent


def test_version_vector_merged_and_incremented() -> None:
    a, b = vv(local=3, remote=1), vv(remote=4, gitea=2)
    assert a.merged(b) == vv(local=3, remote=4, gitea=2)
    assert a.incremented("remote") == vv(local=3, remote=2)
    assert vv().incremented("local") == vv(local=1)
    assert a == vv(local=3, remote=1)  # values, not identity; a itself unchanged


def test_version_vector_zero_counters_are_dropped_for_equality_and_hash() -> None:
    assert vv(local=0) == vv()
    assert hash(vv(local=1, remote=0)) == hash(vv(local=1))
    assert len({vv(local=1, remote=0), vv(local=1)}) == 1


def test_version_vector_is_immutable() -> None:
    v = vv(local=1)
    with pytest.raises(TypeError):
        v.counters["local"] = 5  # type: ignore[index]
    source = {"local": 1}
    w = VersionVector(source)
    source["local"] = 9
    assert w.get("local") == 1


def test_version_vector_json_and_pickle_round_trip() -> None:
    v = vv(remote=7, local=3)
    text = json.dumps(v.to_dict())
    assert VersionVector.from_dict(json.loads(text)) == v
    assert VersionVector.from_dict(None) == vv()
    assert pickle.loads(pickle.dumps(v)) == v


@pytest.mark.parametrize(
    "counters",
    [{"local": -1}, {"local": 1.5}, {"local": True}, {3: 1}, {"local": "2"}],
    ids=["negative", "float", "bool", "int-key", "str-count"],
)
def test_version_vector_rejects_bad_counters(counters: dict[object, object]) -> None:
    with pytest.raises(ValueError):
        VersionVector(counters)  # type: ignore[arg-type]
