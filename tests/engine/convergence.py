"""The convergence simulation: random edits on both sides, a lossy and unordered webhook
channel, crashing workers — then polling and reconciliation to quiescence, and the checks
that prove the product (issue: "no edit is ever silently lost, nothing loops").

Everything is real but the randomness: the fake trackers over HTTP, the webhook endpoint,
the database, the engine, the outbox. One `Scenario` is one seeded run. The tracker is as
unkind as real ones (issue 12): its clock is skewed by up to ±2 minutes, stamps to the
second and does not bump equal stamps; answers to writes are lost after the write applied;
listings are served in small pages that shift while they are read; it rate-limits; it
refuses values (an unknown assignee); on PostgreSQL several workers drain at once, and an
answer can be held back while its echo is delivered first.

Checks, per run: divergence (mirror != tracker), lost edits, duplicates and no-op writes —
all must be 0 — plus the conflict policy on contested fields, and convergence BEFORE the
final full pass (webhooks and incremental polls alone), not only after it.

What the service could observe is recorded too (`TrackerHistory`): every change of a tracker
issue (a human's, or a request of the service's) and every state the service recorded as the
tracker's (`remote_seen`). A human edit the service could not have seen — a value that went
v→x→v between two of its looks — is no lost edit when the service's write stands (check (b));
check (e) keeps that record honest: the service never saw a value the tracker had not held.
"""

from __future__ import annotations

import contextlib
import dataclasses
import random
import threading
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

from django.conf import settings
from django.db import connection as db_connection
from django.db.models.signals import post_save
from django.test import Client
from django.utils import timezone

from integrations.fake_trackers.base import FakeTracker, Fault, OutgoingWebhook, RecordedRequest
from integrations.fake_trackers.base import Response as FakeResponse
from integrations.fake_trackers.gitea import FakeGitea
from integrations.fake_trackers.github import FakeGitHub
from integrations.fake_trackers.gitlab import FakeGitLab
from integrations.models import Connection
from integrations.providers.base import body_with_marker, split_marker
from integrations.providers.registry import capabilities
from issues.canonical import same_on_tracker
from issues.inbound import process_delivery
from issues.models import Conflict, Issue, OutboxEntry, OutboxStatus
from issues.outbox import claim_issue_batch, drain
from issues.polling import sync_connection
from issues.services.issues import IssueInConflictError, issue_create, issue_update
from tests.providers.kits import KITS, Kit

SECRET = "sim-secret"
LABELS = ["bug", "feature", "docs", "ui", "backend"]
USERS = ["alice", "bob", "carol", "dave"]
REFUSED_USER = "mallory"  # no such user in the tracker: a refused value
MILESTONES = [None, "v1", "v2"]
SCALARS = ("title", "body", "state", "milestone")
SETS = ("labels", "assignees")
# The fakes the engine harness (`tracker_harness`) builds directly.
FAKES: dict[str, type[FakeTracker]] = {
    "gitea": FakeGitea,
    "github": FakeGitHub,
    "gitlab": FakeGitLab,
}
# Every provider with a fake runs in the simulation: a new provider is its Kit line.
KIT_BY_PROVIDER: dict[str, Kit] = {kit.provider: kit for kit in KITS}
PROVIDERS = tuple(KIT_BY_PROVIDER)


def tracker_state(issue: Any, *, crlf_to_lf: bool = False) -> dict[str, Any]:
    """A fake issue's canonical fields as a user sees them: the hidden create marker that
    the tracker keeps in the body is not part of the body. A tracker that stores every body
    with CRLF (Redmine) is read with LF (`Capabilities.body_crlf_to_lf`)."""
    state = issue.snapshot()
    if crlf_to_lf:
        state["body"] = state["body"].replace("\r\n", "\n")
    state["body"] = split_marker(state["body"])[0]
    return state


def _canonical_state(fake: FakeTracker) -> dict[int, tuple[Any, ...]]:
    return {
        number: (
            issue.title,
            issue.body,
            issue.state,
            tuple(issue.labels),
            tuple(issue.assignees),
            issue.milestone,
        )
        for number, issue in fake.issues.items()
    }


def count_noop_writes(fake: FakeTracker, kit: Kit) -> list[str]:
    """Record every successful issue update (PATCH/PUT on the tracker's issue path) that
    changed no canonical field: the simulation's check (d). Works on any provider's fake."""
    noop_writes: list[str] = []
    respond = fake._respond

    def counting(record: RecordedRequest) -> FakeResponse:
        is_update = (
            record.method in ("PATCH", "PUT")
            and kit.issue_path in record.path
            # Jira's entity properties (the create marker) are no issue field.
            and "/properties" not in record.path
        )
        if not is_update:
            return respond(record)
        with fake.lock:
            before = _canonical_state(fake)
            response = respond(record)
            after = _canonical_state(fake)
        if response.status < 300 and before == after:
            noop_writes.append(f"{record.method} {record.path} {record.body[:200]!r}")
        return response

    fake._respond = counting  # type: ignore[method-assign]
    return noop_writes


