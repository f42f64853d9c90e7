"""The write path of the sync engine: apply a remote state (or deletion) and queue what the
tracker is missing, in one transaction.

The engine (`issues.engine`) decides and records; it returns the pushes it wants and never
queues work itself. These services write the outbox row in the same transaction as the
mirror change, and queue the push task after commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from integrations.models import Connection
from integrations.providers.base import RemoteIssue
from issues import tasks
from issues.engine import (
    ApplyResult,
    RemoteState,
    apply_remote_batch,
    apply_remote_deletion,
    refresh_sync_status,
)
from issues.models import Issue, OutboxEntry, OutboxOperation, OutboxStatus
from syndarix_sync.logs import current_correlation_id
from syndarix_sync.queueing import queue_on_commit


def outbox_push_enqueue(
    *,
    issue: Issue,
    fields: Mapping[str, Any],
    operation: str = OutboxOperation.UPDATE,
    correlation_id: str = "",
    from_merge: bool = False,
) -> OutboxEntry | None:
    """Write an outbox row (in the caller's transaction) for the fields not already queued,
    and queue the push after commit.

    The drain pushes the mirror's values as they are when it runs, so a pending row for a
    field covers any later value of it. A row in progress covers only what a merge derives
    (the push under way carries it); a new local edit needs its own row, because the push in
    progress may have read the mirror before the edit.
    """
    if operation == OutboxOperation.UPDATE:
        covering = (
            [OutboxStatus.PENDING, OutboxStatus.IN_PROGRESS]
            if from_merge
            else [OutboxStatus.PENDING]
        )
        queued: set[str] = set()
        for changes in OutboxEntry.objects.filter(
            issue=issue, status__in=covering, operation=operation
        ).values_list("changes", flat=True):
            queued.update(changes)
        fields = {k: v for k, v in fields.items() if k not in queued}
        if from_merge:
            # A field whose push failed (a refused value: a failed row holds it) is not sent
            # again on each remote event; a new local edit, or "Retry" in the admin, does.
            for changes in OutboxEntry.objects.filter(
                issue=issue, status=OutboxStatus.FAILED, operation=operation
            ).values_list("changes", flat=True):
                fields = {k: v for k, v in fields.items() if k not in changes}
        if not fields:
            return None
    entry = OutboxEntry.objects.create(
        connection_id=issue.connection_id,
        issue=issue,
        operation=operation,
        changes=dict(fields),
        next_attempt_at=timezone.now(),
        correlation_id=(correlation_id or current_correlation_id())[:64],
    )
    queue_on_commit(tasks.push_issue_to_external, issue.pk)
    return entry


def _queue(result: ApplyResult, correlation_id: str) -> None:
    if not result.push or result.issue_id is None:
        return
    issue = Issue.objects.select_for_update().get(pk=result.issue_id)
    outbox_push_enqueue(
        issue=issue,
        fields=result.push,
        operation=result.push_operation,
        correlation_id=correlation_id,
        from_merge=result.push_operation == OutboxOperation.UPDATE,
    )
    refresh_sync_status(issue)


def remote_batch_apply(
    *, connection: Connection, states: Sequence[RemoteState]
) -> list[ApplyResult]:
    """`issues.engine.apply_remote_batch`, and the pushes it asks for, in one transaction:
    every remote state of the connection's issues enters the mirror here."""
    with transaction.atomic(savepoint=False):
        results = apply_remote_batch(connection=connection, states=states)
        for state, result in zip(states, results, strict=True):
            _queue(result, state.correlation_id)
    return results


def remote_issue_apply(
    *,
    connection: Connection,
    remote: RemoteIssue,
    trigger: str,
    correlation_id: str = "",
    acknowledged: Mapping[str, int] | None = None,
    fetched_at: datetime | None = None,
) -> ApplyResult:
    """One remote state: a batch of one."""
    state = RemoteState(remote, trigger, correlation_id, acknowledged, fetched_at)
    return remote_batch_apply(connection=connection, states=[state])[0]


def remote_deletion_apply(
    *,
    connection: Connection,
    external_id: str,
    trigger: str,
    correlation_id: str = "",
    deleted_at: datetime | None = None,
) -> ApplyResult:
    """`issues.engine.apply_remote_deletion`, and the re-create it may ask for."""
    with transaction.atomic():
        result = apply_remote_deletion(
            connection=connection,
            external_id=external_id,
            trigger=trigger,
            correlation_id=correlation_id,
            deleted_at=deleted_at,
        )
        _queue(result, correlation_id)
    return result
