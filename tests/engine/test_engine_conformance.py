"""The engine's sync scenarios against every provider with a fake (one `Kit` each, in
tests/providers/kits.py): a new provider is one Kit line, nothing here.

Everything is real: the provider's fake over HTTP, its webhooks through `/webhooks/<p>/`, the
database, the engine and the outbox. A tracker without webhooks (Redmine) is polled where
the others deliver: the same scenarios must hold by incremental polls.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.conf import settings

from integrations.models import Connection
from integrations.providers.registry import capabilities, client_for
from issues.models import Conflict, Issue, OutboxEntry, OutboxStatus, SyncStatus
from issues.services.issues import issue_create, issue_update
from tests.engine.conftest import ProviderHarness
from tests.engine.convergence import LABELS, USERS, tracker_state
from tests.providers.kits import KITS, Kit

WRITES = ("POST", "PATCH", "PUT", "DELETE")


class KitHarness(ProviderHarness):
    def __init__(self, kit: Kit, fake: Any, connection: Connection) -> None:
        super().__init__(fake, connection)
        self.kit = kit
        self.caps = capabilities(kit.provider)

    def external(self, number: int) -> str:
        return self.kit.number(self.fake, SimpleNamespace(number=number))

    def issue(self, number: int) -> Issue:
        return Issue.objects.get(connection=self.connection, external_number=self.external(number))

    def remote(self, number: int) -> dict[str, Any]:
        return tracker_state(self.fake.issues[number], crlf_to_lf=self.caps.body_crlf_to_lf)

    def sync_remote(self) -> None:
        """What brings tracker changes in: their webhooks, or an incremental poll where the
        tracker has none."""
        if self.caps.webhooks:
            self.deliver_all()
        else:
            self.poll()

    def writes(self) -> int:
        return sum(self.fake.count_requests(m, self.kit.issue_path) for m in WRITES)


@pytest.fixture(params=KITS, ids=[kit.provider for kit in KITS])
def h(request: pytest.FixtureRequest, db: Any) -> Iterator[KitHarness]:
    kit: Kit = request.param
    fake = kit.make_fake()
    fake.known_labels = list(LABELS)
    fake.known_milestones = ["v1", "v2"]
    fake.known_users.update(USERS)
    # The callback URL the tracker was given (Trello sends nothing without one, and
    # signs it with the body).
    fake.webhook_url = f"{settings.PUBLIC_URL}/webhooks/{kit.provider}/"
    members = getattr(fake, "members", None)
    if isinstance(members, set):
        members.update(USERS)  # Redmine: assignable = project members
    fake.start()
    try:
        connection = Connection.objects.create(
            name=f"conformance-{kit.provider}",
            provider=kit.provider,
            base_url=kit.base_url(fake),
            repository=fake.repository,
            api_token=fake.token,
            webhook_secret=fake.webhook_secret or "",
            config_json=kit.config(fake),
        )
        harness = KitHarness(kit, fake, connection)
        harness.poll(full=True)  # the connection's first pass: the tracker is empty
        yield harness
    finally:
        fake.stop()


def mirrored(h: KitHarness, **seed: Any) -> tuple[Any, Issue]:
    """An issue created in the tracker and mirrored (by its webhook, or a poll)."""
    fake_issue = h.fake.seed_issue(notify=True, **{"title": "Crash on save", **seed})
    h.sync_remote()
    return fake_issue, h.issue(fake_issue.number)


def test_remote_create_is_mirrored(h: KitHarness) -> None:
    milestone = "v1" if h.caps.milestones else None
    fake_issue, issue = mirrored(h, labels=["bug"], assignees=["bob"], milestone=milestone)
    assert issue.snapshot() == {
        "title": "Crash on save",
        "body": "",
        "state": "open",
        "labels": ["bug"],
        "assignees": ["bob"],
        "milestone": milestone,
    }
    assert issue.snapshot() == h.remote(fake_issue.number)
    assert issue.sync_status == SyncStatus.SYNCED


def test_local_edit_is_pushed_once_and_its_echo_is_a_no_op(h: KitHarness) -> None:
    fake_issue, issue = mirrored(h)
    issue_update(issue=issue, changes={"title": "Crash on save (macOS)", "labels": ["bug"]})
    assert h.issue(fake_issue.number).sync_status == SyncStatus.PENDING
    assert h.drain().pushed == 1
    remote = h.remote(fake_issue.number)
    assert (remote["title"], remote["labels"]) == ("Crash on save (macOS)", ["bug"])
    writes = h.writes()
    h.sync_remote()  # our own echo
    h.poll()
    issue = h.issue(fake_issue.number)
    assert issue.sync_status == SyncStatus.SYNCED
    assert issue.snapshot() == h.remote(fake_issue.number)
    assert not OutboxEntry.objects.filter(status=OutboxStatus.PENDING).exists()
    assert h.drain().pushed == 0
    assert h.writes() == writes  # nothing written back
    assert not Conflict.objects.exists()


def test_a_push_reads_the_issue_once_and_writes_against_that_read(h: KitHarness) -> None:
    """The push reads the issue, merges, and hands that state to `update_issue(current=…)`:
    no second read of the issue before the write (issue 18)."""
    fake_issue, issue = mirrored(h)
    client = client_for(h.connection)
    client.get_issue(h.external(fake_issue.number))  # lookups the first read loads
    h.fake.reset_requests()
    client.get_issue(h.external(fake_issue.number))
    (read_path,) = [r.path for r in h.fake.requests if r.method == "GET"]
    client.close()
    issue_update(issue=issue, changes={"title": "Crash on save (macOS)"})
    h.fake.reset_requests()

    assert h.drain().pushed == 1

    calls = [(r.method, r.path) for r in h.fake.requests]
    first_write = next(i for i, (method, _) in enumerate(calls) if method in WRITES)
    assert calls[:first_write].count(("GET", read_path)) == 1, calls


def test_different_fields_changed_on_each_side_are_merged(h: KitHarness) -> None:
    fake_issue, issue = mirrored(h)
    issue_update(issue=issue, changes={"body": "steps to reproduce"})
    h.fake.edit_issue(fake_issue.number, title="Crash when saving")
    h.sync_remote()
    h.drain()
    h.sync_remote()
    issue = h.issue(fake_issue.number)
    assert (issue.title, issue.body) == ("Crash when saving", "steps to reproduce")
    assert issue.snapshot() == h.remote(fake_issue.number)
    assert not Conflict.objects.exists()


def test_same_field_changed_on_both_sides_is_a_conflict_under_manual(h: KitHarness) -> None:
    fake_issue, issue = mirrored(h)
    issue_update(issue=issue, changes={"title": "local title"})
    h.fake.advance_clock(5)
    h.fake.edit_issue(fake_issue.number, title="remote title")
    h.sync_remote()
    h.drain()
    issue = h.issue(fake_issue.number)
    conflict = Conflict.objects.get(issue=issue, resolved=False)
    assert (conflict.field, conflict.local_value, conflict.remote_value) == (
        "title",
        "local title",
        "remote title",
    )
    assert issue.sync_status == SyncStatus.CONFLICT
    assert h.fake.issues[fake_issue.number].title == "remote title"  # nothing pushed


def test_local_create_makes_one_tracker_issue_and_its_echo_no_duplicate(h: KitHarness) -> None:
    issue = issue_create(connection=h.connection, title="Made here", labels=["docs"])
    assert h.drain().pushed == 1
    created = [i for i in h.fake.issues.values() if i.title == "Made here"]
    assert len(created) == 1
    issue = Issue.objects.get(pk=issue.pk)
    assert issue.external_number == h.external(created[0].number)
    assert issue.external_id is not None
    h.sync_remote()
    h.poll(full=True)
    assert Issue.objects.filter(connection=h.connection).count() == 1
    assert len(h.fake.issues) == 1
    assert h.issue(created[0].number).snapshot() == h.remote(created[0].number)


def test_close_here_and_reopen_there(h: KitHarness) -> None:
    fake_issue, issue = mirrored(h)
    issue_update(issue=issue, changes={"state": "closed"})
    h.drain()
    assert h.fake.issues[fake_issue.number].state == "closed"
    h.sync_remote()
    h.fake.advance_clock(2)
    h.fake.edit_issue(fake_issue.number, state="open")
    h.sync_remote()
    issue = h.issue(fake_issue.number)
    assert issue.state == "open"
    assert issue.snapshot() == h.remote(fake_issue.number)


def test_deletion_in_the_tracker_is_gone_after_a_full_pass(h: KitHarness) -> None:
    fake_issue, _ = mirrored(h)
    kept, _ = mirrored(h, title="still here")
    h.fake.delete_issue(fake_issue.number)
    h.sync_remote()
    h.poll(full=True)  # absence confirmed by a GET before the row goes
    numbers = set(
        Issue.objects.filter(connection=h.connection).values_list("external_number", flat=True)
    )
    assert numbers == {h.external(kept.number)}


def test_a_missed_webhook_is_caught_by_a_poll(h: KitHarness) -> None:
    fake_issue, _ = mirrored(h)
    h.fake.advance_clock(2)
    h.fake.edit_issue(fake_issue.number, title="edited while we were away", labels=["ui"])
    h.take_hooks()  # lost on the way (none are sent where the tracker has no webhooks)
    h.poll()
    issue = h.issue(fake_issue.number)
    assert (issue.title, issue.labels) == ("edited while we were away", ["ui"])
    assert issue.snapshot() == h.remote(fake_issue.number)
