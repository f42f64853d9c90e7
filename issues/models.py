"""The issue mirror and everything the sync engine records about it."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.db.models import Q

from integrations.models import Connection
from integrations.providers import base as vocabulary
from issues.web_urls import WebUrlField


class IssueState(models.TextChoices):
    # Values from the one definition (integrations.providers.base.IssueState); Django adds labels.
    OPEN = vocabulary.IssueState.OPEN.value, "Open"
    CLOSED = vocabulary.IssueState.CLOSED.value, "Closed"


class SyncStatus(models.TextChoices):
    SYNCED = "synced", "Synced"
    PENDING = "pending", "Pending push"
    CONFLICT = "conflict", "Conflict"
    ERROR = "error", "Error"


class Issue(models.Model):
    """One mirrored issue: canonical fields, where it lives remotely, and its merge base.

    `base` is the last state both sides agreed on (the three-way merge's common ancestor);
    `versions` holds per-field version vectors so that "follows" can be told from
    "concurrent". Comments will hang off this model by foreign key.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="issues")
    # Null until a locally created issue has been created in the tracker.
    external_id = models.CharField(max_length=100, null=True, blank=True)  # noqa: DJ001 - NULL is "not created yet", outside the unique constraint
    external_number = models.CharField(max_length=100, blank=True, default="")
    remote_url = WebUrlField(max_length=1000, blank=True, default="")  # http/https only

    title = models.CharField(max_length=1000)
    body = models.TextField(blank=True, default="")
    state = models.CharField(max_length=10, choices=IssueState.choices, default=IssueState.OPEN)
    labels = models.JSONField(default=list, blank=True)  # sorted names
    assignees = models.JSONField(default=list, blank=True)  # sorted logins
    milestone = models.CharField(max_length=300, null=True, blank=True)  # noqa: DJ001 - None = no milestone, as the API shows it

    base = models.JSONField(null=True, blank=True)
    versions = models.JSONField(default=dict, blank=True)
    sync_status = models.CharField(
        max_length=10, choices=SyncStatus.choices, default=SyncStatus.SYNCED
    )
    sync_error = models.TextField(blank=True, default="")
    # The tracker's own status name (`open`, `opened`, `In Progress`), read-only (SPEC §3).
    tracker_status = models.CharField(max_length=200, blank=True, default="")

    remote_created_at = models.DateTimeField(null=True, blank=True)
    remote_updated_at = models.DateTimeField(null=True, blank=True)
    # Set when the tracker no longer has the issue (and the delete policy kept it).
    remote_deleted_at = models.DateTimeField(null=True, blank=True)
    # The digest of the last remote state applied (issues.canonical.remote_state_hash): a
    # reconciliation skips a listed issue whose digest is this one without locking its row.
    remote_hash = models.CharField(max_length=32, blank=True, default="", editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-updated_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "external_id"],
                condition=Q(external_id__isnull=False),
                name="issue_unique_external_id",
            )
        ]
        indexes = [
            models.Index(fields=["connection", "updated_at"], name="issue_conn_updated"),
            models.Index(fields=["connection", "remote_updated_at"], name="issue_conn_remote_upd"),
            models.Index(fields=["sync_status"], name="issue_sync_status"),
            models.Index(fields=["state"], name="issue_state"),
        ]

    def __str__(self) -> str:
        number = f"#{self.external_number} " if self.external_number else ""
        return f"{number}{self.title}"

    def snapshot(self) -> dict[str, object]:
        """The canonical fields, as the merge and the audit log see them."""
        return {
            "title": self.title,
            "body": self.body,
            "state": self.state,
            "labels": sorted(self.labels),
            "assignees": sorted(self.assignees),
            "milestone": self.milestone,
        }


class RemoteTombstone(models.Model):
    """An issue the tracker told us it deleted.

    Webhooks arrive late, twice and out of order: an "edited" delivery processed after the
    "deleted" one (or an "opened" one after it) would otherwise find no mirror row and create
    the issue again. Only a listing or a read — the tracker saying *now* that it has the
    issue — lifts a tombstone.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="tombstones")
    external_id = models.CharField(max_length=100)
    deleted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "external_id"], name="tombstone_unique_external_id"
            )
        ]

    def __str__(self) -> str:
        return f"{self.connection_id}:{self.external_id} deleted {self.deleted_at:%Y-%m-%d}"


class Direction(models.TextChoices):
    INBOUND = "inbound", "Inbound"
    OUTBOUND = "outbound", "Outbound"


class Action(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"
    DELETE = "delete", "Delete"
    CLOSE = "close", "Close"
    REOPEN = "reopen", "Reopen"
    CONFLICT = "conflict", "Conflict"
    RESOLVE = "resolve", "Resolve"


class Trigger(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Poll"
    RECONCILE = "reconcile", "Reconcile"
    MANUAL = "manual", "Manual"
    API = "api", "API"


class SyncLog(models.Model):
    """One applied change, either way: the audit trail (SPEC §5 "Audit")."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_logs")
    issue = models.ForeignKey(
        Issue, null=True, blank=True, on_delete=models.SET_NULL, related_name="sync_logs"
    )
    provider = models.CharField(max_length=20)
    direction = models.CharField(max_length=10, choices=Direction.choices)
    action = models.CharField(max_length=10, choices=Action.choices)
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    correlation_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["issue", "created_at"], name="synclog_issue_created")]

    def __str__(self) -> str:
        return f"{self.direction} {self.action} issue={self.issue_id}"


