from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from integrations.fake_trackers.base import Fault
from integrations.models import WebhookDelivery
from integrations.providers.base import split_marker
from issues.models import Conflict, Issue, OutboxEntry, OutboxStatus, SyncLog, SyncStatus
from issues.outbox import claim_issue_batch
from issues.services.issues import conflict_resolve, issue_create, issue_update


def mirrored(h, **seed):
    """An issue created in the tracker and mirrored by its "opened" webhook."""
    fake_issue = h.fake.seed_issue(notify=True, **{"title": "Crash on save", **seed})
    h.deliver_all()
    return fake_issue, h.issue(fake_issue.number)


def test_remote_create_is_mirrored_by_its_webhook(harness):
    fake_issue, issue = mirrored(harness, labels=["bug"], assignees=["bob"], milestone="v1")
    assert issue.snapshot() == {
        "title": "Crash on save",
        "body": "",
        "state": "open",
        "labels": ["bug"],
        "assignees": ["bob"],
        "milestone": "v1",
    }
    assert issue.remote_url.endswith(f"/acme/widgets/issues/{fake_issue.number}")
    assert issue.sync_status == SyncStatus.SYNCED


def test_local_edit_is_pushed_once_and_its_echo_is_a_no_op(harness):
    fake_issue, issue = mirrored(harness)
    issue_update(issue=issue, changes={"title": "Crash on save (macOS)", "labels": ["bug"]})
    assert harness.issue(fake_issue.number).sync_status == SyncStatus.PENDING
    writes_before = harness.writes()
    report = harness.drain()
    assert report.pushed == 1
    assert harness.fake.issues[fake_issue.number].title == "Crash on save (macOS)"
    assert harness.fake.issues[fake_issue.number].labels == ["bug"]
    writes = harness.writes() - writes_before
    logs_before = SyncLog.objects.count()
    echoes = harness.take_hooks()
    assert echoes, "Gitea sends a webhook for our own write"
    for hook in echoes:
        assert harness.deliver(hook).status_code == 202
    issue = harness.issue(fake_issue.number)
    assert issue.sync_status == SyncStatus.SYNCED
    assert SyncLog.objects.count() == logs_before  # no change, no conflict
    assert not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists()
    assert harness.drain().pushed == 0
    assert harness.writes() - writes_before == writes  # nothing pushed back


def test_different_fields_changed_on_each_side_are_merged(harness):
    fake_issue, issue = mirrored(harness)
    issue_update(issue=issue, changes={"body": "steps to reproduce"})
    harness.fake.edit_issue(fake_issue.number, title="Crash when saving")
    harness.deliver_all()
    harness.drain()
    harness.deliver_all()
    issue = harness.issue(fake_issue.number)
    remote = harness.fake.issues[fake_issue.number]
    assert (issue.title, issue.body) == ("Crash when saving", "steps to reproduce")
    assert (remote.title, remote.body) == ("Crash when saving", "steps to reproduce")
    assert not Conflict.objects.exists()


def test_label_added_here_and_another_removed_there_are_merged(harness):
    fake_issue, issue = mirrored(harness, labels=["bug", "docs"])
    issue_update(issue=issue, changes={"labels": ["bug", "docs", "feature"]})
    harness.fake.edit_issue(fake_issue.number, labels=["bug"])
    harness.deliver_all()
    harness.drain()
    harness.deliver_all()
    assert harness.issue(fake_issue.number).labels == ["bug", "feature"]
    assert harness.fake.issues[fake_issue.number].labels == ["bug", "feature"]


def _concurrent_title_edit(h):
    fake_issue, issue = mirrored(h)
    issue_update(issue=issue, changes={"title": "local title"})
    h.fake.advance_clock(5)  # the tracker's edit is clearly the later one
    h.fake.edit_issue(fake_issue.number, title="remote title")
    h.deliver_all()
    return fake_issue


def test_concurrent_same_field_edits_make_a_conflict_under_manual(harness):
    fake_issue = _concurrent_title_edit(harness)
    issue = harness.issue(fake_issue.number)
    conflict = Conflict.objects.get(issue=issue, resolved=False)
    assert (conflict.field, conflict.local_value, conflict.remote_value) == (
        "title",
        "local title",
        "remote title",
    )
    assert conflict.base_value == "Crash on save"
    assert issue.title == "remote title"  # the mirror keeps the remote value
    assert issue.sync_status == SyncStatus.CONFLICT
    harness.drain()
    assert harness.fake.issues[fake_issue.number].title == "remote title"  # nothing pushed

    conflict_resolve(conflict=conflict, strategy="local_wins")
    harness.drain()
    harness.deliver_all()
    assert harness.fake.issues[fake_issue.number].title == "local title"
    issue = harness.issue(fake_issue.number)
    assert issue.title == "local title" and issue.sync_status == SyncStatus.SYNCED


