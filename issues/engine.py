"""The one inbound path: every remote state — webhook, poll, reconciliation, push answer —
is applied to the mirror by `apply_remote_batch` (one issue: `apply_remote_issue`), a
deletion by `apply_remote_deletion`.

It locks the mirror row, drops stale events, three-way merges against the stored base with
per-field version vectors, records conflicts or lets the policy decide, queues what the
tracker is missing, and logs what changed. Echoes of our own pushes fall out of the merge:
the push's answer is recorded as the base, so the echo equals base, mirror and remote.

No network call happens here; callers fetch first, then apply in a short transaction.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

import structlog
from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from integrations.models import Connection
from integrations.providers.base import RemoteIssue
from integrations.providers.registry import capabilities
from issues import merge
from issues.bulk import assign_keys, insert_rows, update_rows
from issues.canonical import (
    FIELDS,
    changed_fields,
    normalise,
    normalise_value,
    remote_snapshot,
    remote_state_hash,
    same_on_tracker,
    storable_tracker_status,
)
from issues.models import (
    Action,
    Conflict,
    ConflictResolution,
    Direction,
    Issue,
    OutboxEntry,
    OutboxOperation,
    OutboxStatus,
    RemoteTombstone,
    SyncLog,
    SyncStatus,
    Trigger,
)
from syndarix_sync.logs import current_correlation_id, get_logger
from syndarix_sync.metrics import SYNC_CONFLICTS, SYNC_OPERATIONS

logger = get_logger(__name__)

Outcome = Literal[
    "created",
    "updated",
    "unchanged",
    "stale",
    "filtered",
    "conflict",
    "deleted",
    "kept",
    "linked",
    "missing",
    "reread",
]
LOCAL, REMOTE = "local", "remote"


@dataclasses.dataclass(frozen=True)
class ApplyResult:
    outcome: Outcome
    issue_id: int | None = None
    conflicts: int = 0
    pushed_fields: tuple[str, ...] = ()
    # What the tracker is missing: the caller (issues.services.sync) queues it in the same
    # transaction. The engine itself never queues work.
    push: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    push_operation: str = OutboxOperation.UPDATE

    @property
    def changed(self) -> bool:
        return self.outcome in ("created", "updated", "conflict", "deleted", "linked")


# --- version vectors stored on the issue ----------------------------------------------------


class Versions:
    """Per-field version vectors and the last remote snapshot seen, kept in `Issue.versions`.

    local[f]  — the vector of the mirror's value of f: bumped by each local edit, carrying the
                remote counter the editor had seen (so an edit made after seeing a remote
                change causally follows it).
    remote[f] — the vector of the tracker's value of f: bumped when a remote change of f is
                seen, carrying the local counter the tracker had acknowledged (`acked`).
    """

    def __init__(self, data: Mapping[str, Any] | None) -> None:
        data = dict(data or {})
        self.local: dict[str, dict[str, int]] = dict(data.get("local") or {})
        self.remote: dict[str, dict[str, int]] = dict(data.get("remote") or {})
        self.acked: dict[str, int] = dict(data.get("acked") or {})
        self.remote_seen: dict[str, Any] | None = data.get("remote_seen")
        # When the last local edit was made (kept for older rows), and per field: what
        # last-writer-wins compares for a contested field — not the row's updated_at, which
        # every inbound save moves too, nor another field's edit.
        self.local_edited_at: str | None = data.get("local_edited_at")
        self.field_edited_at: dict[str, str] = dict(data.get("field_edited_at") or {})
        # Write receipts: field → {"value", "counter"} of a write we are about to make (or
        # made, its answer not recorded yet). Persisted BEFORE the call, so an echo or a
        # retry's read that shows this value is recognised as ours and acknowledged instead
        # of being merged as a tracker edit.
        self.written: dict[str, dict[str, Any]] = dict(data.get("written") or {})
        # The marker of a create sent (recorded before the POST): a retry looks for it.
        self.create_marker: str | None = data.get("create_marker")

    def vector(self, side: str, field: str) -> merge.VersionVector:
        table = self.local if side == LOCAL else self.remote
        return merge.VersionVector.from_dict(table.get(field))

    def vectors(self, side: str) -> dict[str, merge.VersionVector]:
        return {field: self.vector(side, field) for field in FIELDS}

    def counter(self, side: str, field: str, replica: str) -> int:
        """One counter of a field's vector (`vector(side, field).get(replica)`, without
        building the vector: a merge reads a dozen of them)."""
        table = self.local if side == LOCAL else self.remote
        return int((table.get(field) or {}).get(replica, 0))

    def bump_local(self, field: str) -> None:
        own = self.counter(LOCAL, field, LOCAL)
        seen_remote = self.counter(REMOTE, field, REMOTE)
        self.local[field] = {LOCAL: own + 1, REMOTE: seen_remote}
        self.local_edited_at = timezone.now().isoformat()
        self.field_edited_at[field] = self.local_edited_at

    def last_local_edit(self) -> datetime | None:
        return datetime.fromisoformat(self.local_edited_at) if self.local_edited_at else None

    def field_edits(self) -> dict[str, datetime]:
        """When each field was last edited locally (fields edited before per-field times
        were kept fall back to the last edit of any field)."""
        edits = {f: datetime.fromisoformat(t) for f, t in self.field_edited_at.items()}
        last = self.last_local_edit()
        if last is not None:
            for field, vector in self.local.items():
                if vector and field not in edits:
                    edits[field] = last
        return edits

    def record_write(
        self,
        values: Mapping[str, Any],
        *,
        seen: datetime | None = None,
        revision: int | None = None,
    ) -> dict[str, int]:
        """Note what we are about to write (values and the local counters they carry) and
        the tracker's `updated_at` and revision read just before (`seen`, `revision`);
        returns the counters."""
        counters = {f: self.local_counter(f) for f in values}
        for field, value in values.items():
            self.written[field] = {
                "value": normalise_value(field, value),
                "counter": counters[field],
                "seen": seen.isoformat() if seen is not None else None,
                "revision": revision,
            }
        return counters

    def receipts_in_doubt(
        self,
        snapshot: Mapping[str, Any],
        updated_at: datetime | None,
        ours: Mapping[str, int],
        written: Mapping[str, Mapping[str, Any]],
        *,
        written_apart: frozenset[str] = frozenset(),
        revision: int | None = None,
    ) -> set[str]:
        """Fields whose write may have landed (its answer lost) and been changed since: the
        tracker shows another value than we wrote, and it changed after the read our write
        was based on, by more than our own writes explain (an `updated_at` moved with no
        value changed but ours: someone may have put a value back). Its value, even the
        base's, is then no proof the tracker left the field alone. A receipt in doubt is
        used up: judged once."""
        doubtful: set[str] = set()
        # Scalars go in one PATCH/PUT: when one of a write's scalars shows up, all of it
        # landed, and a sibling showing another value was changed after it. Not a field the
        # tracker writes in a request of its own (`written_apart`): that one may not be sent
        # yet when the others' echo arrives.
        apart = merge.SET_FIELDS | written_apart
        landed = {written[f].get("seen") for f in ours if f in written and f not in apart}
        for field, receipt in list(self.written.items()):
            if field in apart or field in ours or field not in snapshot:
                continue
            if receipt.get("seen") and receipt.get("seen") in landed:
                doubtful.add(field)
                del self.written[field]
        if updated_at is None or not self.written:
            return doubtful
        previous = self.remote_seen or {}
        changed = {f for f in snapshot if previous.get(f) != snapshot[f]}
        if changed and changed <= set(ours):
            # The tracker moved by our own writes only: the rest of the write is awaited
            # from this state on.
            for receipt in self.written.values():
                receipt["seen"] = updated_at.isoformat()
                if revision is not None:
                    receipt["revision"] = revision
            return doubtful
        # Someone else changed the tracker: within the second of our read too, where its
        # 1-s `updated_at` does not move.
        foreign = bool(changed - set(ours))
        stamp = updated_at.replace(microsecond=0)
        for field, receipt in list(self.written.items()):
            seen = receipt.get("seen")
            if field in ours or field not in snapshot or not seen:
                continue
            known = receipt.get("revision")
            if known is not None and revision is not None:
                # A counter of changes (OpenProject's lockVersion): our write is one. A value
                # other than ours after two or more may be someone's revert of it; after
                # fewer, our write never landed.
                doubt = revision - int(known) >= 2
            else:
                doubt = foreign or stamp > datetime.fromisoformat(seen).replace(microsecond=0)
            if doubt:
                doubtful.add(field)
                del self.written[field]
        return doubtful

    def forget_writes(self, fields: Iterable[str]) -> None:
        """A write the tracker refused or never received: no receipt to wait for."""
        for field in fields:
            self.written.pop(field, None)

    def receipts_matching(
        self, snapshot: Mapping[str, Any], same: Callable[[str, Any, Any], bool]
    ) -> dict[str, int]:
        """The fields where the tracker shows what we wrote: field → the counter written.
        A matched receipt is used up."""
        acks: dict[str, int] = {}
        for field, receipt in list(self.written.items()):
            if field in snapshot and same(field, receipt["value"], snapshot[field]):
                acks[field] = int(receipt["counter"])
                del self.written[field]
        return acks

    def bump_remote(self, field: str) -> None:
        own = self.counter(REMOTE, field, REMOTE)
        self.remote[field] = {REMOTE: own + 1, LOCAL: self.acked.get(field, 0)}

    def acknowledge(self, fields: Mapping[str, int]) -> None:
        for field, counter in fields.items():
            # Nothing acknowledged reads as 0: no entry for it, so the first merge after a
            # create does not rewrite the row to add zeros.
            if counter > self.acked.get(field, 0):
                self.acked[field] = counter

    def local_counter(self, field: str) -> int:
        return self.counter(LOCAL, field, LOCAL)

    def as_json(self) -> dict[str, Any]:
        return {
            "local": self.local,
            "remote": self.remote,
            "acked": self.acked,
            "remote_seen": self.remote_seen,
            "local_edited_at": self.local_edited_at,
            "field_edited_at": self.field_edited_at,
            "written": self.written,
            "create_marker": self.create_marker,
        }


# --- helpers --------------------------------------------------------------------------------


def passes_filters(connection: Connection, snapshot: Mapping[str, Any]) -> bool:
    """Partial sync (SPEC §5): label, milestone and state filters of the connection."""
    if connection.state_filter != "all" and snapshot["state"] != connection.state_filter:
        return False
    if connection.label_filter and not set(connection.label_filter) & set(snapshot["labels"]):
        return False
    return not (
        connection.milestone_filter and snapshot["milestone"] not in connection.milestone_filter
    )


def _set_fields(issue: Issue, values: Mapping[str, Any]) -> None:
    for field, value in normalise({**issue.snapshot(), **values}).items():
        setattr(issue, field, value)


def log_change(
    *,
    issue: Issue | None,
    connection: Connection,
    direction: str,
    action: str,
    trigger: str,
    before: Any,
    after: Any,
    correlation_id: str,
) -> None:
    entry = SyncLog.objects.create(
        connection=connection,
        issue=issue,
        provider=connection.provider,
        direction=direction,
        action=action,
        trigger=trigger,
        before=before,
        after=after,
        correlation_id=(correlation_id or current_correlation_id())[:64],
    )
    # Field names, never values: an issue's text is the tracker's data, not log material.
    logger.info(
        "sync_log",
        sync_log=entry.pk,
        issue=issue.pk if issue is not None else None,
        direction=direction,
        action=action,
        trigger=trigger,
        fields=sorted(after) if isinstance(after, dict) else None,
    )


def action_for(before: Mapping[str, Any], after: Mapping[str, Any]) -> str:
    if before.get("state") != after.get("state"):
        return Action.CLOSE if after.get("state") == "closed" else Action.REOPEN
    return Action.UPDATE


def refresh_sync_status(issue: Issue) -> None:
    """Derive the status: conflict > pending > error > synced (one aggregate query)."""
    active = [OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]
    counts = Issue.objects.filter(pk=issue.pk).aggregate(
        conflicts=Count("conflicts", filter=Q(conflicts__resolved=False), distinct=True),
        active=Count("outbox", filter=Q(outbox__status__in=active), distinct=True),
        failed=Count("outbox", filter=Q(outbox__status=OutboxStatus.FAILED), distinct=True),
    )
    if counts["conflicts"]:
        status = SyncStatus.CONFLICT
    elif counts["active"]:
        status = SyncStatus.PENDING
    elif counts["failed"]:
        status = SyncStatus.ERROR
    else:
        status = SyncStatus.SYNCED
    if issue.sync_status != status:
        issue.sync_status = status
        if status != SyncStatus.ERROR:
            issue.sync_error = ""
        Issue.objects.filter(pk=issue.pk).update(sync_status=status, sync_error=issue.sync_error)


def _drop_from_pending_pushes(issue: Issue, fields: set[str]) -> None:
    """A field in conflict must not be pushed until a human decides."""
    if not fields:
        return
    for entry in OutboxEntry.objects.filter(
        issue=issue, status=OutboxStatus.PENDING, operation=OutboxOperation.UPDATE
    ):
        remaining = {k: v for k, v in entry.changes.items() if k not in fields}
        if remaining != entry.changes:
            if remaining:
                entry.changes = remaining
                entry.save(update_fields=["changes", "updated_at"])
            else:
                entry.status = OutboxStatus.DONE
                entry.last_error = "superseded: field in conflict"
                entry.completed_at = timezone.now()
                entry.save(update_fields=["status", "last_error", "completed_at", "updated_at"])


def create_marker(issue: Issue) -> str:
    """The marker a local create carries to the tracker (kept hidden in the body): found
    again by it, never by title and body, which are not an identity."""
    return f"{issue.connection_id}.{issue.pk}"


def find_in_flight_create(connection: Connection, remote: RemoteIssue) -> Issue | None:
    """The locally created issue whose create this remote issue is (by its marker), still
    unlinked: link it rather than insert a duplicate (the tracker's "opened" webhook can beat
    the create's answer, and an answer can be lost)."""
    if not remote.marker:
        return None
    prefix, _, pk = remote.marker.partition(".")
    if prefix != str(connection.pk) or not pk.isdigit():
        return None
    return (
        Issue.objects.select_for_update()
        .filter(connection=connection, pk=int(pk), external_id__isnull=True)
        .first()
    )


# --- the inbound path ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class RemoteState:
    """One remote state to apply: the tracker's full state of an issue, and how it came."""

    remote: RemoteIssue
    trigger: str
    correlation_id: str = ""
    # Set when `remote` is the tracker's answer to our own push: field → the local version
    # counter that push carried. Those fields become the new base.
    acknowledged: Mapping[str, int] | None = None
    # When the read or listing that returned `remote` was sent (our clock): only an answer
    # asked for after a tombstone was written can lift it.
    fetched_at: datetime | None = None


def apply_remote_issue(
    *,
    connection: Connection,
    remote: RemoteIssue,
    trigger: str,
    correlation_id: str = "",
    acknowledged: Mapping[str, int] | None = None,
    fetched_at: datetime | None = None,
) -> ApplyResult:
    """Apply the tracker's full state of one issue to the mirror: a batch of one."""
    state = RemoteState(remote, trigger, correlation_id, acknowledged, fetched_at)
    return apply_remote_batch(connection=connection, states=[state])[0]


def apply_remote_batch(
    *, connection: Connection, states: Sequence[RemoteState]
) -> list[ApplyResult]:
    """Apply the tracker's full states of many issues of one connection, in one transaction.

    The rows are locked in one query (in id order, so two batches never deadlock), each
    state is merged in memory, and what changed is written in a few statements: the new
    issues in one INSERT, the changed rows in one UPDATE, their sync-log rows in one INSERT;
    the metrics are counted once. The rare cases that touch other rows (a conflict opened or
    settled, a create linked, the sync status to derive) write those rows as they go.

    An issue named twice is applied twice, in order: the second time in a later round, which
    locks and reads the row the first one wrote. The results are in the order of `states`.
    """
    results: list[ApplyResult] = [ApplyResult("unchanged")] * len(states)
    # No savepoint of its own: a failure here fails the caller's transaction as a whole.
    with transaction.atomic(savepoint=False):
        for round_items in _rounds(states):
            items = round_items
            for _attempt in range(3):
                items = _apply_round(connection, items, results)
                if not items:
                    break
            else:
                raise IntegrityError("new issues collided three times with concurrent inserts")
    return results


def _rounds(states: Sequence[RemoteState]) -> list[list[tuple[int, RemoteState]]]:
    """Split the states so that no round names an issue twice (order kept per issue)."""
    rounds: list[list[tuple[int, RemoteState]]] = []
    seen: dict[str, int] = {}
    for index, state in enumerate(states):
        n = seen.get(state.remote.external_id, 0)
        seen[state.remote.external_id] = n + 1
        if n == len(rounds):
            rounds.append([])
        rounds[n].append((index, state))
    return rounds


def _apply_round(
    connection: Connection, items: list[tuple[int, RemoteState]], results: list[ApplyResult]
) -> list[tuple[int, RemoteState]]:
    """Apply states of distinct issues; returns the ones to apply again (a new issue that a
    concurrent transaction inserted first: it is merged into that row next time)."""
    external_ids = [state.remote.external_id for _, state in items]
    locked = {
        issue.external_id: issue
        for issue in Issue.objects.select_for_update()
        .filter(connection=connection, external_id__in=external_ids)
        .order_by("pk")
    }
    open_conflicts: dict[int, dict[str, Conflict]] = {}
    if locked:
        for conflict in Conflict.objects.filter(
            issue__in=[issue.pk for issue in locked.values()], resolved=False
        ):
            open_conflicts.setdefault(conflict.issue_id, {})[conflict.field] = conflict
    missing = [external_id for external_id in external_ids if external_id not in locked]
    tombstones: dict[str, datetime] = {}
    if missing:
        tombstones = dict(
            RemoteTombstone.objects.filter(
                connection=connection, external_id__in=missing
            ).values_list("external_id", "deleted_at")
        )
    writes = _Writes(connection)
    for index, state in items:
        issue = locked.get(state.remote.external_id)
        if issue is None:
            results[index] = _apply_new(connection, index, state, tombstones, writes)
        else:
            results[index] = _apply_known(
                connection, issue, state, open_conflicts.get(issue.pk, {}), writes
            )
    return writes.flush(results)


def _apply_new(
    connection: Connection,
    index: int,
    state: RemoteState,
    tombstones: Mapping[str, datetime],
    writes: _Writes,
) -> ApplyResult:
    remote = state.remote
    snapshot = remote_snapshot(remote)
    deleted_at = tombstones.get(remote.external_id)
    if deleted_at is not None:
        fetched_at = state.fetched_at
        if state.trigger == Trigger.WEBHOOK or fetched_at is None or fetched_at <= deleted_at:
            # A delivery, or a listing answered before the deletion was processed.
            return ApplyResult("stale")
        # Asked after the deletion: the tracker has it (again).
        RemoteTombstone.objects.filter(
            connection=connection, external_id=remote.external_id
        ).delete()
    issue = find_in_flight_create(connection, remote)
    if issue is not None:
        return _link_created(
            connection=connection,
            issue=issue,
            remote=remote,
            snapshot=snapshot,
            trigger=state.trigger,
            correlation_id=state.correlation_id,
            writes=writes,
        )
    if not connection.allows_inbound and state.acknowledged is None:
        return ApplyResult("filtered")
    if not passes_filters(connection, snapshot):
        return ApplyResult("filtered")
    versions = Versions(None)
    versions.remote_seen = snapshot
    issue = Issue(
        connection=connection,
        # The canonical fields as they are (`remote_snapshot` normalised them), the lists
        # copied: the snapshot is also the row's base and its log row's `after`.
        **{
            **snapshot,
            "labels": list(snapshot["labels"]),
            "assignees": list(snapshot["assignees"]),
        },
        base=snapshot,
        versions=versions.as_json(),
        sync_status=SyncStatus.SYNCED,
    )
    _remote_meta(issue, remote, snapshot)
    writes.create(index, state, issue, snapshot)
    return ApplyResult("created")  # its id once the batch is written


def _apply_known(
    connection: Connection,
    issue: Issue,
    state: RemoteState,
    open_conflicts: Mapping[str, Conflict],
    writes: _Writes,
) -> ApplyResult:
    remote = state.remote
    snapshot = remote_snapshot(remote)
    if remote.updated_at is not None and issue.remote_updated_at is not None:
        # Compared to the second: trackers stamp to the second, and GitLab's webhooks
        # carry seconds where its API carries milliseconds.
        theirs = remote.updated_at.replace(microsecond=0)
        ours = issue.remote_updated_at.replace(microsecond=0)
        if theirs < ours:
            return ApplyResult("stale", issue.pk)
        if (
            theirs == ours
            and state.trigger == Trigger.WEBHOOK
            and state.fetched_at is None
            and state.acknowledged is None
            and snapshot != Versions(issue.versions).remote_seen
        ):
            # Same second, other content: which is newer cannot be told. Never apply
            # the (maybe) older one: the caller reads the issue again.
            return ApplyResult("reread", issue.pk)
    return _merge_into(
        connection=connection,
        issue=issue,
        remote=remote,
        snapshot=snapshot,
        trigger=state.trigger,
        correlation_id=state.correlation_id,
        acknowledged=state.acknowledged or {},
        open_conflicts=open_conflicts,
        writes=writes,
    )


# What an inbound merge may change on a row, written by `_Writes.flush` in one statement:
# the scalar columns a round changed, and always the JSON ones (cheaper to write than to
# compare, and their dicts can be changed in place) and `updated_at`.
_SCALAR_COLUMNS = (
    "title",
    "body",
    "state",
    "milestone",
    "external_number",
    "remote_url",
    "tracker_status",
    "remote_created_at",
    "remote_updated_at",
    "remote_deleted_at",
    "remote_hash",
    "sync_status",
    "sync_error",
)
_JSON_COLUMNS = ("labels", "assignees", "base", "versions", "updated_at")


def _scalars(issue: Issue) -> tuple[Any, ...]:
    return tuple(getattr(issue, name) for name in _SCALAR_COLUMNS)


class _Writes:
    """The rows a round writes, gathered while it merges and written together at its end."""

    def __init__(self, connection: Connection) -> None:
        self.connection = connection
        self.new: list[tuple[int, RemoteState, Issue]] = []
        self.changed: dict[int, Issue] = {}
        self.columns: set[str] = set()
        self.entries: list[tuple[Issue | None, dict[str, Any]]] = []
        self.operations: Counter[str] = Counter()
        self.conflicts: Counter[str] = Counter()

    def create(
        self, index: int, state: RemoteState, issue: Issue, snapshot: dict[str, Any]
    ) -> None:
        self.new.append((index, state, issue))
        self.log(
            issue,
            action=Action.CREATE,
            trigger=state.trigger,
            before=None,
            after=snapshot,
            correlation_id=state.correlation_id,
        )

    def update(self, issue: Issue, before: tuple[Any, ...]) -> None:
        """`issue` changed; `before` is its `_scalars` before the change."""
        self.changed[issue.pk] = issue
        after = _scalars(issue)
        self.columns.update(
            c for c, a, b in zip(_SCALAR_COLUMNS, before, after, strict=True) if a != b
        )

    def log(
        self,
        issue: Issue | None,
        *,
        action: str,
        trigger: str,
        before: Any,
        after: Any,
        correlation_id: str,
    ) -> None:
        entry = {
            "action": action,
            "trigger": trigger,
            "before": before,
            "after": after,
            "correlation_id": (correlation_id or current_correlation_id())[:64],
        }
        self.entries.append((issue, entry))

    def flush(self, results: list[ApplyResult]) -> list[tuple[int, RemoteState]]:
        """Write the round; returns the states whose new issue collided with a row a
        concurrent transaction inserted (nothing of theirs is written)."""
        collided: list[tuple[int, RemoteState]] = []
        issues = [issue for _, _, issue in self.new]
        connection = self.connection
        logs = [
            SyncLog(
                connection=connection,
                issue=issue,
                provider=connection.provider,
                direction=Direction.INBOUND,
                **entry,
            )
            for issue, entry in self.entries
        ]
        assign_keys(issues, logs)  # one query for the keys of both
        if self.new:
            try:
                with transaction.atomic():
                    insert_rows(Issue, issues)
            except IntegrityError:
                collided = [(index, state) for index, state, _ in self.new]
                dropped = {id(issue) for issue in issues}
                kept = [k for k, (issue, _) in enumerate(self.entries) if id(issue) not in dropped]
                self.entries = [self.entries[k] for k in kept]
                logs = [logs[k] for k in kept]
            else:
                for index, _, issue in self.new:
                    results[index] = ApplyResult("created", issue.pk)
                self.operations["success"] += len(self.new)
        if self.changed:
            now = timezone.now()
            rows = list(self.changed.values())
            for issue in rows:
                issue.updated_at = now
            update_rows(rows, [c for c in _SCALAR_COLUMNS if c in self.columns] + [*_JSON_COLUMNS])
        if self.entries:
            self._write_log(logs)
        platform = self.connection.provider
        for status, count in self.operations.items():
            SYNC_OPERATIONS.labels(platform=platform, status=status).inc(count)
        for kind, count in self.conflicts.items():
            SYNC_CONFLICTS.labels(platform=platform, type=kind).inc(count)
        return collided

    def _write_log(self, rows: list[SyncLog]) -> None:
        insert_rows(SyncLog, rows)
        if not logger.isEnabledFor(logging.INFO):
            return
        # One line per row (README "Logs": a change is followed by its id to its `sync_log`
        # line), kept cheap: a row's own correlation id is bound only when it is not the
        # batch's — a reconciliation's rows all carry the run's.
        bound = current_correlation_id()
        for row, (issue, entry) in zip(rows, self.entries, strict=True):
            cid = row.correlation_id
            after = entry["after"]
            # Field names, never values: an issue's text is the tracker's data.
            line = {
                "sync_log": row.pk,
                "issue": issue.pk if issue is not None else None,
                "direction": Direction.INBOUND,
                "action": entry["action"],
                "trigger": entry["trigger"],
                "fields": sorted(after) if isinstance(after, dict) else None,
            }
            if cid and cid != bound:
                with structlog.contextvars.bound_contextvars(correlation_id=cid):
                    logger.info("sync_log", **line)
            else:
                logger.info("sync_log", **line)


def _remote_meta(issue: Issue, remote: RemoteIssue, snapshot: Mapping[str, Any]) -> None:
    issue.external_id = remote.external_id
    issue.external_number = remote.number
    issue.remote_url = remote.remote_url
    issue.tracker_status = storable_tracker_status(remote)  # read-only, the tracker's own name
    issue.remote_created_at = remote.created_at or issue.remote_created_at
    issue.remote_updated_at = remote.updated_at or issue.remote_updated_at
    issue.remote_deleted_at = None
    issue.remote_hash = remote_state_hash(remote, snapshot)


def _link_created(
    *,
    connection: Connection,
    issue: Issue,
    remote: RemoteIssue,
    snapshot: dict[str, Any],
    trigger: str,
    correlation_id: str,
    writes: _Writes,
) -> ApplyResult:
    """The tracker reports the issue we created: adopt its id; the create row's answer (or
    this event) becomes the base, so nothing is created twice."""
    _remote_meta(issue, remote, snapshot)
    versions = Versions(issue.versions)
    # The base is what the create sent (its receipt), not the mirror now: an edit made while
    # the create was in flight is a local change still to push, not something to revert. A
    # field it did not send (the close of an issue born closed, its request never made) has
    # the tracker's own value as base: the local one is still to push.
    sent = {f: r["value"] for f, r in versions.written.items()}
    issue.base = normalise({**snapshot, **sent})
    issue.versions = versions.as_json()
    issue.save()
    OutboxEntry.objects.filter(
        issue=issue,
        operation=OutboxOperation.CREATE,
        status__in=[OutboxStatus.PENDING, OutboxStatus.FAILED],
    ).update(
        status=OutboxStatus.DONE,
        completed_at=timezone.now(),
        last_error="linked: the tracker already has this issue",
    )
    result = _merge_into(
        connection=connection,
        issue=issue,
        remote=remote,
        snapshot=snapshot,
        trigger=trigger,
        correlation_id=correlation_id,
        # The issue found proves the create landed: what it sent is acknowledged, like an
        # answer's fields (a value changed since is a tracker edit after it).
        acknowledged={f: int(r["counter"]) for f, r in versions.written.items()},
        open_conflicts={c.field: c for c in issue.conflicts.filter(resolved=False)},
        writes=writes,
    )
    return dataclasses.replace(result, outcome="linked")


def _stored_state(issue: Issue) -> tuple[Any, ...]:
    return (
        issue.snapshot(),
        issue.base,
        issue.versions,
        issue.external_number,
        issue.remote_url,
        issue.tracker_status,
        issue.remote_created_at,
        issue.remote_updated_at,
        issue.remote_deleted_at,
        issue.remote_hash,
    )


def _merge_into(
    *,
    connection: Connection,
    issue: Issue,
    remote: RemoteIssue,
    snapshot: dict[str, Any],
    trigger: str,
    correlation_id: str,
    acknowledged: Mapping[str, int],
    open_conflicts: Mapping[str, Conflict],
    writes: _Writes,
) -> ApplyResult:
    versions = Versions(issue.versions)
    same = same_on_tracker(connection.provider)
    tracker = capabilities(connection.provider)
    # Ours: the fields where the tracker shows what a write receipt says we wrote (the
    # answer, an echo, a retry's read) — acknowledged, never merged as a tracker edit.
    written = dict(versions.written)
    ours = versions.receipts_matching(snapshot, same)
    # A push's answer that shows something else than we wrote: the tracker saw our write
    # (its counter is acknowledged) and then someone changed the field — a remote change
    # that causally follows ours.
    overwritten = {f: c for f, c in acknowledged.items() if f in written and f not in ours}
    ours.update({f: c for f, c in acknowledged.items() if f not in written})
    versions.acknowledge(overwritten)
    versions.forget_writes(overwritten)  # answered: no longer awaited
    # A write whose answer was lost, and the tracker changed since: a value back at the base
    # may be someone's reversal of our write — a remote change, concurrent with our edit.
    in_doubt = versions.receipts_in_doubt(
        snapshot,
        remote.updated_at,
        ours,
        written,
        written_apart=tracker.written_apart,
        revision=remote.revision,
    )
    previous_remote = versions.remote_seen
    for field in FIELDS:
        remote_changed = previous_remote is None or previous_remote.get(field) != snapshot[field]
        if (remote_changed or field in in_doubt) and field not in ours:
            versions.bump_remote(field)
    versions.acknowledge(ours)
    versions.remote_seen = snapshot

    base: dict[str, Any] | None = normalise(issue.base) if issue.base else None
    if base is not None:
        for field in ours:
            base[field] = snapshot[field]  # our write: both sides agree on it

    mirror = issue.snapshot()
    local = dict(mirror)
    for field, conflict in open_conflicts.items():
        local[field] = conflict.local_value  # the mirror shows remote; the local edit waits here
    for field in FIELDS:
        # The same value on this tracker, spelt its way (label case, CRLF): adopt its
        # spelling in the mirror and the base, or every round would write it again.
        if local[field] != snapshot[field] and same(field, local[field], snapshot[field]):
            local[field] = snapshot[field]
            if base is not None and same(field, base[field], snapshot[field]):
                base[field] = snapshot[field]

    if not connection.allows_inbound:
        policy: str = merge.Policy.LOCAL_WINS
    else:
        policy = connection.conflict_policy
    result = merge.merge_issue(
        base=base,
        local=local,
        remote=snapshot,
        policy=policy,
        local_updated_at=versions.last_local_edit(),
        remote_updated_at=remote.updated_at,
        local_field_updated_at=versions.field_edits(),
        local_touched=frozenset(
            f for f in FIELDS if versions.local_counter(f) > versions.acked.get(f, 0)
        ),
        # An open conflict is the human's to settle: the tracker showing the base value
        # again does not make the local side win it silently.
        remote_touched=frozenset(in_doubt | set(open_conflicts)),
        local_versions=versions.vectors(LOCAL),
        remote_versions=versions.vectors(REMOTE),
        # One assignee, one category: two sides replacing it is no union to write.
        capacity={
            field: limit
            for field, limit in (
                ("labels", tracker.max_labels),
                ("assignees", tracker.max_assignees),
            )
            if limit is not None
        },
    )
    # Where the tracker now holds the mirror's value, every local edit of it is reflected
    # there: acknowledged, so a later remote change is not taken for a concurrent one.
    versions.acknowledge(
        {
            f: versions.local_counter(f)
            for f in FIELDS
            if normalise_value(f, result.merged[f]) == snapshot[f] and local[f] == snapshot[f]
        }
    )
    merged = normalise(result.merged)
    if not connection.allows_inbound:
        merged = normalise(local)
    new_base = normalise(result.new_base)
    push = changed_fields(snapshot, merged)
    conflicted = {c.field for c in result.conflicts}
    for field in push:
        new_base[field] = snapshot[field]  # the tracker does not have our value yet
    for field in conflicted:
        push.pop(field, None)

    before = mirror
    stored, scalars = _stored_state(issue), _scalars(issue)
    _remote_meta(issue, remote, snapshot)
    _set_fields(issue, merged)
    issue.base = new_base
    issue.versions = versions.as_json()
    if _stored_state(issue) != stored:
        writes.update(issue, scalars)  # echoes and redeliveries change nothing: no write

    # Conflicts: open or refresh one per field; close the ones the merge settled.
    for clash in result.conflicts:
        Conflict.objects.update_or_create(
            issue=issue,
            field=clash.field,
            resolved=False,
            defaults={
                "base_value": None
                if clash.base is None
                else normalise_value(clash.field, clash.base),
                "local_value": normalise_value(clash.field, clash.local),
                "remote_value": normalise_value(clash.field, clash.remote),
            },
        )
    settled = set(open_conflicts) - conflicted
    for field in settled:
        conflict = open_conflicts[field]
        winner_local = merged[field] == normalise_value(field, conflict.local_value)
        conflict.resolved = True
        conflict.resolution = (
            ConflictResolution.LOCAL_WINS if winner_local else ConflictResolution.REMOTE_WINS
        )
        conflict.resolved_value = merged[field]
        conflict.resolved_at = timezone.now()
        conflict.save()
    _drop_from_pending_pushes(issue, conflicted)
    queued = bool(push and connection.allows_outbound)

    after = issue.snapshot()
    new_conflicts = conflicted - set(open_conflicts)
    if after != before:
        writes.log(
            issue,
            action=action_for(before, after),
            trigger=trigger,
            before=before,
            after=after,
            correlation_id=correlation_id,
        )
    if new_conflicts:
        writes.log(
            issue,
            action=Action.CONFLICT,
            trigger=trigger,
            before={f: local[f] for f in new_conflicts},
            after={f: snapshot[f] for f in new_conflicts},
            correlation_id=correlation_id,
        )
    # A synced issue that gained no outbox row and no conflict stays synced: the common case
    # (a remote edit, an echo) skips the aggregate query.
    # (A push is queued by the caller, which refreshes the status after writing its row.)
    if issue.sync_status != SyncStatus.SYNCED or conflicted or open_conflicts or ours:
        refresh_sync_status(issue)
    if new_conflicts:
        writes.conflicts["manual"] += len(new_conflicts)
    for resolution in result.resolutions:
        writes.conflicts[resolution.reason] += 1
    if new_conflicts:
        writes.operations["conflict"] += 1
    elif after != before:
        writes.operations["success"] += 1
    if new_conflicts:
        outcome: Outcome = "conflict"
    elif after != before:
        outcome = "updated"
    else:
        outcome = "unchanged"
    return ApplyResult(
        outcome,
        issue.pk,
        len(new_conflicts),
        tuple(sorted(push)),
        push=push if queued else {},
    )


def apply_remote_deletion(
    *,
    connection: Connection,
    external_id: str,
    trigger: str,
    correlation_id: str = "",
    deleted_at: datetime | None = None,
) -> ApplyResult:
    """The tracker no longer has the issue. Delete wins by default (ADR-011); under
    `update_wins` a mirror with unpushed local changes survives and is re-created remotely."""
    with transaction.atomic():
        # Recorded even when there is no mirror row yet: the "opened" delivery may come later.
        RemoteTombstone.objects.get_or_create(connection=connection, external_id=external_id)
        issue = (
            Issue.objects.select_for_update()
            .filter(connection=connection, external_id=external_id)
            .first()
        )
        if issue is None:
            return ApplyResult("missing")
        base = normalise(issue.base) if issue.base else None
        local_changed = (
            base is None
            or issue.snapshot() != base
            or issue.outbox.filter(
                status__in=[OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]
            ).exists()
        )
        decision = merge.resolve_delete(
            policy=merge.DeletePolicy(connection.delete_policy),
            deleted_side=merge.Side.REMOTE,
            other_side_changed=bool(local_changed),
        )
        before = issue.snapshot()
        if decision == "delete" or not connection.allows_outbound:
            log_change(
                issue=None,
                connection=connection,
                direction=Direction.INBOUND,
                action=Action.DELETE,
                trigger=trigger,
                before=before,
                after={"external_id": external_id},
                correlation_id=correlation_id,
            )
            issue.delete()
            return ApplyResult("deleted")
        # Keep it: the local edits outlive the remote delete, as a new remote issue.
        issue.external_id = None
        issue.external_number = ""
        issue.remote_url = ""
        issue.remote_deleted_at = deleted_at or timezone.now()
        issue.base = None
        issue.save()
        OutboxEntry.objects.filter(issue=issue, status=OutboxStatus.PENDING).update(
            status=OutboxStatus.DONE,
            completed_at=timezone.now(),
            last_error="superseded: issue re-created after a remote delete",
        )
        log_change(
            issue=issue,
            connection=connection,
            direction=Direction.INBOUND,
            action=Action.DELETE,
            trigger=trigger,
            before=before,
            after={"kept": True},
            correlation_id=correlation_id,
        )
        return ApplyResult(
            "kept", issue.pk, push=issue.snapshot(), push_operation=OutboxOperation.CREATE
        )
