"""The bench's fake Gitea lists what the project's fake Gitea lists, page by page, also when
issues change between two pages (it keeps its filtered and sorted selection only while no
issue changed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from bench.fakes import make_fake
from integrations.fake_trackers.gitea import FakeGitea

TOKEN = "bench-token"


@pytest.fixture
def fakes() -> Iterator[tuple[Any, FakeGitea]]:
    bench = make_fake("gitea", token=TOKEN, secret="s", repository="bench/widgets").start()
    plain = FakeGitea(repository="bench/widgets", token=TOKEN, webhook_secret="s").start()
    try:
        yield bench, plain
    finally:
        bench.stop()
        plain.stop()


def listing(fake: Any, **query: Any) -> list[tuple[int, str, str]]:
    """Every page of `GET /issues`, as (number, state, title)."""
    seen: list[tuple[int, str, str]] = []
    page = 1
    while True:
        answer = requests.get(
            f"{fake.url}/api/v1/repos/bench/widgets/issues",
            params={"page": page, "limit": 3, **query},
            headers={"Authorization": f"token {TOKEN}"},
            timeout=5,
        )
        answer.raise_for_status()
        if not answer.json():
            return seen
        seen += [(i["number"], i["state"], i["title"]) for i in answer.json()]
        page += 1


def both(fakes: tuple[Any, FakeGitea], action: str, *args: Any, **kwargs: Any) -> None:
    for fake in fakes:
        getattr(fake, action)(*args, **kwargs)


def page(fake: Any, number: int, **query: Any) -> list[tuple[int, str, str]]:
    answer = requests.get(
        f"{fake.url}/api/v1/repos/bench/widgets/issues",
        params={"page": number, "limit": 3, **query},
        headers={"Authorization": f"token {TOKEN}"},
        timeout=5,
    )
    answer.raise_for_status()
    return [(i["number"], i["state"], i["title"]) for i in answer.json()]


@pytest.mark.parametrize(
    "change",
    [
        ("edit_issue", (3,), {"state": "closed"}),  # leaves the open listing
        ("edit_issue", (6,), {"title": "renamed"}),
        ("delete_issue", (7,), {}),
        # Removed and another added with an old stamp (no clock read): as many as before.
        ("delete_and_seed", (), {}),
    ],
    ids=["closed", "renamed", "deleted", "replaced"],
)
def test_the_listing_follows_a_change_between_two_pages(fakes, change) -> None:
    bench, plain = fakes
    for n in range(8):
        both(fakes, "seed_issue", title=f"issue {n}", notify=False)
    action, args, kwargs = change
    assert page(bench, 1) == page(plain, 1)  # the selection is kept after this page
    if action == "delete_and_seed":
        stamp = plain.issues[2].updated_at
        both(fakes, "delete_issue", 8, notify=False)
        both(fakes, "seed_issue", title="stamped", updated_at=stamp, notify=False)
    else:
        both(fakes, action, *args, notify=False, **kwargs)
    for number in (1, 2, 3):
        assert page(bench, number) == page(plain, number)
    assert listing(bench, state="all") == listing(plain, state="all")