@pytest.mark.parametrize(
    ("policy", "winner"),
    [
        ("remote_wins", "remote title"),
        ("local_wins", "local title"),
        ("last_writer_wins", "remote title"),
    ],  # the tracker's edit came after the local one
)
def test_concurrent_same_field_edits_follow_the_policy(harness, policy, winner):
    harness.connection.conflict_policy = policy
    harness.connection.save()
    fake_issue = _concurrent_title_edit(harness)
    harness.drain()
    harness.deliver_all()
    assert not Conflict.objects.exists()
    assert harness.issue(fake_issue.number).title == winner
    assert harness.fake.issues[fake_issue.number].title == winner


def test_delete_wins_by_default_over_a_local_update(harness):
    fake_issue, issue = mirrored(harness)
    issue_update(issue=issue, changes={"body": "local edit"})
    harness.fake.delete_issue(fake_issue.number)
    harness.deliver_all()
    assert not Issue.objects.filter(pk=issue.pk).exists()


def test_update_wins_keeps_the_issue_and_recreates_it_remotely(harness):
    harness.connection.delete_policy = "update_wins"
    harness.connection.save()
    fake_issue, issue = mirrored(harness)
    issue_update(issue=issue, changes={"body": "local edit"})
    harness.fake.delete_issue(fake_issue.number)
    harness.deliver_all()
    harness.drain()
    issue = Issue.objects.get(pk=issue.pk)
    assert issue.external_id is not None and issue.external_number != str(fake_issue.number)
    recreated = harness.fake.issues[int(issue.external_number)]
    body, marker = split_marker(recreated.body)
    assert (recreated.title, body) == ("Crash on save", "local edit")
    assert marker is not None  # the create marker, hidden from users


def test_a_redelivered_webhook_is_a_no_op(harness):
    harness.fake.seed_issue(title="once", notify=True)
    (hook,) = harness.take_hooks()
    assert harness.deliver(hook).status_code == 202
    again = harness.deliver(hook)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert WebhookDelivery.objects.count() == 1
    assert Issue.objects.count() == 1


def test_webhooks_out_of_order_leave_the_newest_state(harness):
    fake_issue, _ = mirrored(harness)
    harness.fake.edit_issue(fake_issue.number, title="second")
    harness.fake.edit_issue(fake_issue.number, title="third")
    older, newer = harness.take_hooks()
    harness.deliver(newer)
    harness.deliver(older)
    assert harness.issue(fake_issue.number).title == "third"


def test_tracker_down_during_a_push_is_retried_with_backoff_then_succeeds(harness):
    fake_issue, issue = mirrored(harness)
    issue_update(issue=issue, changes={"title": "after outage"})
    harness.fake.inject(Fault(status=500, count=10, method="PATCH"))
    report = harness.drain()
    assert report.retried == 1 and report.pushed == 0
    entry = OutboxEntry.objects.get(issue=issue)
    assert entry.status == OutboxStatus.PENDING and entry.attempts == 1
    wait = entry.next_attempt_at - timezone.now()
    assert timedelta(seconds=50) < wait <= timedelta(minutes=1)  # 2^0 minutes

    harness.fake.faults.clear()
    OutboxEntry.objects.filter(pk=entry.pk).update(next_attempt_at=timezone.now())
    assert harness.drain().pushed == 1
    assert harness.fake.issues[fake_issue.number].title == "after outage"
    assert OutboxEntry.objects.get(pk=entry.pk).status == OutboxStatus.DONE


def test_permanent_error_fails_the_row_at_once(harness):
    fake_issue, issue = mirrored(harness)
    issue_update(issue=issue, changes={"title": "x"})
    harness.fake.inject(Fault(status=422, count=1, method="PATCH"))
    assert harness.drain().failed == 1
    assert OutboxEntry.objects.get(issue=issue).status == OutboxStatus.FAILED
    assert harness.issue(fake_issue.number).sync_status == SyncStatus.ERROR