@dataclasses.dataclass(frozen=True)
class Change:
    """A field of a tracker issue changed: by a simulated human (`edit`: the ledger index of
    the Edit) or by a request of the service (`edit` None). A creation is a change from None."""

    field: str
    before: Any
    after: Any
    edit: int | None = None


@dataclasses.dataclass(frozen=True)
class Seen:
    """The service recorded a new state of the issue as the tracker's (its `remote_seen`)."""

    state: Mapping[str, Any]


Event = Change | Seen
Same = Callable[[str, Any, Any], bool]


def unobservable_round_trips(events: Sequence[Event], field: str, same: Same) -> set[int]:
    """The ledger indexes of human edits of `field` the service could not have observed:
    consecutive human changes that bring the field back to the value v it had before them
    (v→x→…→v), while every state of the issue the service recorded — its last one before
    them, and all of them until the field's next change — showed v. Its view of the field
    was v throughout, and the service reads states, not histories: to it, nothing happened
    there. (A value of x seen after the field's next change is that change's.)"""
    changes = [
        (position, event)
        for position, event in enumerate(events)
        if isinstance(event, Change) and event.field == field
    ]
    excused: set[int] = set()
    k = 0
    while k < len(changes):
        start, first = changes[k]
        end = None
        if first.edit is not None:
            for m in range(k + 1, len(changes)):
                if changes[m][1].edit is None:
                    break  # the service wrote the field meanwhile
                if same(field, changes[m][1].after, first.before):
                    end = m
                    break
        if end is None:
            k += 1
            continue
        until = changes[end + 1][0] if end + 1 < len(changes) else len(events)
        if _view_held(events, field, first.before, start, until, same):
            excused.update(c.edit for _, c in changes[k : end + 1] if c.edit is not None)
            k = end + 1
        else:
            k += 1
    return excused


def _view_held(
    events: Sequence[Event], field: str, value: Any, start: int, until: int, same: Same
) -> bool:
    """The service's last look before `start` and all its looks before `until` showed `value`."""
    before = [e for e in events[:start] if isinstance(e, Seen)]
    if not before or not same(field, before[-1].state[field], value):
        return False
    return all(
        same(field, e.state[field], value) for e in events[start:until] if isinstance(e, Seen)
    )


def unheld_values(events: Sequence[Event], same: Same) -> list[str]:
    """Check (e): the values the service saw (`field value`) that the tracker had not held
    before it saw them — a state it made up, or a change the simulation's record missed."""
    held: defaultdict[str, list[Any]] = defaultdict(list)
    problems: list[str] = []
    for event in events:
        if isinstance(event, Change):
            held[event.field].append(event.after)
            continue
        for field, value in event.state.items():
            if not any(same(field, value, h) for h in held[field]):
                problems.append(f"{field} {value!r}")
    return problems


