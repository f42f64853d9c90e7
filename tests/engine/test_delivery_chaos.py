"""Duplicated, reordered and replayed webhook deliveries converge (issue "Production
hardening", item 3).

Through the real intake (`POST /webhooks/<provider>/`, django.test.Client) and the real
processing (`issues.inbound.process_delivery`), for the Gitea, GitHub and GitLab fakes over
HTTP on loopback: a seeded sequence of remote edits is made, every webhook the fake sends is
captured, and then delivered in a seeded random order — each one 1 to 3 times under its own
delivery id, plus replays of old payloads under new delivery ids — and processed in another
random order, some deliveries twice. The mirror must end equal to the tracker, field by field,
with nothing written to the tracker, one stored delivery per delivery id, no conflict and no
duplicated audit entry; a poll afterwards must find nothing left to do.

Timestamps: the fakes' clock is strictly increasing (each write gets an `updated_at` at least
one second after the previous one, `FakeTracker.now`), so no two edits of an issue share an
`updated_at` and the stale guard can always order them. Real Gitea and GitHub stamp to the
second: two edits within one second carry equal stamps, and their relative order is then
undecidable from the payload alone — the fake's clock stands in for "the edits were made at
least a second apart". The deliveries *of one edit* (GitHub sends one per label, assignee…,
Gitea one per kind of change) share one stamp and one full state, which is what they should.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import random
import uuid
from collections import Counter
from typing import Any

import pytest

from integrations.fake_trackers.base import FakeIssue, OutgoingWebhook
from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from issues.inbound import process_delivery
from issues.models import Conflict, Issue, OutboxEntry, SyncLog
from issues.outbox import drain
from issues.polling import sync_connection
from tests.engine.conftest import ProviderHarness
from tests.engine.convergence import LABELS, USERS

MILESTONES = ("v1", "v2")
# Real GitLab sends no webhook when an issue is deleted (its fake can, for one code path's
# tests only): the deletion is exercised where the provider really sends one.
SENDS_DELETE_HOOKS = {"gitea": True, "github": True, "gitlab": False}
SEEDS = (11, 12, 13)
ALL_KINDS = {
    "title",
    "body",
    "labels added",
    "labels removed",
    "assignees added",
    "assignees removed",
    "milestone set",
    "milestone cleared",
    "closed",
    "open",  # reopened
}
# Headers that carry a delivery's identity, per provider: a replay gets new values.
_IDENTITY_HEADERS = (
    "x-gitea-delivery",
    "x-gogs-delivery",
    "x-github-delivery",
    "idempotency-key",
    "x-gitlab-event-uuid",
)


@dataclasses.dataclass
class Captured:
    number: int  # the tracker issue the delivery is about
    hook: OutgoingWebhook
    deletion: bool = False


class Chaos:
    """One seeded run: a provider's fake and its connection (a `ProviderHarness`), and the
    deliveries captured from it, each tagged with the issue it is about."""

    def __init__(self, harness: ProviderHarness, seed: int) -> None:
        self.harness = harness
        self.provider = harness.connection.provider
        self.rng = random.Random(f"{self.provider}-{seed}")
        self.fake = harness.fake
        self.connection = harness.connection
        self.captured: list[Captured] = []
        self.deleted: set[int] = set()
        self.kinds: set[str] = set()  # the kinds of edit made, to check a run covers them all

    # --- the tracker side ------------------------------------------------------------------

    def _capture(self, number: int, *, deletion: bool = False) -> None:
        hooks = self.harness.take_hooks()
        self.captured.extend(Captured(number, hook, deletion) for hook in hooks)

    def seed(self, count: int) -> None:
        for n in range(count):
            issue = self.fake.seed_issue(
                title=f"issue {n}",
                body=f"body {n}",
                labels=self.rng.sample(LABELS, 2),
                assignees=self.rng.sample(USERS, 1),
                milestone=self.rng.choice([None, *MILESTONES]),
                notify=True,
            )
            self._capture(issue.number)

    def _edit_values(self, issue: FakeIssue) -> dict[str, Any]:
        """One human edit: one to three fields at once, every kind of field over a run."""
        changes: dict[str, Any] = {}
        for field in self.rng.sample(
            ["title", "body", "labels", "assignees", "milestone", "state"], self.rng.randint(1, 3)
        ):
            # Every edit changes what it names: a save that changes nothing sends no
            # webhook (GitHub, GitLab), so there would be nothing to deliver for it.
            if field == "title":
                changes["title"] = f"{issue.title.split(' · ')[0]} · {self.rng.randint(0, 9999)} ✓"
            elif field == "body":
                changes["body"] = "" if issue.body else f"body {self.rng.randint(0, 9999)}"
            elif field in ("labels", "assignees"):
                universe = LABELS if field == "labels" else USERS
                members = set(getattr(issue, field))
                element = self.rng.choice(universe)
                self.kinds.add(f"{field} {'removed' if element in members else 'added'}")
                members ^= {element}  # added if absent, removed if present
                changes[field] = sorted(members)
            elif field == "milestone":
                changes["milestone"] = self.rng.choice(
                    [m for m in (None, *MILESTONES) if m != issue.milestone]
                )
                self.kinds.add(
                    "milestone " + ("cleared" if changes["milestone"] is None else "set")
                )
            else:
                changes["state"] = "closed" if issue.state == "open" else "open"
                self.kinds.add(changes["state"])
            if field in ("title", "body"):
                self.kinds.add(field)
        return changes

    def edit(self, count: int) -> None:
        delete_at = (
            self.rng.randrange(count // 3, count) if SENDS_DELETE_HOOKS[self.provider] else None
        )
        for step in range(count):
            numbers = sorted(self.fake.issues)
            number = self.rng.choice(numbers)
            if step == delete_at:
                self.fake.delete_issue(number)
                self.deleted.add(number)
                self._capture(number, deletion=True)
            else:
                self.fake.edit_issue(number, **self._edit_values(self.fake.issues[number]))
                self._capture(number)

    def writes(self) -> int:
        return self.harness.writes()

    # --- the delivery side -----------------------------------------------------------------

    def replay(self, hook: OutgoingWebhook) -> OutgoingWebhook:
        """The same signed body under a new delivery id (a tracker's "redeliver", or an
        attacker replaying a captured payload — the signature is still valid)."""
        new_id = str(uuid.uuid4())
        headers = {
            name: new_id if name.lower() in _IDENTITY_HEADERS else value
            for name, value in hook.headers.items()
        }
        return dataclasses.replace(hook, headers=headers, delivery_id=new_id)

    def post(self, hook: OutgoingWebhook) -> Any:
        return self.harness.post(hook)


@pytest.fixture
def chaos(tracker_harness: Any, provider: str, seed: int) -> Chaos:
    return Chaos(tracker_harness(provider, repository="chaos/repo"), seed)


def _mirror(connection: Connection) -> dict[int, Issue]:
    rows = Issue.objects.filter(connection=connection)
    return {int(issue.external_number): issue for issue in rows}


def assert_mirror_equals_tracker(chaos: Chaos) -> None:
    mirror = _mirror(chaos.connection)
    assert Issue.objects.filter(connection=chaos.connection).count() == len(mirror)
    assert sorted(mirror) == sorted(chaos.fake.issues), "mirror and tracker hold other issues"
    for number, remote in chaos.fake.issues.items():
        issue = mirror[number]
        assert issue.snapshot() == remote.snapshot(), f"#{number}"
        assert issue.remote_updated_at == remote.updated_at, f"#{number} is not the newest state"
        assert issue.sync_status == "synced", f"#{number}"
        assert issue.external_id == str(remote.id)


def assert_audit_is_one_entry_per_change(chaos: Chaos) -> None:
    """No change logged twice, and each issue's entries chain from its creation to the
    state it has now (before of one entry = after of the previous)."""
    logs = list(SyncLog.objects.filter(connection=chaos.connection).order_by("id"))
    assert {log.direction for log in logs} <= {"inbound"}, "something was pushed"
    keys = Counter(
        (
            log.issue_id,
            log.action,
            json.dumps(log.before, sort_keys=True),
            json.dumps(log.after, sort_keys=True),
        )
        for log in logs
    )
    assert [key for key, n in keys.items() if n > 1] == []
    mirror = {issue.pk: issue for issue in Issue.objects.filter(connection=chaos.connection)}
    by_issue: dict[int, list[SyncLog]] = {}
    for log in logs:
        if log.issue_id is not None:
            by_issue.setdefault(log.issue_id, []).append(log)
    assert set(by_issue) == set(mirror)
    for issue_id, entries in by_issue.items():
        assert entries[0].action == "create" and entries[0].before is None
        for previous, entry in itertools.pairwise(entries):
            assert entry.action != "create", f"issue {issue_id} created twice"
            assert entry.before == previous.after, f"issue {issue_id}: a change logged twice"
        assert entries[-1].after == mirror[issue_id].snapshot()
    # A delete processed before the issue's "opened" delivery finds nothing to delete (and
    # its tombstone turns the late "opened" away): at most one entry per deleted issue.
    deletions = [log.after["external_id"] for log in logs if log.action == "delete"]
    assert len(deletions) == len(set(deletions)) <= len(chaos.deleted)


def deliver_chaotically(chaos: Chaos, items: list[Captured]) -> set[str]:
    """Post every delivery 1 to 3 times under its own id, a quarter of them also replayed under
    a new id, all in one shuffled stream; process some at once and the rest afterwards in
    another shuffled order, some twice. Returns the delivery ids stored."""
    rng = chaos.rng
    stream = [c.hook for c in items for _ in range(rng.randint(1, 3))]
    stream += [chaos.replay(c.hook) for c in rng.sample(items, len(items) // 4)]
    rng.shuffle(stream)
    seen_ids: set[str] = set()
    deliveries: list[int] = []
    for hook in stream:
        response = chaos.post(hook)
        if hook.delivery_id in seen_ids:
            assert response.status_code == 200, response.content
            assert response.json()["status"] == "duplicate"
            continue
        assert response.status_code == 202, response.content
        seen_ids.add(hook.delivery_id)
        deliveries.append(response.json()["delivery"])
        if rng.random() < 0.3:  # a fast worker takes it at once
            assert process_delivery(deliveries[-1]) != "not-claimable"
    rng.shuffle(deliveries)
    for delivery in deliveries:
        # The sweep or a redelivered task runs it (again): only the first run does anything.
        first = WebhookDelivery.objects.get(pk=delivery).status == DeliveryStatus.RECEIVED
        assert (process_delivery(delivery) != "not-claimable") == first
        if rng.random() < 0.2:
            assert process_delivery(delivery) == "not-claimable"
    return seen_ids


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("provider", ["gitea", "github", "gitlab"])
def test_duplicated_reordered_and_replayed_deliveries_converge(chaos: Chaos) -> None:
    chaos.seed(4)
    chaos.edit(24)
    assert len(chaos.captured) >= 24
    assert chaos.kinds == ALL_KINDS, f"this seed misses {ALL_KINDS - chaos.kinds}"
    assert len(chaos.deleted) == SENDS_DELETE_HOOKS[chaos.provider]
    writes_before = chaos.writes()

    # 1, 2. All deliveries in chaos, the deletions' among them: a delivery older than a
    # delete, processed after it, finds the tombstone and changes nothing.
    seen_ids = deliver_chaotically(chaos, chaos.captured)

    assert_mirror_equals_tracker(chaos)
    assert chaos.writes() == writes_before, "an echo push reached the tracker"
    assert not OutboxEntry.objects.filter(connection=chaos.connection).exists()
    assert drain().pushed == 0
    stored = WebhookDelivery.objects.filter(connection=chaos.connection)
    assert sorted(stored.values_list("delivery_id", flat=True)) == sorted(seen_ids)
    assert set(stored.values_list("status", flat=True)) == {DeliveryStatus.PROCESSED}
    assert not Conflict.objects.filter(issue__connection=chaos.connection).exists()
    assert_audit_is_one_entry_per_change(chaos)

    # 3. Late replays of old payloads under new ids: accepted, and no-ops (stale guard).
    logs_before = SyncLog.objects.count()
    state_before = {n: i.snapshot() for n, i in _mirror(chaos.connection).items()}
    alive = [c for c in chaos.captured if c.number not in chaos.deleted]
    for item in chaos.rng.sample(alive, len(alive) // 3):
        response = chaos.post(chaos.replay(item.hook))
        assert response.status_code == 202, response.content
        outcome = process_delivery(response.json()["delivery"])
        assert outcome in ("stale", "unchanged"), (item.number, outcome)
    assert SyncLog.objects.count() == logs_before
    assert {n: i.snapshot() for n, i in _mirror(chaos.connection).items()} == state_before

    # 4. A poll finds everything converged already: nothing created, changed or written.
    run = sync_connection(connection_id=chaos.connection.pk, full=False)
    assert run.success, run.error
    assert (run.created, run.updated, run.deleted, run.conflicts) == (0, 0, 0, 0)
    assert SyncLog.objects.count() == logs_before
    assert chaos.writes() == writes_before
    assert_mirror_equals_tracker(chaos)


@pytest.mark.parametrize("seed", [0])
@pytest.mark.parametrize("provider", ["gitea", "github"])
def test_a_stale_delivery_after_the_delete_does_not_resurrect_the_issue(chaos: Chaos) -> None:
    """Deliveries reordered around a deletion: the tracker no longer has either issue, so
    the mirror must not have them either, whatever order the deliveries came in."""
    fake = chaos.fake
    mirrored = fake.seed_issue(title="mirrored, edited, then deleted", notify=True)
    chaos._capture(mirrored.number)
    never = fake.seed_issue(title="deleted before its opened delivery arrived", notify=True)
    chaos._capture(never.number)
    fake.edit_issue(mirrored.number, title="edited before the delete")
    chaos._capture(mirrored.number)
    for number in (mirrored.number, never.number):
        fake.delete_issue(number)
        chaos._capture(number, deletion=True)
    chaos.deleted = {mirrored.number, never.number}

    def hooks(number: int, *, deletion: bool) -> list[OutgoingWebhook]:
        return [c.hook for c in chaos.captured if c.number == number and c.deletion == deletion]

    opened, *edited = hooks(mirrored.number, deletion=False)
    order = [
        opened,
        *hooks(mirrored.number, deletion=True),
        *hooks(never.number, deletion=True),
        *edited,  # (a) older than the delete processed after it
        *hooks(never.number, deletion=False),  # (b) "opened" after the delete
    ]
    for hook in order:
        response = chaos.post(hook)
        assert response.status_code == 202, response.content
        process_delivery(response.json()["delivery"])
    assert fake.issues == {}
    assert list(Issue.objects.filter(connection=chaos.connection)) == []
