"""The tracker answers 500, 429 and hangs for a while: back off, then succeed, lose nothing
(issue "Production hardening", item 3).

Everything real but the tracker, which is a provider's stateful fake over HTTP on loopback
with injected faults (`Fault`): the outbox drain, polling and reconciliation, the webhook
intake and processing, on the test database. No sleeping for minutes: "time passes" by moving
the stored due times back (`travel`), which is the same as the clock moving forward; the
only real waits are the hangs, a fraction of a second each (PROVIDER_HTTP_TIMEOUT is lowered).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
from django.db.models import F
from django.utils import timezone

from integrations.fake_trackers.base import FakeTracker, Fault
from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from issues.inbound import MAX_DELIVERY_ATTEMPTS, process_delivery, stuck_deliveries
from issues.models import Conflict, Issue, OutboxEntry, OutboxStatus, SyncLog, SyncStatus
from issues.outbox import MAX_ATTEMPTS, backoff, drain, outbox_retry
from issues.polling import due_connections
from issues.services.issues import issue_update
from tests.engine.conftest import ProviderHarness

PROVIDERS = ("gitea", "github", "gitlab")
TIMEOUT = 0.25  # PROVIDER_HTTP_TIMEOUT for these tests, in seconds
HANG = 0.7  # how long a hanging tracker sits on a request before answering
RETRY_AFTER = 600  # seconds a 429 asks us to wait: far longer than the backoff
WRITES = ("POST", "PATCH", "PUT", "DELETE")
# The calls that write an issue: Gitea PATCHes it (and POSTs/DELETEs its labels), GitHub
# PATCHes it (and POSTs/DELETEs its labels and assignees), GitLab PUTs it.
ISSUE_IN_PATH = re.compile(r"/issues/(\d+)")
WRITE_METHODS = {
    "gitea": ("PATCH", "PUT", "POST", "DELETE"),
    "github": ("PATCH", "POST", "DELETE"),
    "gitlab": ("PUT",),
}


# --- helpers -----------------------------------------------------------------------------------


def travel(delta: timedelta) -> None:
    """Let `delta` pass for the outbox: every pending row's due time, and the end of any
    connection's rate limit, come `delta` closer."""
    OutboxEntry.objects.filter(status=OutboxStatus.PENDING).update(
        next_attempt_at=F("next_attempt_at") - delta
    )
    Connection.objects.filter(rate_limited_until__isnull=False).update(
        rate_limited_until=F("rate_limited_until") - delta
    )


def travel_deliveries(delta: timedelta) -> None:
    """Let `delta` pass for stored deliveries (what the sweep compares with the clock)."""
    WebhookDelivery.objects.update(
        received_at=F("received_at") - delta, processed_at=F("processed_at") - delta
    )


def issue_number(path: str) -> int:
    match = ISSUE_IN_PATH.search(path)
    assert match is not None, path
    return int(match[1])


def due_in(entry: OutboxEntry) -> timedelta:
    entry.refresh_from_db()
    return entry.next_attempt_at - timezone.now()


def successful_writes(fake: FakeTracker) -> Counter[tuple[str, str]]:
    """(method, path) of every write the tracker carried out (answered 2xx)."""
    with fake.lock:
        return Counter(
            (r.method, r.path)
            for r in fake.requests
            if r.method in WRITES and 200 <= r.status < 300
        )