class TrackerHistory:
    """Per tracker issue, in order: every change of its fields — a human's (recorded where
    the simulation makes it) or a request of the service's (the fake's state before and
    after serving it) — and every new state the service recorded as the tracker's."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.events: defaultdict[int, list[Event]] = defaultdict(list)
        self._seen: dict[int, Any] = {}  # issue pk → the last remote_seen recorded

    def state(self, number: int) -> dict[str, Any] | None:
        issue = self.scenario.fake.issues.get(number)
        if issue is None:
            return None
        return tracker_state(issue, crlf_to_lf=self.scenario.caps.body_crlf_to_lf)

    def states(self) -> dict[int, dict[str, Any]]:
        crlf = self.scenario.caps.body_crlf_to_lf
        return {n: tracker_state(i, crlf_to_lf=crlf) for n, i in self.scenario.fake.issues.items()}

    def record(
        self,
        before: Mapping[int, Mapping[str, Any]],
        after: Mapping[int, Mapping[str, Any]],
        *,
        edit: int | None = None,
    ) -> None:
        for number, state in after.items():
            old = before.get(number)
            for field, value in state.items():
                previous = None if old is None else old[field]
                if old is None or previous != value:
                    self.events[number].append(Change(field, previous, value, edit=edit))

    def created(self, number: int) -> None:
        """Issue `number` appeared in the tracker (seeded, or a human created it)."""
        state = self.state(number)
        if state is not None:
            self.record({}, {number: state})

    def human(self, number: int, before: Mapping[str, Any] | None, *, edit: int) -> None:
        """A human changed issue `number` (ledger index `edit`); `before`: its prior state."""
        after = self.state(number)
        if after is not None:
            self.record({} if before is None else {number: before}, {number: after}, edit=edit)

    def watch_requests(self) -> None:
        fake = self.scenario.fake
        serve = fake._serve

        def serving(record: RecordedRequest) -> FakeResponse:
            if record.method in ("GET", "HEAD"):
                return serve(record)
            with fake.lock:
                before = self.states()
                response = serve(record)
                self.record(before, self.states())
            return response

        fake._serve = serving  # type: ignore[method-assign]

    def see(self, issue: Issue) -> None:
        seen = (issue.versions or {}).get("remote_seen")
        if seen is None or not issue.external_number or self._seen.get(issue.pk) == seen:
            return
        self._seen[issue.pk] = seen
        number = self.scenario.kit.fake_number(issue.external_number)
        self.events[number].append(Seen(dict(seen)))

    def on_save(self, sender: Any, instance: Issue, **kwargs: Any) -> None:
        # Every thread's saves (the workers'): an Issue's remote_seen is only ever saved
        # through Model.save(), but for the full pass's bulk insert of new issues, whose
        # first look is then unknown (no round trip before a known look is excused).
        if instance.connection_id == self.scenario.connection.pk:
            self.see(instance)


@dataclasses.dataclass
class Edit:
    side: str  # "local" | "remote"
    key: tuple[str, int]  # ("remote", number) or ("local", issue pk)
    field: str
    value: Any  # scalar value, or (element, present) for sets
    number: int | None = None  # a human's edit: the tracker issue it edited


@dataclasses.dataclass
class Outcome:
    seed: int
    provider: str
    policy: str
    steps: int
    edits: int
    webhooks_sent: int
    webhooks_lost: int
    webhooks_duplicated: int
    crashes: int
    conflicts: int
    rounds_to_quiescence: int
    problems: list[str]
    clock_skew: int = 0
    faults: dict[str, int] = dataclasses.field(default_factory=dict)
    # The metrics that must be 0.
    divergence: int = 0
    lost_edits: int = 0
    duplicates: int = 0
    noop_writes: int = 0
    unheld: int = 0


class Scenario:
    def __init__(
        self, seed: int, *, provider: str = "gitea", steps: int = 25, threads: bool = False
    ) -> None:
        self.seed = seed
        self.provider = provider
        self.rng = random.Random(seed)
        self.steps = steps
        self.policy = self.rng.choice(
            ["manual", "manual", "manual", "remote_wins", "local_wins", "last_writer_wins"]
        )
        self.kit = KIT_BY_PROVIDER[provider]
        # Any: each provider's fake has its own extras (Redmine's project members, …).
        self.fake: Any = self.kit.make_fake()
        self.noop_writes = count_noop_writes(self.fake, self.kit)
        self.secret = self.fake.webhook_secret or SECRET
        # The simulation's values, seeded into the tracker: where labels, milestones and
        # assignees are predefined (board labels, categories, versions, members), these are
        # the ones defined.
        self.fake.known_labels = list(LABELS)
        self.fake.known_milestones = ["v1", "v2"]
        self.fake.known_users.update(USERS)
        # The callback URL the tracker was given (Trello sends nothing without one, and
        # signs it with the body).
        self.fake.webhook_url = f"{settings.PUBLIC_URL}/webhooks/{provider}/"
        members = getattr(self.fake, "members", None)
        if isinstance(members, set):
            members.update(USERS)  # Redmine: assignable = project members
        # The tracker's clock: skewed by up to two minutes either way, 1-s stamps, equal
        # stamps for writes within one second.
        self.clock_skew = self.rng.randint(-120, 120)
        self.fake.strictly_increasing_clock = False
        self.fake.advance_clock(self.clock_skew)
        # Small pages, so listings have several and an edit during one shifts them.
        self.fake.max_page_size = self.rng.choice([2, 3, 50])
        # Worker threads need committed data: only with a transactional test on PostgreSQL.
        self.threads = threads
        self.caps = capabilities(provider)
        self.milestones = MILESTONES if self.caps.milestones else [None]
        self.scalars = SCALARS if self.caps.milestones else ("title", "body", "state")
        self.same = same_on_tracker(provider)
        self.history = TrackerHistory(self)
        self.history.watch_requests()
        self.faults: dict[str, int] = defaultdict(int)
        self.refused: set[tuple[tuple[str, int], str]] = set()
        self.pending_hooks: list[OutgoingWebhook] = []
        self.fake.webhook_sink = self.pending_hooks.append
        self.http = Client()
        self.edits: list[Edit] = []
        self.local_keys: dict[int, tuple[str, int]] = {}  # issue pk → ledger key
        self.deleted_remote: set[int] = set()
        self.stats: defaultdict[str, int] = defaultdict(int)

    # --- plumbing ----------------------------------------------------------------------

    def run(self) -> Outcome:
        self.fake.start()
        post_save.connect(self.history.on_save, sender=Issue, weak=False)
        try:
            self.connection = Connection.objects.create(
                name=f"sim-{self.seed}",
                provider=self.provider,
                base_url=self.kit.base_url(self.fake),
                repository=self.fake.repository,
                api_token=self.fake.token,
                webhook_secret=self.secret,
                conflict_policy=self.policy,
                config_json=self.kit.config(self.fake),
            )
            for n in range(self.rng.randint(2, 4)):
                seeded = self.fake.seed_issue(
                    title=f"issue {n}",
                    body="",
                    labels=self.rng.sample(LABELS, min(2, self.caps.max_labels or 2)),
                    assignees=self.rng.sample(USERS, 1),
                    milestone=self.rng.choice(self.milestones),
                )
                self.history.created(seeded.number)
            sync_connection(connection_id=self.connection.pk, full=True)
            for issue in self._mirror_issues():
                self.history.see(issue)  # inserted in bulk: no save signal
            for _ in range(self.steps):
                self._step()
            self.fake.faults.clear()
            problems = self._converge_without_full_pass()
            rounds = self._settle()
            problems += self._check()
        finally:
            post_save.disconnect(self.history.on_save, sender=Issue)
            self.fake.stop()
        return Outcome(
            seed=self.seed,
            provider=self.provider,
            policy=self.policy,
            steps=self.steps,
            edits=len(self.edits),
            webhooks_sent=len(self.fake.sent_webhooks),
            webhooks_lost=self.stats["lost"],
            webhooks_duplicated=self.stats["duplicated"],
            crashes=self.stats["crashes"],
            conflicts=Conflict.objects.filter(issue__connection=self.connection).count(),
            rounds_to_quiescence=rounds,
            problems=problems,
            clock_skew=self.clock_skew,
            faults=dict(self.faults),
            divergence=sum(p.startswith("(a)") for p in problems),
            lost_edits=sum(p.startswith("(b)") for p in problems),
            duplicates=sum(p.startswith("(c)") for p in problems),
            noop_writes=sum(p.startswith("(d)") for p in problems),
            unheld=sum(p.startswith("(e)") for p in problems),
        )

    def _deliver(self, hook: OutgoingWebhook) -> None:
        headers = {k: v for k, v in hook.headers.items() if k.lower() != "content-type"}
        response = self.http.post(
            f"/webhooks/{self.provider}/",
            data=hook.body,
            content_type="application/json",
            headers=headers,
        )
        if response.status_code == 202:
            process_delivery(response.json()["delivery"])
        elif response.status_code not in (200, 204):
            raise AssertionError(f"webhook answered {response.status_code}: {response.content!r}")

    def _deliver_some(self, *, lossy: bool) -> None:
        self.fake.drain_webhooks()
        hooks, self.pending_hooks[:] = list(self.pending_hooks), []
        if lossy:
            self.rng.shuffle(hooks)  # reordering
            keep = self.rng.randint(0, len(hooks))
            self.pending_hooks.extend(hooks[keep:])  # delayed to a later step
            hooks = hooks[:keep]
        for hook in hooks:
            if lossy and self.rng.random() < 0.2:
                self.stats["lost"] += 1
                continue
            self._deliver(hook)
            if lossy and self.rng.random() < 0.1:
                self.stats["duplicated"] += 1
                self._deliver(hook)

    def _mirror_issues(self) -> list[Issue]:
        return list(Issue.objects.filter(connection=self.connection).order_by("id"))

    def _key_for(self, issue: Issue) -> tuple[str, int]:
        if issue.pk in self.local_keys:
            return self.local_keys[issue.pk]
        return ("remote", self.kit.fake_number(issue.external_number))

    def _external(self, number: int) -> str:
        """The client's number (the mirror's `external_number`) of fake issue `number`."""
        return self.kit.number(self.fake, SimpleNamespace(number=number))

    def _fake_issue(self, issue: Issue) -> Any:
        if not issue.external_number:
            return None
        return self.fake.issues.get(self.kit.fake_number(issue.external_number))

    # --- random actions ----------------------------------------------------------------

    def _random_value(self, field: str, current: Any) -> Any:
        if field == "title":
            return f"title {self.rng.randint(0, 999)} ü"
        if field == "body":
            bodies = ["", f"body {self.rng.randint(0, 999)}", "line\nbreak ✓"]
            if self.caps.body_crlf_to_lf:
                bodies.append("crlf\r\nline")  # the tracker stores it with LF
            return self.rng.choice(bodies)
        if field == "state":
            return "closed" if current == "open" else "open"
        return self.rng.choice([m for m in self.milestones if m != current])

    def _step(self) -> None:
        roll = self.rng.random()
        if roll < 0.35:
            self._remote_edit()
        elif roll < 0.7:
            self._local_edit()
        elif roll < 0.75:
            self._remote_create()
        elif roll < 0.8:
            self._local_create()
        elif roll < 0.82:
            self._remote_delete()
        elif roll < 0.87:
            self._crash_worker()
        elif roll < 0.9:
            self._refused_edit()
        self._maybe_inject_fault()
        if self.rng.random() < 0.5:
            self._deliver_some(lossy=True)
        if self.rng.random() < 0.4:
            self._drain()
        if self.rng.random() < 0.1:
            sync_connection(connection_id=self.connection.pk, full=False)
        if self.rng.random() < 0.05:
            sync_connection(connection_id=self.connection.pk, full=True)

    # --- the tracker's faults ----------------------------------------------------------

    def _maybe_inject_fault(self) -> None:
        roll = self.rng.random()
        if roll < 0.08:
            # The write applies, its answer is lost (a proxy's 504): retried after a read.
            method = self.rng.choice(["PATCH", "PUT", "POST"])  # any write, any path
            status = self.rng.choice([500, 502, 504])
            self.fake.inject(Fault(status=status, method=method, apply_then_fail=True))
            self.faults["lost_answer"] += 1
        elif roll < 0.12:
            self.fake.inject(Fault(status=429, retry_after=self.rng.randint(1, 30)))
            self.faults["rate_limit"] += 1
        elif roll < 0.18:
            self._inject_page_shift()

    def _inject_page_shift(self) -> None:
        """A human edit in the tracker between two pages of a listing."""
        numbers = sorted(self.fake.issues)
        if not numbers:
            return
        number = self.rng.choice(numbers)
        key = self._remote_key(number)
        value = f"shifted {self.rng.randint(0, 999)}"

        def edit() -> None:
            if number in self.fake.issues:
                before = self.history.state(number)
                self.fake.edit_issue(number, title=value)
                self.history.human(number, before, edit=len(self.edits))
                self.edits.append(Edit("remote", key, "title", value, number))

        if self.provider in FAKES:
            self.fake.inject(Fault(status=0, method="GET", query={"page": "2"}, before=edit))
        else:
            # Offset, token or cursor paging: the edit lands before the listing's second
            # request (its next page, or the next pass's first).
            listings = [0]

            def on_second() -> None:
                listings[0] += 1
                if listings[0] == 2:
                    edit()

            self.fake.inject(
                Fault(
                    status=0,
                    method="GET",
                    path_contains=self.kit.list_path,
                    count=2,
                    before=on_second,
                )
            )
        self.faults["page_shift"] += 1

    def _unpause(self) -> None:
        """Time passes: a rate-limit pause is over."""
        Connection.objects.filter(pk=self.connection.pk).update(rate_limited_until=None)

    def _drain(self) -> None:
        if not self.threads or self.rng.random() < 0.5:
            drain()
            return
        if self.rng.random() < 0.5:
            self._drain_with_echo_first()
            return
        # Several workers at once: claims must not overlap, nothing must be lost.
        self.faults["parallel_drain"] += 1
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                drain()
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                errors.append(exc)
            finally:
                db_connection.close()

        workers = [threading.Thread(target=worker) for _ in range(self.rng.randint(2, 3))]
        for thread in workers:
            thread.start()
        for thread in workers:
            thread.join(60)
        if errors:
            raise errors[0]

    def _drain_with_echo_first(self) -> None:
        """A worker's write is answered late: its echo (and any other delivery) is processed
        while the answer is on the wire."""
        self.faults["echo_first"] += 1
        release = threading.Event()
        served = threading.Event()
        method = self.kit.update_method
        self.fake.inject(Fault(status=0, method=method, hold=release, after=served.set))
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                drain()
            except BaseException as exc:  # noqa: BLE001 - reported to the main thread
                errors.append(exc)
            finally:
                db_connection.close()

        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive() and not served.wait(0.005):
            pass  # until the write was served (or the worker found nothing to write)
        if served.is_set():
            self._deliver_some(lossy=False)
        release.set()
        thread.join(60)
        self.fake.faults[:] = [f for f in self.fake.faults if f.hold is not release]
        if errors:
            raise errors[0]

    def _refused_edit(self) -> None:
        """An agent assigns a user the tracker does not know: the tracker refuses it."""
        issues = [i for i in self._mirror_issues() if i.external_id is not None]
        if not issues:
            return
        issue = self.rng.choice(issues)
        assignees = (
            [REFUSED_USER]
            if self.caps.max_assignees == 1
            else sorted({*issue.assignees, REFUSED_USER})
        )
        try:
            issue_update(issue=issue, changes={"assignees": assignees}, force=True)
        except IssueInConflictError:  # pragma: no cover - force settles conflicts
            return
        self.refused.add((self._key_for(issue), "assignees"))
        self.faults["refused"] += 1

    def _case_insensitive(self, field: str) -> bool:
        if field == "labels":
            return self.caps.label_case_insensitive
        return field == "assignees" and self.caps.assignee_case_insensitive

    def _key(self, field: str, element: str) -> str:
        return element.casefold() if self._case_insensitive(field) else element

    def _remote_key(self, number: int) -> tuple[str, int]:
        """The ledger key of a tracker issue: a locally created one keeps its local key."""
        mirror = Issue.objects.filter(
            connection=self.connection, external_number=self._external(number)
        ).first()
        if mirror is not None and mirror.pk in self.local_keys:
            return self.local_keys[mirror.pk]
        if mirror is None:
            # Our create whose answer is not recorded yet (lost, or not back yet): the
            # tracker issue carries the create's marker, and is that local issue.
            try:
                marker = self.kit.stored_marker(self.fake, self.fake.issues[number])
            except (KeyError, TypeError):
                marker = None  # no marker kept (an issue a human created)
            prefix, _, pk = (marker or "").partition(".")
            if prefix == str(self.connection.pk) and pk.isdigit() and int(pk) in self.local_keys:
                return self.local_keys[int(pk)]
        return ("remote", number)

    def _remote_edit(self) -> None:
        numbers = sorted(self.fake.issues)
        if not numbers:
            return
        number = self.rng.choice(numbers)
        issue = self.fake.issues[number]
        key = self._remote_key(number)
        field = self.rng.choice(self.scalars + SETS)
        if field in SETS:
            universe = LABELS if field == "labels" else USERS
            element = self.rng.choice(universe)
            members = set(getattr(issue, field))
            present = element not in members
            members = members | {element} if present else members - {element}
            replaced = self._over_limit(field, members, element)
            members -= replaced
            before = self.history.state(number)
            self.fake.edit_issue(number, **{field: sorted(members)})
            self.history.human(number, before, edit=len(self.edits))
            self.edits.append(Edit("remote", key, field, (element, present), number))
            self.edits.extend(Edit("remote", key, field, (m, False), number) for m in replaced)
        else:
            value = self._random_value(field, getattr(issue, field))
            shown = tracker_state(issue, crlf_to_lf=self.caps.body_crlf_to_lf)[field]
            if self.same(field, value, shown):
                return  # setting what is there is no edit (the ledger would expect it to win)
            stored = value
            if field == "body":
                # A human edits the body's text; the hidden create marker in its source stays.
                source = issue.body
                if self.caps.body_crlf_to_lf:
                    source = source.replace("\r\n", "\n")
                stored = body_with_marker(value, split_marker(source)[1])
            before = self.history.state(number)
            self.fake.edit_issue(number, **{field: stored})
            self.history.human(number, before, edit=len(self.edits))
            self.edits.append(Edit("remote", key, field, value, number))

    def _local_edit(self) -> None:
        issues = self._mirror_issues()
        if not issues:
            return
        issue = self.rng.choice(issues)
        field = self.rng.choice(self.scalars + SETS)
        replaced: set[str] = set()
        if field in SETS:
            universe = LABELS if field == "labels" else USERS
            element = self.rng.choice(universe)
            if self.rng.random() < 0.2 and self._case_insensitive(field):
                element = element.upper()  # the tracker keeps its own spelling
            members = set(getattr(issue, field))
            folded = {self._key(field, m) for m in members}
            present = self._key(field, element) not in folded
            if present:
                members = members | {element}
            else:
                members = {m for m in members if self._key(field, m) != self._key(field, element)}
            replaced = self._over_limit(field, members, element)
            members -= replaced
            value: Any = sorted(members)
            recorded: Any = (element, present)
        else:
            value = recorded = self._random_value(field, getattr(issue, field))
            if self.same(field, value, getattr(issue, field)):
                return  # no edit
        force = self.rng.random() < 0.5
        try:
            issue_update(issue=issue, changes={field: value}, force=force)
        except IssueInConflictError:
            return  # an agent that does not force is told to resolve first: no edit made
        self.edits.append(Edit("local", self._key_for(issue), field, recorded))
        self.edits.extend(Edit("local", self._key_for(issue), field, (m, False)) for m in replaced)

    def _over_limit(self, field: str, members: set[str], element: str) -> set[str]:
        """Where the tracker holds one assignee (or one label), the new element replaces the
        others: those are the removals the edit implies."""
        limit = self.caps.max_labels if field == "labels" else self.caps.max_assignees
        if limit is None or len(members) <= limit:
            return set()
        return {m for m in members if self._key(field, m) != self._key(field, element)}

    def _remote_create(self) -> None:
        fake_issue = self.fake.seed_issue(
            title=f"remote new {self.rng.randint(0, 999)}",
            labels=[self.rng.choice(LABELS)],
            notify=True,
        )
        self.stats["remote_creates"] += 1
        self.history.created(fake_issue.number)

    def _local_create(self) -> None:
        issue = issue_create(
            connection=self.connection,
            title=f"local new {self.rng.randint(0, 99999)}",
            labels=[self.rng.choice(LABELS)],
        )
        self.local_keys[issue.pk] = ("local", issue.pk)
        self.stats["local_creates"] += 1

    def _remote_delete(self) -> None:
        numbers = sorted(self.fake.issues)
        if len(numbers) <= 1:
            return
        number = self.rng.choice(numbers)
        self.fake.delete_issue(number)
        self.deleted_remote.add(number)

    def _crash_worker(self) -> None:
        """A worker claims rows and dies: before the call, or right after its write, before
        the answer is recorded. Either way the lease runs out and the rows come back."""
        self.stats["crashes"] += 1
        if not self.threads or self.rng.random() < 0.5:
            claim_issue_batch(limit=1, lease=timedelta(seconds=-1))
            return
        self._die_after_the_write()

    def _die_after_the_write(self) -> None:
        """The real push runs in a worker whose database session is killed the moment the
        tracker has applied its write: nothing after the write is recorded (the answer, the
        rows' status), everything before it is (the write receipt) — as when the process
        dies there. The rows' lease then runs out and another worker takes them again."""
        backend: list[int] = []
        died = threading.Event()

        def kill() -> None:
            if backend and not died.is_set():
                died.set()
                try:
                    with db_connection.cursor() as cursor:
                        cursor.execute("SELECT pg_terminate_backend(%s, 5000)", [backend[0]])
                finally:
                    db_connection.close()  # the tracker's thread's own session

        # Killed after the tracker applied the write, before its answer is sent.
        fault = Fault(status=0, method=self.kit.update_method, after=kill)
        self.fake.inject(fault)

        def worker() -> None:
            try:
                with db_connection.cursor() as cursor:
                    cursor.execute("SELECT pg_backend_pid()")
                    backend.append(cursor.fetchone()[0])
                drain(limit=1)
            except Exception:  # noqa: BLE001 - the crash: its session was killed
                pass
            finally:
                with contextlib.suppress(Exception):
                    db_connection.close()

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(60)
        self.fake.faults[:] = [f for f in self.fake.faults if f is not fault]
        if died.is_set():
            self.faults["crash_after_write"] += 1

    # --- quiescence and checks ---------------------------------------------------------

    def _make_due(self) -> None:
        """Time passes: backoffs, leases and pauses run out."""
        self._unpause()
        OutboxEntry.objects.filter(
            issue__connection=self.connection, status=OutboxStatus.PENDING
        ).update(next_attempt_at=timezone.now())
        OutboxEntry.objects.filter(
            issue__connection=self.connection, status=OutboxStatus.IN_PROGRESS
        ).update(claimed_until=timezone.now() - timedelta(seconds=1))

    def _converge_without_full_pass(self) -> list[str]:
        """Webhooks (no longer lost) and incremental polls alone must bring both sides
        together for every issue the tracker still has: the full pass is the net under the
        net, not the mechanism. (Deletions without a webhook are the full pass's job.)"""
        for _ in range(10):
            self._make_due()
            self._deliver_some(lossy=False)
            drain()
            self._deliver_some(lossy=False)
            sync_connection(connection_id=self.connection.pk, full=False)
            self.fake.drain_webhooks()
            if not self._settle_failed() and not self.pending_hooks:
                break
        problems: list[str] = []
        for issue in self._mirror_issues():
            remote = self._fake_issue(issue)
            if remote is None:
                continue
            problems.extend(
                f"(a) before the full pass: #{issue.external_number} {field}: "
                f"mirror {issue.snapshot()[field]!r} != tracker {value!r}"
                for field, value in tracker_state(
                    remote, crlf_to_lf=self.caps.body_crlf_to_lf
                ).items()
                if issue.snapshot()[field] != value and not self._visibly_failed(issue, field)
            )
        return problems

    def _visibly_failed(self, issue: Issue, field: str) -> bool:
        """A field the tracker refused: a failed row shows it (the issue is in error)."""
        return any(
            field in changes
            for changes in OutboxEntry.objects.filter(
                issue=issue, status=OutboxStatus.FAILED
            ).values_list("changes", flat=True)
        )

    def _settle(self) -> int:
        for round_number in range(1, 16):
            self._make_due()
            self._deliver_some(lossy=False)
            drain()
            self._deliver_some(lossy=False)
            run = sync_connection(connection_id=self.connection.pk, full=True)
            busy = OutboxEntry.objects.filter(
                issue__connection=self.connection,
                status__in=[OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS],
            ).exists()
            self.fake.drain_webhooks()
            if not busy and not self.pending_hooks and run.drift == 0:
                return round_number
        return -1

    def _check(self) -> list[str]:
        problems: list[str] = []
        if self._settle_failed():
            problems.append("did not reach quiescence in 15 rounds")
        mirror = self._mirror_issues()
        by_external: dict[str, list[Issue]] = defaultdict(list)
        for issue in mirror:
            if issue.external_id is None:
                problems.append(f"issue {issue.pk} was never created remotely")
                continue
            by_external[issue.external_number].append(issue)
        remote_numbers = {self._external(n) for n in self.fake.issues}
        for number, issues in by_external.items():
            if len(issues) > 1:
                problems.append(f"(c) duplicate mirror rows for remote #{number}")
        if set(by_external) != remote_numbers:
            problems.append(
                f"(c) mirror has {sorted(by_external)}, tracker {sorted(remote_numbers)}"
            )
        titles = [i.title for i in self.fake.issues.values()]
        for title in {t for t in titles if titles.count(t) > 1 and t.startswith("local new")}:
            problems.append(f"(c) duplicate remote issues titled {title!r}")

        # (a) equal on both sides; open conflicts hold both values.
        final: dict[tuple[str, int], dict[str, Any]] = {}
        for number, issues in by_external.items():
            issue = issues[0]
            remote = self.fake.issues.get(self.kit.fake_number(number))
            if remote is None:
                continue
            remote_state = tracker_state(remote, crlf_to_lf=self.caps.body_crlf_to_lf)
            # The create marker is the tracker's copy only: users (and the mirror) never see it.
            remote_state["body"] = split_marker(remote_state["body"])[0]
            local_state = issue.snapshot()
            for field, value in remote_state.items():
                if local_state[field] != value and not self._visibly_failed(issue, field):
                    problems.append(
                        f"(a) #{number} {field}: mirror {local_state[field]!r} != tracker {value!r}"
                    )
            for conflict in issue.conflicts.filter(resolved=False):
                if conflict.remote_value != remote_state[conflict.field]:
                    problems.append(
                        f"(a) #{number} open conflict on {conflict.field} does not "
                        "hold the tracker's value"
                    )
                if conflict.local_value == conflict.remote_value:
                    problems.append(f"(a) #{number} conflict on {conflict.field} with equal values")
            final[self._key_for(issue)] = remote_state

        # (b) every uncontested edit is present on both sides. A human's round trip the
        # service could not have seen (v→x→v between two of its looks) is no edit to it.
        unseen = {
            index
            for events in self.history.events.values()
            for field in self.scalars
            for index in unobservable_round_trips(events, field, self.same)
        }
        # A human's edits of an issue a human then deleted went with it — also where that
        # issue was our create, not linked yet, and the service created it again.
        edits = [
            edit
            for index, edit in enumerate(self.edits)
            if index not in unseen and edit.number not in self.deleted_remote
        ]
        sides: dict[tuple[tuple[str, int], str], set[str]] = defaultdict(set)
        for edit in edits:
            sides[(edit.key, edit.field)].add(edit.side)
        conflicted = {
            (self._key_for(c.issue), c.field)
            for c in Conflict.objects.filter(issue__connection=self.connection).select_related(
                "issue"
            )
        }
        last_scalar: dict[tuple[tuple[str, int], str], Any] = {}
        last_element: dict[tuple[tuple[str, int], str, str], bool] = {}
        for edit in edits:
            if edit.field in SETS:
                element, present = edit.value
                last_element[(edit.key, edit.field, self._key(edit.field, element))] = present
            else:
                last_scalar[(edit.key, edit.field)] = edit.value
        deleted = {("remote", n) for n in self.deleted_remote}
        for (key, field), value in last_scalar.items():
            if key in deleted or key not in final:
                continue
            if len(sides[(key, field)]) > 1:
                # Contested. Under `manual` a change is only taken silently when the other
                # side had not changed the field: without a conflict, the last edit stands.
                if (
                    self.policy == "manual"
                    and (key, field) not in conflicted
                    and not self.same(field, final[key][field], value)
                ):
                    problems.append(
                        f"(b) contested {key} {field}: no conflict, last edit {value!r} lost "
                        f"to {final[key][field]!r}"
                    )
                continue
            if (key, field) in conflicted:
                continue
            if not self.same(field, final[key][field], value):
                problems.append(
                    f"(b) lost edit: {key} {field}={value!r}, final {final[key][field]!r}"
                )
        for (key, field, element), present in last_element.items():
            if key in deleted or key not in final or len(sides[(key, field)]) > 1:
                continue
            if (key, field) in self.refused:
                continue  # the field failed visibly; its other edits wait with it
            held = {self._key(field, m) for m in final[key][field]}
            if (self._key(field, element) in held) != present:
                problems.append(f"(b) lost set edit: {key} {field} {element} present={present}")

        # (d) no push of a no-op change.
        problems.extend(f"(d) no-op write: {w}" for w in self.noop_writes)
        # (e) the service saw only what the tracker held (and the record above missed nothing).
        for number, events in sorted(self.history.events.items()):
            problems.extend(
                f"(e) #{number}: the service saw {value}, which the tracker had not held"
                for value in unheld_values(events, self.same)
            )
        return problems

    def _settle_failed(self) -> bool:
        return OutboxEntry.objects.filter(
            issue__connection=self.connection,
            status__in=[OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS],
        ).exists()
