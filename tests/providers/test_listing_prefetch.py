"""A full listing fetches page n+1 while the caller works on page n (issue 18, deliverable 4).

`prefetch.prefetched` on its own (ordering and thread rules, made deterministic with events),
then every provider's `iter_issue_pages` against its fake: the same pages and the same
requests as the sequential `fetch_issue_pages`, an error raised where its page would have
been, and a caller that stops early stopping the thread. No mocks: the fakes serve HTTP.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from integrations.fake_trackers.base import Fault
from integrations.providers.base import ProviderError
from integrations.providers.prefetch import prefetched
from tests.providers.kits import KITS, Kit

WAIT = 10.0  # seconds a test waits for the other thread before it fails


def prefetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "listing-prefetch"]


class Source:
    """An iterator that records which items were asked for, in which thread, and whether it
    was closed; item `fail_at` raises instead."""

    def __init__(self, count: int, *, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.started: list[int] = []
        self.threads: set[int] = set()
        self.closed = threading.Event()
        self.asked = [threading.Event() for _ in range(count + 1)]
        self.iterator = self._run()

    def _run(self) -> Iterator[int]:
        try:
            for i in range(self.count):
                self.started.append(i)
                self.threads.add(threading.get_ident())
                self.asked[i].set()
                if i == self.fail_at:
                    raise LookupError(f"item {i} failed")
                yield i
        finally:
            self.closed.set()


# --- the helper -------------------------------------------------------------------------------


def test_items_arrive_in_order_each_fetched_in_one_background_thread():
    source = Source(5)
    exits: list[int] = []
    out = list(prefetched(source.iterator, on_thread_exit=lambda: exits.append(1)))
    assert out == [0, 1, 2, 3, 4]
    assert source.started == [0, 1, 2, 3, 4]
    assert len(source.threads) == 1 and threading.get_ident() not in source.threads
    assert exits == [1]  # once, as the thread ended
    assert source.closed.is_set()
    assert prefetch_threads() == []


def test_nothing_is_fetched_before_the_first_next():
    source = Source(3)
    listing = prefetched(source.iterator)
    assert source.started == []
    assert prefetch_threads() == []
    assert next(listing) == 0
    listing.close()  # type: ignore[attr-defined]


def test_the_next_item_is_fetched_while_the_caller_holds_this_one_and_no_further():
    source = Source(5)
    listing = prefetched(source.iterator)
    assert next(listing) == 0
    # The caller has not asked for item 1, yet it is being fetched.
    assert source.asked[1].wait(WAIT)
    listing.close()  # type: ignore[attr-defined]
    # Stopped with item 1 fetched and unused: item 2 was never asked for, the source was
    # closed (its finally ran) and the thread ended.
    assert source.started == [0, 1]
    assert source.closed.is_set()
    assert prefetch_threads() == []


def test_an_error_is_raised_at_the_item_that_failed_with_its_own_type():
    source = Source(5, fail_at=2)
    listing = prefetched(source.iterator)
    assert next(listing) == 0
    assert next(listing) == 1
    with pytest.raises(LookupError, match="item 2 failed"):
        next(listing)
    assert source.started == [0, 1, 2]
    assert prefetch_threads() == []


def test_breaking_out_of_a_loop_stops_the_thread():
    source = Source(10)
    for item in prefetched(source.iterator):
        if item == 3:
            break
    assert source.closed.wait(WAIT)
    # Item 4 was asked for as item 3 was handed over; the thread may not have started it
    # before the caller stopped (then it never does). Nothing beyond it either way.
    assert source.started in ([0, 1, 2, 3], [0, 1, 2, 3, 4])
    for thread in prefetch_threads():
        thread.join(WAIT)
    assert prefetch_threads() == []


def test_an_exception_in_the_caller_stops_the_thread():
    source = Source(10)

    def consume() -> None:
        for item in prefetched(source.iterator):
            if item == 1:
                raise KeyError("caller failed")

    with pytest.raises(KeyError):
        consume()
    assert source.closed.wait(WAIT)
    assert source.started in ([0, 1], [0, 1, 2])
    for thread in prefetch_threads():
        thread.join(WAIT)
    assert prefetch_threads() == []


# --- every provider's full listing ------------------------------------------------------------

SEEDED = 7
PAGE = 3  # ceil(7 / 3) = 3 pages


@pytest.fixture(params=KITS, ids=[k.provider for k in KITS])
def kit(request: pytest.FixtureRequest) -> Kit:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def fake(kit: Kit) -> Iterator[Any]:
    tracker = kit.make_fake()
    tracker.max_page_size = PAGE
    tracker.start()
    for n in range(SEEDED):
        tracker.seed_issue(title=f"issue {n}")
    yield tracker
    tracker.stop()


def small_pages(kit: Kit, fake: Any) -> Any:
    client = kit.client(fake)
    client.max_page_size = PAGE  # type: ignore[misc]
    return client


def listing_requests(kit: Kit, fake: Any) -> list[str]:
    return [
        f"{r.method} {r.path}?{sorted(r.query.items())}"
        for r in fake.requests
        if kit.list_path in r.path and r.method == "GET"
    ]


def ids(pages: list[Any]) -> list[list[str]]:
    return [[issue.external_id for issue in page] for page in pages]


def test_the_prefetched_listing_has_the_same_pages_and_requests_as_the_sequential_one(
    kit: Kit, fake: Any
):
    sequential = small_pages(kit, fake)
    fake.reset_requests()
    expected = list(sequential.fetch_issue_pages())
    expected_requests = listing_requests(kit, fake)
    expected_count = sequential.requests_made
    sequential.close()

    prefetching = small_pages(kit, fake)
    fake.reset_requests()
    pages = list(prefetching.iter_issue_pages())
    assert ids(pages) == ids(expected)
    assert pages == expected
    assert sum(len(p) for p in pages) == SEEDED
    assert len(pages) >= 3  # the test pages, or it proves nothing
    assert listing_requests(kit, fake) == expected_requests
    assert prefetching.requests_made == expected_count
    prefetching.close()
    assert prefetch_threads() == []


def test_the_next_page_is_requested_while_the_caller_holds_this_one(kit: Kit, fake: Any):
    client = small_pages(kit, fake)
    fake.reset_requests()
    second = threading.Event()
    served: list[int] = []

    def seen() -> None:
        served.append(1)
        if len(served) == 2:
            second.set()

    # status=0: served as usual; `before` notes each listing request as it arrives.
    fake.inject(Fault(status=0, count=100, method="GET", path_contains=kit.list_path, before=seen))
    listing = client.iter_issue_pages()
    next(listing)
    assert second.wait(WAIT), "page 2 was not requested while the caller held page 1"
    listing.close()  # type: ignore[attr-defined]
    assert len(served) == 2  # one page ahead, then stopped
    client.close()
    assert prefetch_threads() == []


def test_a_failing_page_raises_where_it_would_have_sequentially(kit: Kit, fake: Any):
    def fail_next_listing_request() -> None:
        fake.inject(Fault(status=401, method="GET", path_contains=kit.list_path))

    outcomes = []
    for listing_of in ("fetch_issue_pages", "iter_issue_pages"):
        client = small_pages(kit, fake)
        # Page 1 is served, and arms a 401 for the request after it: page 2.
        fake.inject(
            Fault(
                status=0,
                method="GET",
                path_contains=kit.list_path,
                before=fail_next_listing_request,
            )
        )
        got: list[Any] = []
        with pytest.raises(ProviderError) as raised:
            for page in getattr(client, listing_of)():
                got.append(page)
        outcomes.append((ids(got), type(raised.value), str(raised.value)))
        client.close()
        fake.faults.clear()
    assert outcomes[0] == outcomes[1]
    assert len(outcomes[1][0]) == 1  # page 1 arrived, page 2 raised
    assert prefetch_threads() == []


def test_a_caller_that_stops_after_one_page_stops_the_listing(kit: Kit, fake: Any):
    client = small_pages(kit, fake)
    fake.reset_requests()
    for _page in client.iter_issue_pages():
        break
    # Page 2 was on its way when the caller stopped; page 3 is never asked for.
    assert len(listing_requests(kit, fake)) <= 2
    assert prefetch_threads() == []
    client.close()