def wait_for_hung_requests(fake: FakeTracker, timeout: float = 5.0) -> None:
    """A hung request is still served after the client gave up: wait until it has been."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with fake.lock:
            if all(r.status for r in fake.requests):
                return
        time.sleep(0.02)
    raise AssertionError("the fake is still serving a request")


def assert_backed_off(entries: list[OutboxEntry], *, attempts: int, wait: timedelta) -> None:
    """Each row is pending again after its `attempts`-th failure, due in (about) `wait`."""
    for entry in entries:
        left = due_in(entry)
        assert entry.status == OutboxStatus.PENDING, entry.last_error
        assert entry.attempts == attempts
        assert wait - timedelta(seconds=15) < left <= wait, (attempts, left)
        assert entry.claimed_until is None and entry.last_error


def assert_nothing_due(h: ProviderHarness) -> None:
    """The drain leaves a backed-off row alone: no claim, and not one request to the tracker."""
    requests_before = len(h.fake.requests)
    report = h.drain()
    assert report.claimed_issues == 0
    assert len(h.fake.requests) == requests_before


# --- outbox ------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_outbox_rides_out_500_then_429_then_a_hang_and_writes_each_change_once(
    tracker_harness, settings, provider
):
    settings.PROVIDER_HTTP_TIMEOUT = TIMEOUT
    h: ProviderHarness = tracker_harness(provider)
    fake = h.fake
    first = fake.seed_issue(title="Crash on save", labels=["bug"], milestone="v1")
    second = fake.seed_issue(title="Slow search", assignees=["alice"])
    assert h.poll(full=True).success
    a, b = h.issue(first.number), h.issue(second.number)
    # Two edits of one issue (coalesced into one push), one of another.
    issue_update(issue=a, changes={"title": "Crash on save (macOS)", "labels": ["bug", "ui"]})
    issue_update(issue=h.issue(first.number), changes={"body": "steps to reproduce"})
    issue_update(issue=b, changes={"state": "closed", "assignees": ["alice", "bob"]})
    wanted = {n: h.issue(n).snapshot() for n in (first.number, second.number)}
    entries = list(OutboxEntry.objects.order_by("id"))
    assert len(entries) == 3
    assert {h.issue(n).sync_status for n in wanted} == {SyncStatus.PENDING}
    before_faults = successful_writes(fake)

    # 1. 500s: every call fails. Backoff 2^0 minutes; not retried before that.
    fake.inject(Fault(status=500, count=10_000))
    report = h.drain()
    assert (report.claimed_issues, report.retried, report.pushed, report.failed) == (2, 2, 0, 0)
    assert_backed_off(entries, attempts=1, wait=backoff(1))
    assert "500" in entries[0].last_error
    assert {h.issue(n).sync_status for n in wanted} == {SyncStatus.PENDING}
    assert_nothing_due(h)
    travel(backoff(1) - timedelta(seconds=20))
    assert_nothing_due(h)
    travel(timedelta(seconds=21))

    # 2. 429 with Retry-After (and the provider's rate-limit headers): the row waits for
    #    Retry-After, well past its 2^1 minutes of backoff.
    fake.faults.clear()
    fake.inject(Fault(status=429, retry_after=RETRY_AFTER, count=10_000))
    report = h.drain()
    assert (report.claimed_issues, report.retried, report.pushed) == (2, 2, 0)
    assert backoff(2) < timedelta(seconds=RETRY_AFTER)
    assert_backed_off(entries, attempts=2, wait=timedelta(seconds=RETRY_AFTER))
    assert "rate limited" in entries[0].last_error
    travel(backoff(2) + timedelta(seconds=5))  # the backoff alone would have retried now
    assert_nothing_due(h)
    travel(timedelta(seconds=RETRY_AFTER) - backoff(2))

    # 3. The tracker hangs on the writes past PROVIDER_HTTP_TIMEOUT. The first issue's write
    #    is carried out anyway after we gave up (and its echo arrives before our retry); the
    #    second's ends in an error nobody hears.
    fake.faults.clear()
    for method in WRITE_METHODS[provider]:
        for number, status in ((first.number, 0), (second.number, 500)):
            fake.inject(
                Fault(
                    status=status,
                    hang_seconds=HANG,
                    method=method,
                    path_contains=f"/issues/{number}",
                    count=10_000,
                )
            )
    started = time.monotonic()
    report = h.drain()
    assert time.monotonic() - started < 2 * HANG + 1  # the timeout cut each hang short
    assert (report.claimed_issues, report.retried, report.pushed) == (2, 2, 0)
    assert_backed_off(entries, attempts=3, wait=backoff(3))
    assert f"no answer within {TIMEOUT:g}s" in entries[0].last_error
    wait_for_hung_requests(fake)
    fake.faults.clear()
    late = successful_writes(fake) - before_faults
    assert {issue_number(path) for _, path in late} == {first.number}
    for hook in h.take_hooks():
        assert h.deliver(hook).status_code == 202
    assert not Conflict.objects.exists()
    assert {h.issue(n).sync_status for n in wanted} == {SyncStatus.PENDING}

    # 4. The tracker is back: the retry reads first, finds what already landed, writes the rest.
    assert_nothing_due(h)
    travel(backoff(3))
    report = h.drain()
    assert (report.retried, report.failed) == (0, 0)
    assert report.pushed + report.skipped == 2 and report.pushed >= 1
    logs = SyncLog.objects.count()
    for hook in h.take_hooks():  # the echoes of the final writes change nothing
        assert h.deliver(hook).status_code == 202
    assert SyncLog.objects.count() == logs

    for number, values in wanted.items():
        assert fake.issues[number].snapshot() == values
        issue = h.issue(number)
        assert issue.snapshot() == values
        assert issue.sync_status == SyncStatus.SYNCED and issue.sync_error == ""
    writes = successful_writes(fake) - before_faults
    assert set(writes.values()) == {1}, f"a write was repeated: {writes}"
    assert {issue_number(path) for _, path in writes} == set(wanted)
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {OutboxStatus.DONE}
    assert not Conflict.objects.exists()
    assert h.drain().claimed_issues == 0


def test_a_single_503_to_a_write_is_retried_by_the_outbox_after_a_fresh_read(harness):
    """502/503/504 on a write: the transport does not repeat it blindly (a tracker edit may
    land in between, issue 12 #1); the outbox retries after reading the issue again.
    Failed before: urllib3 retried the PATCH at once (2 PATCHes in one attempt)."""
    remote = harness.fake.seed_issue(title="Typo")
    harness.poll(full=True)
    issue_update(issue=harness.issue(remote.number), changes={"title": "Typo fixed"})
    harness.fake.inject(Fault(status=503, count=1, method="PATCH"))
    report = harness.drain()
    assert (report.pushed, report.retried) == (0, 1)
    assert harness.fake.count_requests("PATCH") == 1
    travel(backoff(1))
    assert harness.drain().pushed == 1
    entry = OutboxEntry.objects.get()
    assert (entry.status, entry.attempts) == (OutboxStatus.DONE, 2)
    assert sum(successful_writes(harness.fake).values()) == 1
    assert harness.fake.issues[remote.number].title == "Typo fixed"


def test_github_exhausted_rate_limit_waits_for_the_reset_instead_of_failing(tracker_harness):
    """GitHub's primary rate limit is a 403 with `x-ratelimit-remaining: 0` and no
    Retry-After: transient (a plain 403 is permanent), due when `x-ratelimit-reset` says."""
    h: ProviderHarness = tracker_harness("github")
    remote = h.fake.seed_issue(title="Rate limited")
    h.poll(full=True)
    issue_update(issue=h.issue(remote.number), changes={"title": "Pushed after the reset"})
    h.fake.exhaust_rate_limit(reset_in=900)
    report = h.drain()
    assert (report.retried, report.failed) == (1, 0)
    entry = OutboxEntry.objects.get()
    assert entry.status == OutboxStatus.PENDING
    assert timedelta(seconds=880) < due_in(entry) <= timedelta(seconds=901)
    assert h.issue(remote.number).sync_status == SyncStatus.PENDING

    h.fake.rate_limit_limit = 1_000_000  # the budget is back
    travel(timedelta(minutes=14))
    assert_nothing_due(h)
    travel(timedelta(seconds=61))
    assert h.drain().pushed == 1
    assert h.fake.issues[remote.number].title == "Pushed after the reset"
    assert h.issue(remote.number).sync_status == SyncStatus.SYNCED


def test_a_rate_limited_push_holds_the_connections_other_rows_until_the_tracker_allows(harness):
    """One 429 is enough to know the whole connection is limited: the drain does not spend a
    refused request on each of its other issues."""
    first = harness.fake.seed_issue(title="one")
    second = harness.fake.seed_issue(title="two")
    harness.poll(full=True)
    for remote in (first, second):
        issue_update(issue=harness.issue(remote.number), changes={"body": "edited"})
    harness.fake.inject(Fault(status=429, retry_after=RETRY_AFTER, count=1))
    harness.fake.reset_requests()

    report = drain(limit=1)  # one issue per claim: the second is claimed after the 429
    assert (report.claimed_issues, report.retried) == (1, 1)
    assert harness.fake.count_requests() == 1
    limited_until = Connection.objects.get().rate_limited_until
    assert limited_until is not None
    assert limited_until - timezone.now() > timedelta(seconds=RETRY_AFTER - 30)
    waiting = OutboxEntry.objects.get(issue=harness.issue(second.number))
    assert waiting.status == OutboxStatus.PENDING and waiting.attempts == 0

    travel(timedelta(seconds=RETRY_AFTER))
    report = drain()
    assert (report.pushed, report.retried) == (2, 0)
    for remote in (first, second):
        assert harness.fake.issues[remote.number].body == "edited"


def test_a_rate_limited_poll_is_not_scheduled_again_before_the_tracker_allows(harness):
    harness.poll(full=True)
    harness.fake.inject(Fault(status=429, retry_after=RETRY_AFTER, method="GET", count=1))
    run = harness.poll()
    assert not run.success and "rate limited" in run.error
    connection = Connection.objects.get()
    assert connection.rate_limited_until is not None
    # Its interval is long up, but the tracker said when to come back.
    Connection.objects.update(last_polled_at=timezone.now() - timedelta(hours=1))
    assert connection.pk not in due_connections()
    travel(timedelta(seconds=RETRY_AFTER))
    assert connection.pk in due_connections()
    harness.fake.seed_issue(title="made while we waited")
    assert harness.poll().success
    # Only time ends a pause: a run never clears it (issue 12 #14), it is simply over.
    assert Connection.objects.get().rate_limited_until <= timezone.now()
    assert Issue.objects.filter(title="made while we waited").exists()


def test_too_many_transient_failures_fail_the_row_visibly_and_a_retry_then_succeeds(harness):
    remote = harness.fake.seed_issue(title="Flaky")
    harness.poll(full=True)
    issue_update(issue=harness.issue(remote.number), changes={"title": "Flaky no more"})
    entry = OutboxEntry.objects.get()
    harness.fake.inject(Fault(status=500, count=10_000))
    for attempt in range(1, MAX_ATTEMPTS + 1):
        report = harness.drain()
        if attempt < MAX_ATTEMPTS:
            assert report.retried == 1
            assert_backed_off([entry], attempts=attempt, wait=backoff(attempt))
            assert harness.issue(remote.number).sync_status == SyncStatus.PENDING
            travel(backoff(attempt))
    assert report.failed == 1
    entry.refresh_from_db()
    assert (entry.status, entry.attempts) == (OutboxStatus.FAILED, MAX_ATTEMPTS)
    issue = harness.issue(remote.number)
    assert issue.sync_status == SyncStatus.ERROR
    assert "500" in issue.sync_error and "500" in entry.last_error
    assert issue.title == "Flaky no more"  # the local edit is kept, not rolled back
    travel(timedelta(days=30))
    assert_nothing_due(harness)  # a failed row waits for a human
    assert harness.fake.issues[remote.number].title == "Flaky"

    harness.fake.faults.clear()
    assert outbox_retry(entry_ids=[entry.pk]) == 1
    entry.refresh_from_db()
    assert (entry.status, entry.attempts) == (OutboxStatus.PENDING, 0)
    assert harness.drain().pushed == 1
    entry.refresh_from_db()
    assert entry.status == OutboxStatus.DONE
    issue = harness.issue(remote.number)
    assert (issue.sync_status, issue.sync_error) == (SyncStatus.SYNCED, "")
    assert harness.fake.issues[remote.number].title == "Flaky no more"
    assert sum(successful_writes(harness.fake).values()) == 1


def test_a_requeued_failed_push_shows_the_issue_pending(harness):
    remote = harness.fake.seed_issue(title="Flaky")
    harness.poll(full=True)
    issue_update(issue=harness.issue(remote.number), changes={"title": "Flaky no more"})
    harness.fake.inject(Fault(status=422, count=1))  # permanent: FAILED at once
    assert harness.drain().failed == 1
    assert harness.issue(remote.number).sync_status == SyncStatus.ERROR
    outbox_retry(entry_ids=list(OutboxEntry.objects.values_list("pk", flat=True)))
    assert harness.issue(remote.number).sync_status == SyncStatus.PENDING


# --- polling -----------------------------------------------------------------------------------


def _mirror_state(h: ProviderHarness) -> dict[str, Any]:
    return {
        issue.external_number: (issue.snapshot(), issue.remote_updated_at)
        for issue in Issue.objects.filter(connection=h.connection)
    }


def _assert_mirror_equals_tracker(h: ProviderHarness) -> None:
    mirror = {int(i.external_number): i for i in Issue.objects.filter(connection=h.connection)}
    assert sorted(mirror) == sorted(h.fake.issues)
    for number in h.fake.issues:
        assert mirror[number].snapshot() == h.fake.issues[number].snapshot(), f"#{number}"


@pytest.mark.parametrize("provider", PROVIDERS)
def test_poll_fails_cleanly_on_500_429_and_a_hang_and_the_next_poll_loses_nothing(
    tracker_harness, settings, provider
):
    settings.PROVIDER_HTTP_TIMEOUT = TIMEOUT
    h: ProviderHarness = tracker_harness(provider)
    fake = h.fake
    issues = [fake.seed_issue(title=f"issue {n}", labels=["bug"]) for n in range(3)]
    assert h.poll(full=True).success
    assert h.poll().success
    h.connection.refresh_from_db()
    cursor, etag = h.connection.poll_cursor, h.connection.poll_etag
    # Changes in the tracker that no webhook brings.
    fake.edit_issue(issues[0].number, notify=False, title="renamed while we could not look")
    fake.edit_issue(issues[1].number, notify=False, labels=["docs"], state="closed")
    fake.seed_issue(title="created while we could not look")
    before = _mirror_state(h)
    logs = SyncLog.objects.count()

    for fault, error in (
        (Fault(status=500), "HTTP 500"),
        (Fault(status=429, retry_after=120), "rate limited"),
        (Fault(status=0, hang_seconds=HANG), f"no answer within {TIMEOUT:g}s"),
    ):
        fake.inject(fault)
        run = h.poll()
        assert fake.faults == [], "the fault was hit"
        assert run.success is False and run.finished_at is not None
        assert run.error.startswith("transient") and error in run.error, run.error
        assert (run.created, run.updated) == (0, 0)
        h.connection.refresh_from_db()
        assert h.connection.poll_cursor == cursor, "a failed run never moves the cursor"
        assert h.connection.poll_etag == etag
        assert h.connection.sync_lock_until is None  # the next run is not locked out
        assert _mirror_state(h) == before, "a failed run applied part of a listing"
        assert SyncLog.objects.count() == logs
        travel(timedelta(minutes=3))  # past a rate-limit pause: every call passes the gate
    wait_for_hung_requests(fake)

    run = h.poll()
    assert run.success, run.error
    assert (run.created, run.updated) == (1, 2)
    _assert_mirror_equals_tracker(h)
    h.connection.refresh_from_db()
    assert cursor is not None and h.connection.poll_cursor is not None
    assert h.connection.poll_cursor > cursor
    assert sum(fake.count_requests(m) for m in WRITES) == 0  # nothing pushed back


@pytest.mark.parametrize("provider", PROVIDERS)
def test_full_reconciliation_failing_on_page_two_deletes_nothing_and_the_next_one_finishes(
    tracker_harness, provider
):
    h: ProviderHarness = tracker_harness(provider)
    fake = h.fake
    count = fake.max_page_size + 3  # two pages at the largest page size
    for n in range(count):
        fake.seed_issue(title=f"issue {n}")
    assert h.poll(full=True).success
    h.connection.refresh_from_db()
    cursor, full_at = h.connection.poll_cursor, h.connection.last_full_sync_at
    numbers = sorted(fake.issues)
    gone, edited = numbers[0], numbers[-1]
    fake.delete_issue(gone, notify=False)
    fake.edit_issue(edited, notify=False, title="edited while we were away")
    fake.seed_issue(title="created while we were away")

    fake.inject(Fault(status=500, method="GET", query={"page": "2"}))
    run = h.poll(full=True)
    assert fake.faults == [], "page 2 was asked for, and failed"
    assert run.success is False and "HTTP 500" in run.error
    # Page 1 may have been applied; what the failed listing did not show is not deleted.
    assert run.deleted == 0
    assert Issue.objects.filter(connection=h.connection, external_number=str(gone)).exists()
    h.connection.refresh_from_db()
    assert (h.connection.poll_cursor, h.connection.last_full_sync_at) == (cursor, full_at)

    run = h.poll(full=True)
    assert run.success, run.error
    assert run.deleted == 1
    _assert_mirror_equals_tracker(h)


# --- webhooks that need a re-read --------------------------------------------------------------


def _gitlab_hook_without_the_milestone_title(h: ProviderHarness, number: int) -> Any:
    """Edit the issue in GitLab; its Issue Hook names the milestone by id only, so
    processing it must re-read the issue from the tracker."""
    h.fake.edit_issue(number, title="Retitled in GitLab", milestone="v2")
    (hook,) = h.take_hooks()
    attributes = json.loads(hook.body)["object_attributes"]
    assert attributes["milestone_id"] and "milestone" not in attributes
    return hook


def test_gitlab_hook_needing_a_reread_fails_while_the_tracker_is_down_then_the_sweep_applies_it(
    tracker_harness, settings
):
    settings.PROVIDER_HTTP_TIMEOUT = TIMEOUT
    h: ProviderHarness = tracker_harness("gitlab")
    remote = h.fake.seed_issue(title="Milestoned", milestone="v1")
    assert h.poll(full=True).success
    before = h.issue(remote.number).snapshot()
    hook = _gitlab_hook_without_the_milestone_title(h, remote.number)
    sweep_after = timedelta(seconds=settings.WEBHOOK_SWEEP_AFTER_SECONDS)

    faults = [
        (Fault(status=500, method="GET"), "HTTP 500"),
        (Fault(status=429, retry_after=30, method="GET"), "rate limited"),
        (Fault(status=0, hang_seconds=HANG, method="GET"), f"no answer within {TIMEOUT:g}s"),
    ]
    h.fake.inject(faults[0][0])
    response = h.post(hook)
    assert response.status_code == 202  # acknowledged: from here on it must not be lost
    delivery: int = response.json()["delivery"]
    for attempt, (fault, error) in enumerate(faults, start=1):
        if attempt > 1:
            travel(timedelta(minutes=1))  # past a rate-limit pause: every call passes the gate
            h.fake.inject(fault)
            assert delivery not in stuck_deliveries()  # not swept again at once
            travel_deliveries(sweep_after)
            assert delivery in stuck_deliveries()
        assert process_delivery(delivery) == "failed"
        assert h.fake.faults == []
        stored = WebhookDelivery.objects.get(pk=delivery)
        assert (stored.status, stored.attempts) == (DeliveryStatus.FAILED, attempt)
        assert error in stored.error, stored.error
        assert h.issue(remote.number).snapshot() == before  # nothing half-applied
    wait_for_hung_requests(h.fake)
    # GitLab retries the same delivery meanwhile: still one stored delivery, nothing new.
    again = h.post(hook)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"

    # The tracker is back: the sweep picks the delivery up and it is applied.
    travel_deliveries(sweep_after)
    assert stuck_deliveries() == [delivery]
    assert process_delivery(delivery) == "updated"
    stored = WebhookDelivery.objects.get(pk=delivery)
    assert stored.status == DeliveryStatus.PROCESSED
    assert WebhookDelivery.objects.count() == 1
    issue = h.issue(remote.number)
    assert (issue.title, issue.milestone) == ("Retitled in GitLab", "v2")
    assert issue.snapshot() == h.fake.issues[remote.number].snapshot()
    travel_deliveries(sweep_after)
    assert stuck_deliveries() == []
    assert sum(h.fake.count_requests(m) for m in WRITES) == 0  # no echo push
    assert not OutboxEntry.objects.exists() and not Conflict.objects.exists()


def test_a_delivery_the_sweep_gives_up_on_is_still_caught_by_the_next_poll(tracker_harness):
    h: ProviderHarness = tracker_harness("gitlab")
    remote = h.fake.seed_issue(title="Milestoned", milestone="v1")
    assert h.poll(full=True).success
    hook = _gitlab_hook_without_the_milestone_title(h, remote.number)
    h.fake.inject(Fault(status=500, method="GET", count=10_000))
    response = h.post(hook)
    assert response.status_code == 202
    delivery: int = response.json()["delivery"]
    assert process_delivery(delivery) == "failed"
    for _ in range(MAX_DELIVERY_ATTEMPTS - 1):
        travel_deliveries(timedelta(minutes=5))
        assert stuck_deliveries() == [delivery]
        assert process_delivery(delivery) == "failed"
    travel_deliveries(timedelta(days=1))
    assert stuck_deliveries() == []  # given up: FAILED, visible, not retried forever
    stored = WebhookDelivery.objects.get(pk=delivery)
    assert (stored.status, stored.attempts) == (DeliveryStatus.FAILED, MAX_DELIVERY_ATTEMPTS)

    h.fake.faults.clear()
    run = h.poll()
    assert run.success and run.updated == 1
    assert h.issue(remote.number).snapshot() == h.fake.issues[remote.number].snapshot()
