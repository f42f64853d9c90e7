"""Micro-benchmark of ``merge_issue`` for ``make bench`` (key ``merges_per_s``: merges of
all six fields per second, one process; target >= 100,000).

The inputs are fixed and cover the paths a real sync run takes, weighted
towards the common case (nothing or one side changed) so the figure tracks
production throughput rather than the rare conflict path.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from issues.merge import Policy, VersionVector, merge_issue

_BASE: Mapping[str, Any] = {
    "title": "Crash when saving a draft",
    "body": "Steps to reproduce:\n1. open the editor\n2. save\n" * 8,
    "state": "open",
    "labels": ["bug", "editor", "p2"],
    "assignees": ["alice"],
    "milestone": "v1.4",
}


def _with(**changes: Any) -> dict[str, Any]:
    return {**_BASE, **changes}


_T_LOCAL = datetime(2025, 1, 2, 10, 0, tzinfo=UTC)
_T_REMOTE = datetime(2025, 1, 2, 10, 5, tzinfo=UTC)

# (kwargs for merge_issue, weight)
_CASES: tuple[tuple[dict[str, Any], int], ...] = (
    # unchanged: an echo of our own push or an unchanged poll result
    ({"base": _BASE, "local": _BASE, "remote": _BASE}, 4),
    # one side changed
    ({"base": _BASE, "local": _BASE, "remote": _with(state="closed")}, 3),
    ({"base": _BASE, "local": _with(title="Crash on save"), "remote": _BASE}, 2),
    # both changed different fields, sets merged element by element
    (
        {
            "base": _BASE,
            "local": _with(labels=["bug", "editor", "p2", "regression"]),
            "remote": _with(labels=["bug", "editor"], assignees=["alice", "bob"]),
        },
        2,
    ),
    # concurrent scalar edits: manual conflict and last-writer-wins
    ({"base": _BASE, "local": _with(title="A"), "remote": _with(title="B")}, 1),
    (
        {
            "base": _BASE,
            "local": _with(milestone="v1.5"),
            "remote": _with(milestone="v2.0"),
            "policy": Policy.LAST_WRITER_WINS,
            "local_updated_at": _T_LOCAL,
            "remote_updated_at": _T_REMOTE,
        },
        1,
    ),
    # causally ordered edits decided by version vectors
    (
        {
            "base": _BASE,
            "local": _with(body="local body"),
            "remote": _with(body="remote body"),
            "local_versions": {"body": VersionVector({"local": 2, "remote": 1})},
            "remote_versions": {"body": VersionVector({"local": 2, "remote": 2})},
        },
        1,
    ),
    # first contact: no base
    ({"base": None, "local": _BASE, "remote": _with(labels=["bug"])}, 1),
)

_SCHEDULE: tuple[dict[str, Any], ...] = tuple(
    kwargs for kwargs, weight in _CASES for _ in range(weight)
)


def merges_per_second(n: int = 20000) -> float:
    """Run ``n`` merges over the fixed inputs and return merges per second."""
    if n <= 0:
        raise ValueError("n must be positive")
    schedule = _SCHEDULE
    size = len(schedule)
    start = time.perf_counter()
    for i in range(n):
        merge_issue(**schedule[i % size])
    elapsed = time.perf_counter() - start
    # A clock with coarse resolution can report 0 for a tiny n.
    return n / max(elapsed, 1e-9)
