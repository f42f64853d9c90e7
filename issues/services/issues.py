"""The one write path for local changes (agents, admin, conflict resolution).

Each service changes the mirror and writes its outbox row in ONE transaction, so a change is
either both recorded and queued for the tracker, or neither. The push runs after commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, User
from django.db import transaction
from django.utils import timezone

from integrations.models import Connection
from issues.canonical import FIELDS, changed_fields, normalise, normalise_value
from issues.engine import Versions, action_for, log_change, refresh_sync_status
from issues.models import (
    Action,
    Conflict,
    ConflictResolution,
    Direction,
    Issue,
    IssueState,
    OutboxOperation,
    SyncStatus,
    Trigger,
)
from issues.services.sync import outbox_push_enqueue


class IssueServiceError(Exception):
    """A local change that cannot be made; the message says why."""


class IssueInConflictError(IssueServiceError):
    def __init__(self, fields: Iterable[str]) -> None:
        self.fields = sorted(fields)
        super().__init__(f"open conflict on {', '.join(self.fields)}: resolve it or force")


class ReadOnlyConnectionError(IssueServiceError):
    pass


def _validate(values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise IssueServiceError(f"unknown field(s): {', '.join(sorted(unknown))}")
    if "state" in values and values["state"] not in IssueState.values:
        raise IssueServiceError("state must be 'open' or 'closed'")
    if "title" in values and not str(values["title"] or "").strip():
        raise IssueServiceError("title must not be empty")
    return {field: normalise_value(field, value) for field, value in values.items()}


@transaction.atomic
def issue_create(
    *,
    connection: Connection,
    title: str,
    body: str = "",
    state: str = IssueState.OPEN,
    labels: Iterable[str] = (),
    assignees: Iterable[str] = (),
    milestone: str | None = None,
    trigger: str = Trigger.API,
    correlation_id: str = "",
) -> Issue:
    if not connection.allows_outbound:
        raise ReadOnlyConnectionError(f"connection {connection.name!r} is inbound only")
    values = _validate(
        {
            "title": title,
            "body": body,
            "state": state,
            "labels": labels,
            "assignees": assignees,
            "milestone": milestone,
        }
    )
    issue = Issue(connection=connection, base=None)
    for field, value in values.items():
        setattr(issue, field, value)
    versions = Versions(None)
    for field in FIELDS:
        versions.bump_local(field)
    issue.versions = versions.as_json()
    issue.sync_status = SyncStatus.PENDING if connection.create_remote else SyncStatus.SYNCED
    issue.save()
    log_change(
        issue=issue,
        connection=connection,
        direction=Direction.OUTBOUND,
        action=Action.CREATE,
        trigger=trigger,
        before=None,
        after=issue.snapshot(),
        correlation_id=correlation_id,
    )
    if connection.create_remote:
        outbox_push_enqueue(
            issue=issue,
            fields=issue.snapshot(),
            operation=OutboxOperation.CREATE,
            correlation_id=correlation_id,
        )
    return issue


@transaction.atomic
def issue_update(
    *,
    issue: Issue,
    changes: Mapping[str, Any],
    trigger: str = Trigger.API,
    correlation_id: str = "",
    force: bool = False,
) -> Issue:
    """Change fields locally and queue the push. An edit made while a field is in conflict
    is an edit made after seeing the remote value (the mirror shows it): with `force` it
    settles the conflict in favour of the new value."""
    issue = Issue.objects.select_for_update().select_related("connection").get(pk=issue.pk)
    connection = issue.connection
    if not connection.allows_outbound:
        raise ReadOnlyConnectionError(f"connection {connection.name!r} is inbound only")
    wanted = _validate(changes)
    before = issue.snapshot()
    diff = changed_fields(before, wanted)
    open_conflicts = {c.field: c for c in issue.conflicts.filter(resolved=False)}
    # Sending back the value the mirror already shows is no change, and no clash either.
    clashing = set(diff) & set(open_conflicts)
    if clashing and not force:
        raise IssueInConflictError(clashing)
    blocked = set(wanted) & set(open_conflicts) if force else set()
    for field in blocked:
        conflict = open_conflicts[field]
        conflict.resolved = True
        conflict.resolution = ConflictResolution.MERGE
        conflict.resolved_value = wanted[field]
        conflict.resolved_at = timezone.now()
        conflict.save()
        diff.setdefault(field, wanted[field])  # push it even if it equals the remote value
    if not diff:
        return issue
    versions = Versions(issue.versions)
    for field in diff:
        versions.bump_local(field)
        setattr(issue, field, diff[field])
    issue.versions = versions.as_json()
    issue.save()
    after = issue.snapshot()
    log_change(
        issue=issue,
        connection=connection,
        direction=Direction.OUTBOUND,
        action=action_for(before, after),
        trigger=trigger,
        before=before,
        after=after,
        correlation_id=correlation_id,
    )
    # A not-yet-created issue needs no update row: its create sends the latest values.
    if issue.external_id is not None:
        outbox_push_enqueue(
            issue=issue, fields={f: after[f] for f in diff}, correlation_id=correlation_id
        )
    refresh_sync_status(issue)
    return issue


def issue_close(*, issue: Issue, trigger: str = Trigger.API, correlation_id: str = "") -> Issue:
    return issue_update(
        issue=issue,
        changes={"state": IssueState.CLOSED},
        trigger=trigger,
        correlation_id=correlation_id,
    )


def issue_reopen(*, issue: Issue, trigger: str = Trigger.API, correlation_id: str = "") -> Issue:
    return issue_update(
        issue=issue,
        changes={"state": IssueState.OPEN},
        trigger=trigger,
        correlation_id=correlation_id,
    )


@transaction.atomic
def conflict_resolve(
    *,
    conflict: Conflict,
    strategy: str,
    value: Any = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    correlation_id: str = "",
) -> Conflict:
    """Settle one conflict: keep the remote value, take the local one, or a merged value.
    Local and merged values are pushed through the outbox like any local edit."""
    conflict = Conflict.objects.select_for_update().select_related("issue").get(pk=conflict.pk)
    if conflict.resolved:
        raise IssueServiceError(f"conflict {conflict.pk} is already resolved")
    issue = Issue.objects.select_for_update().select_related("connection").get(pk=conflict.issue_id)
    field = conflict.field
    if strategy == ConflictResolution.REMOTE_WINS:
        chosen = conflict.remote_value
    elif strategy == ConflictResolution.LOCAL_WINS:
        chosen = conflict.local_value
    elif strategy == ConflictResolution.MERGE:
        chosen = _validate({field: value})[field]
    else:
        raise IssueServiceError("strategy must be local_wins, remote_wins or merge")
    chosen = normalise_value(field, chosen)
    before = issue.snapshot()
    versions = Versions(issue.versions)
    base = normalise(issue.base) if issue.base else normalise(before)
    remote_value = normalise_value(field, conflict.remote_value)
    # The human saw both values: the decision causally follows the remote change.
    base[field] = remote_value
    issue.base = base
    if chosen != remote_value:
        versions.bump_local(field)
    setattr(issue, field, chosen)
    issue.versions = versions.as_json()
    issue.save()
    conflict.resolved = True
    conflict.resolution = strategy
    conflict.resolved_value = chosen
    conflict.resolved_at = timezone.now()
    conflict.resolved_by = user if isinstance(user, User) else None
    conflict.save()
    log_change(
        issue=issue,
        connection=issue.connection,
        direction=Direction.OUTBOUND,
        action=Action.RESOLVE,
        trigger=Trigger.MANUAL,
        before=before,
        after=issue.snapshot(),
        correlation_id=correlation_id,
    )
    if chosen != remote_value and issue.external_id is not None:
        outbox_push_enqueue(issue=issue, fields={field: chosen}, correlation_id=correlation_id)
    refresh_sync_status(issue)
    return conflict