class RunKind(models.TextChoices):
    WEBHOOK = "webhook", "Webhook"
    POLL = "poll", "Incremental poll"
    RECONCILE = "reconcile", "Full reconciliation"
    MANUAL = "manual", "Manual"


class SyncRun(models.Model):
    """One sync run with its counts and duration."""

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="sync_runs")
    kind = models.CharField(max_length=10, choices=RunKind.choices)
    full = models.BooleanField(default=False, help_text="A full reconciliation, not a poll.")
    started_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    success = models.BooleanField(null=True)
    error = models.TextField(blank=True, default="")
    seen = models.PositiveIntegerField(default=0)
    total = models.PositiveIntegerField(null=True, blank=True)  # for progress, when known
    created = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    deleted = models.PositiveIntegerField(default=0)
    conflicts = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    drift = models.PositiveIntegerField(default=0)
    requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]
        indexes = [models.Index(fields=["connection", "started_at"], name="syncrun_conn_started")]

    def __str__(self) -> str:
        return f"{self.kind} run of {self.connection_id} at {self.started_at:%Y-%m-%d %H:%M:%S}"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()


class OutboxStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_PROGRESS = "in_progress", "In progress"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class OutboxOperation(models.TextChoices):
    CREATE = "create", "Create"
    UPDATE = "update", "Update"


class OutboxEntry(models.Model):
    """A local change waiting to be written to the tracker, in the same transaction as the change.

    Pending rows of one issue are coalesced into one API call by the drain; `claimed_until`
    is the lease that returns a killed worker's rows to the pool.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="outbox")
    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="outbox")
    operation = models.CharField(max_length=10, choices=OutboxOperation.choices)
    changes = models.JSONField(default=dict)  # field → desired value
    status = models.CharField(
        max_length=12, choices=OutboxStatus.choices, default=OutboxStatus.PENDING
    )
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(db_index=False)
    claimed_until = models.DateTimeField(null=True, blank=True)
    claimed_by = models.CharField(max_length=100, blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    correlation_id = models.CharField(max_length=64, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name_plural = "outbox entries"
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="outbox_status_next"),
            models.Index(fields=["issue", "status"], name="outbox_issue_status"),
        ]

    def __str__(self) -> str:
        return f"{self.operation} issue={self.issue_id} ({self.status})"


class ConflictResolution(models.TextChoices):
    LOCAL_WINS = "local_wins", "Local wins"
    REMOTE_WINS = "remote_wins", "Remote wins"
    MERGE = "merge", "Merged value"


class Conflict(models.Model):
    """Both sides changed one field concurrently; a human picks (SPEC §5, policy `manual`)."""

    issue = models.ForeignKey(Issue, on_delete=models.CASCADE, related_name="conflicts")
    field = models.CharField(max_length=20)
    base_value = models.JSONField(null=True, blank=True)
    local_value = models.JSONField(null=True, blank=True)
    remote_value = models.JSONField(null=True, blank=True)
    detected_at = models.DateTimeField(auto_now_add=True)
    resolved = models.BooleanField(default=False)
    resolution = models.CharField(
        max_length=12, choices=ConflictResolution.choices, blank=True, default=""
    )
    resolved_value = models.JSONField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            # At most one open conflict per issue and field: a newer clash updates it.
            models.UniqueConstraint(
                fields=["issue", "field"], condition=Q(resolved=False), name="conflict_one_open"
            )
        ]
        indexes = [models.Index(fields=["resolved", "detected_at"], name="conflict_open_age")]

    def __str__(self) -> str:
        return f"{self.field} on issue {self.issue_id}"


def hash_token(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiToken(models.Model):
    """An API key for an agent. Only its SHA-256 is stored; the key is shown once at creation.

    A token sees and changes only the connections in `connections` (a scoped token), unless
    `all_connections` was chosen when it was created. The flag, never an empty list, makes a
    token unscoped: a scoped token whose connections were all deleted sees nothing.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    prefix = models.CharField(max_length=12, editable=False)
    connections = models.ManyToManyField(Connection, blank=True, related_name="api_tokens")
    all_connections = models.BooleanField(
        default=False,
        help_text="Unscoped: sees and changes every connection. Chosen when the token is "
        "created; a token scoped to connections never becomes unscoped by losing them.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.prefix}… ({self.user})"

    @classmethod
    def generate_key(cls) -> str:
        return "sx_" + secrets.token_urlsafe(32)


class IdempotencyRecord(models.Model):
    """A write sent with an `Idempotency-Key` header, so that a retried request is answered
    from here instead of changing anything twice.

    The row is claimed (committed, with no response yet) before the write runs, so a
    concurrent retry sees it. A key is bound to one API token and one request fingerprint (method,
    path, query and body), and lives for 24 hours.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="idempotency_records"
    )
    # The key belongs to the token that sent it: another token of the same user (perhaps
    # scoped to other connections) must never be answered from it.
    token = models.ForeignKey(
        "ApiToken",
        on_delete=models.CASCADE,
        related_name="idempotency_records",
        null=True,
        blank=True,
    )
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=2000)
    # Null while the first request with this key is still running.
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["token", "key"], name="idempotency_unique_token_key")
        ]

    def __str__(self) -> str:
        return f"{self.method} {self.path} key={self.key[:20]}"
