"""Fetch the next page of a listing while the caller works on this one.

A full reconciliation alternates between waiting for the tracker (a page of 50-100 issues)
and writing that page to the database. The two do not depend on each other, so the listing
runs one page ahead in a background thread: while page n is written, page n+1 is on its way.

The rules, each a promise to the caller:

* **One page ahead, no more.** The request for page n+1 starts when page n is handed over,
  never earlier: the tracker sees the same requests in the same order as without prefetch
  (the request count of a full pass stays ceil(N / page size)), and at most one page waits
  in memory.
* **Errors arrive where the page would have.** A request that fails in the thread raises, in
  the caller, at the `next()` that asked for that page, with its own type and traceback.
* **Stopping early stops the thread.** When the caller stops iterating (break, exception,
  `close()`, garbage collection), no further page is requested: the page in flight, if any,
  is awaited and dropped, the source is closed (its `finally` blocks run) and the thread
  ends. Nothing outlives the listing.
* **One thread touches the source at a time.** The source iterator only ever runs in the
  background thread, one step after another, so a source that is not thread-safe (a
  generator over one HTTP session) is safe. `on_thread_exit` runs in that thread as it ends,
  for what the source's calls left bound to it (ConnectionGate's database connection).

Pure standard library; no Django, no HTTP: the source is any iterator.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

_END = object()  # the source is exhausted


class _Worker:
    """A thread that runs one step of the source when asked, and ends on `stop()`."""

    def __init__(self, source: Iterator[object], on_thread_exit: Callable[[], None] | None) -> None:
        self._source = source
        self._on_thread_exit = on_thread_exit
        self._asked: Future[object] | None = None
        self._wake = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="listing-prefetch", daemon=True)
        self._thread.start()

    def ask(self) -> Future[object]:
        """Start fetching the next item; its Future resolves to the item, or `_END`."""
        future: Future[object] = Future()
        with self._wake:
            self._asked = future
            self._wake.notify()
        return future

    def _run(self) -> None:
        try:
            while True:
                with self._wake:
                    while self._asked is None and not self._stopping:
                        self._wake.wait()
                    if self._asked is None:
                        return  # stopped, nothing asked
                    future, self._asked = self._asked, None
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    future.set_result(next(self._source, _END))
                except BaseException as exc:  # noqa: BLE001 - handed to the caller as is
                    future.set_exception(exc)
        finally:
            try:
                close = getattr(self._source, "close", None)
                if close is not None:
                    close()  # the source's own finally blocks, in the thread that ran it
            finally:
                if self._on_thread_exit is not None:
                    self._on_thread_exit()

    def stop(self) -> None:
        """No more steps: the one in flight (if any) finishes, then the thread ends."""
        with self._wake:
            self._stopping = True
            if self._asked is not None:
                self._asked.cancel()
                self._asked = None
            self._wake.notify()
        if threading.current_thread() is not self._thread:
            self._thread.join()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()


def prefetched(
    source: Iterator[T], *, on_thread_exit: Callable[[], None] | None = None
) -> Iterator[T]:
    """The items of `source`, each fetched in a background thread while the caller works on
    the one before (see the module docstring for the guarantees).

    The first item is asked for when the caller first calls `next()`, as with the source
    itself: creating the iterator sends nothing."""
    return _prefetch(source, on_thread_exit)


def _prefetch(source: Iterator[T], on_thread_exit: Callable[[], None] | None) -> Iterator[T]:
    worker = _Worker(source, on_thread_exit)
    try:
        pending = worker.ask()
        while True:
            item = pending.result()  # re-raises the source's exception here
            if item is _END:
                return
            pending = worker.ask()  # page n+1 is requested as page n is handed over
            yield item  # type: ignore[misc]
    finally:
        worker.stop()