def test_a_worker_killed_after_claiming_is_retried_and_the_tracker_written_once(harness):
    fake_issue, issue = mirrored(harness)
    issue_update(issue=issue, changes={"title": "written once"})
    # A worker claims the row, writes to the tracker, and dies before recording the answer.
    claimed = claim_issue_batch(lease=timedelta(seconds=-1))
    assert list(claimed) == [issue.pk]
    from integrations.providers.registry import client_for
    from issues.canonical import to_issue_fields

    client_for(harness.connection).update_issue(
        str(fake_issue.number), to_issue_fields({"title": "written once"})
    )
    patches_before = harness.fake.count_requests("PATCH")
    # Its lease has run out: another drain reclaims the row, sees the tracker has it, skips.
    report = harness.drain()
    assert report.pushed == 0 and report.skipped == 1
    assert harness.fake.count_requests("PATCH") == patches_before
    assert OutboxEntry.objects.get(issue=issue).status == OutboxStatus.DONE


def test_local_create_is_created_remotely_and_not_duplicated_by_its_webhook(harness):
    issue = issue_create(connection=harness.connection, title="From an agent", labels=["bug"])
    assert issue.external_id is None
    harness.drain()
    issue.refresh_from_db()
    assert issue.external_id and issue.remote_url.endswith(f"/issues/{issue.external_number}")
    harness.deliver_all()
    harness.poll(full=True)
    assert Issue.objects.filter(connection=harness.connection).count() == 1
    assert len(harness.fake.issues) == 1


def test_opened_webhook_that_beats_the_create_answer_links_instead_of_duplicating(harness):
    from integrations.providers.base import body_with_marker
    from issues.engine import create_marker

    issue = issue_create(connection=harness.connection, title="Race")
    # The tracker gets the issue (our create went through, with its marker) before our answer
    # is stored. Another issue with the same title is someone else's: not linked (issue 12 #6).
    claim_issue_batch(lease=timedelta(seconds=-1))
    harness.fake.seed_issue(title="Race", notify=True)
    harness.fake.seed_issue(
        title="Race", body=body_with_marker("", create_marker(issue)), notify=True
    )
    harness.deliver_all()
    assert Issue.objects.count() == 2
    issue.refresh_from_db()
    assert issue.external_id is not None
    assert issue.external_number == "2"
    assert harness.drain().pushed == 0  # the create is settled: no second remote issue
    assert len(harness.fake.issues) == 2


def test_missed_webhooks_are_caught_by_polling_and_mark_webhooks_unhealthy(harness, monkeypatch):
    from issues import polling

    # The fake's clock runs ahead (one second per write): count any change polling finds.
    monkeypatch.setattr(polling, "WEBHOOK_GRACE", timedelta(hours=-1))
    fake_issue, _ = mirrored(harness)
    harness.poll()
    harness.fake.edit_issue(fake_issue.number, title="changed while webhooks were lost")
    harness.take_hooks()  # …and its webhook never arrived
    run = harness.poll()
    assert run.success and run.updated == 1
    assert harness.issue(fake_issue.number).title == "changed while webhooks were lost"
    harness.connection.refresh_from_db()
    assert harness.connection.webhook_healthy is False


def test_unchanged_repository_poll_is_one_conditional_request(harness):
    for n in range(3):
        harness.fake.seed_issue(title=f"issue {n}")
    harness.poll()
    harness.fake.reset_requests()
    run = harness.poll()
    assert run.success and run.requests == 1
    assert [r.status for r in harness.fake.requests] == [304]


def test_full_reconciliation_finds_missed_and_deleted_issues(harness):
    keep = harness.fake.seed_issue(title="kept")
    gone = harness.fake.seed_issue(title="deleted while we were away")
    harness.poll(full=True)
    assert Issue.objects.count() == 2
    harness.fake.delete_issue(gone.number, notify=False)
    harness.fake.seed_issue(title="created while we were away")
    run = harness.poll(full=True)
    assert run.success and run.created == 1 and run.deleted == 1
    titles = set(Issue.objects.values_list("title", flat=True))
    assert titles == {"kept", "created while we were away"}
    assert keep.number


def test_partial_sync_filters_on_labels(harness):
    harness.connection.label_filter = ["sync-me"]
    harness.connection.save()
    harness.fake.seed_issue(title="in", labels=["sync-me"])
    harness.fake.seed_issue(title="out", labels=["bug"])
    harness.poll(full=True)
    assert list(Issue.objects.values_list("title", flat=True)) == ["in"]


def test_the_trackers_own_status_is_kept_on_the_mirror(harness):
    """SPEC §6 `tracker_status`: the providers parsed it, but the engine never stored it."""
    fake_issue, issue = mirrored(harness)
    assert issue.tracker_status == "open"

    harness.fake.edit_issue(fake_issue.number, state="closed")
    harness.deliver_all()

    assert harness.issue(fake_issue.number).tracker_status == "closed"
