"""Tracker connections and the webhook deliveries they receive."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse

from integrations import providers
from integrations.crypto import EncryptedTextField
from integrations.providers import PROVIDER_CHOICES
from integrations.providers import base as policies


class Direction(models.TextChoices):
    BIDIRECTIONAL = "bidirectional", "Both ways"
    INBOUND = "inbound", "Inbound only (mirror)"
    OUTBOUND = "outbound", "Outbound only"


# Values from the one definition (integrations.providers.base, pure: the merge uses it too);
# Django adds the labels.
class ConflictPolicy(models.TextChoices):
    MANUAL = policies.ConflictPolicy.MANUAL.value, "Manual (record a conflict)"
    LAST_WRITER_WINS = policies.ConflictPolicy.LAST_WRITER_WINS.value, "Last writer wins"
    REMOTE_WINS = policies.ConflictPolicy.REMOTE_WINS.value, "Remote wins"
    LOCAL_WINS = policies.ConflictPolicy.LOCAL_WINS.value, "Local wins"


class DeletePolicy(models.TextChoices):
    DELETE_WINS = policies.DeletePolicy.DELETE_WINS.value, "Delete wins"
    UPDATE_WINS = policies.DeletePolicy.UPDATE_WINS.value, "Update wins"


class StateFilter(models.TextChoices):
    ALL = "all", "All issues"
    OPEN = "open", "Open issues only"
    CLOSED = "closed", "Closed issues only"


class Connection(models.Model):
    """One repository/project in one tracker, with how and how often to sync it."""

    name = models.CharField(max_length=200, unique=True)
    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    base_url = models.URLField(
        max_length=500,
        help_text="Web root for Gitea/GitLab (https://git.example.com); API root for GitHub "
        "(https://api.github.com or https://HOST/api/v3).",
    )
    repository = models.CharField(
        max_length=300,
        help_text="owner/name (Gitea, GitHub); group/sub/name or numeric id (GitLab); "
        "project key (Jira); board id (Trello); project identifier (OpenProject).",
    )
    api_token = EncryptedTextField(blank=True, default="")
    webhook_secret = EncryptedTextField(blank=True, default="")
    direction = models.CharField(
        max_length=20, choices=Direction.choices, default=Direction.BIDIRECTIONAL
    )
    conflict_policy = models.CharField(
        max_length=20, choices=ConflictPolicy.choices, default=ConflictPolicy.MANUAL
    )
    delete_policy = models.CharField(
        max_length=20, choices=DeletePolicy.choices, default=DeletePolicy.DELETE_WINS
    )
    create_remote = models.BooleanField(
        default=True, help_text="Create issues in the tracker when an agent creates one here."
    )
    allow_create_labels = models.BooleanField(
        default=False, help_text="Create labels in the tracker when a pushed label is missing."
    )
    label_filter = models.JSONField(
        default=list, blank=True, help_text="Only sync issues carrying one of these labels."
    )
    milestone_filter = models.JSONField(
        default=list, blank=True, help_text="Only sync issues in one of these milestones."
    )
    state_filter = models.CharField(
        max_length=10, choices=StateFilter.choices, default=StateFilter.ALL
    )
    # The provider's own options (SPEC §6), checked against its `config_options` on write.
    config_json = models.JSONField(default=dict, blank=True)
    poll_interval_seconds = models.PositiveIntegerField(default=300)
    full_sync_interval_seconds = models.PositiveIntegerField(default=86_400)
    enabled = models.BooleanField(default=True)
    notify_emails = models.TextField(
        blank=True,
        default="",
        db_default="",  # rows written by code that predates the field get no addresses
        verbose_name="notification addresses",
        help_text="E-mail addresses told when a conflict opens (one message per minute at "
        "most); comma or newline separated.",
    )

    # Polling state: the cursor is the start time of the last successful run.
    poll_cursor = models.DateTimeField(null=True, blank=True)
    poll_etag = models.CharField(max_length=200, blank=True, default="")
    last_polled_at = models.DateTimeField(null=True, blank=True)
    last_full_sync_at = models.DateTimeField(null=True, blank=True)

    # Webhook health (SPEC §5): unhealthy when polling finds changes no webhook brought.
    last_webhook_at = models.DateTimeField(null=True, blank=True)
    webhook_healthy = models.BooleanField(default=True)
    webhook_unhealthy_since = models.DateTimeField(null=True, blank=True)

    # Set when the tracker rate-limits us (from Retry-After or the reset header): until then
    # scheduled polls skip the connection and the outbox leaves its rows alone, instead of
    # spending a refused request each.
    rate_limited_until = models.DateTimeField(null=True, blank=True)

    # A lease, claimed with a conditional UPDATE, so two sync runs never overlap on one
    # connection whichever worker or process they run in.
    sync_lock_until = models.DateTimeField(null=True, blank=True)

    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        indexes = [models.Index(fields=["provider", "repository"], name="conn_provider_repo")]

    def __str__(self) -> str:
        return f"{self.name} ({self.get_provider_display()} {self.repository})"

    @property
    def receives_webhooks(self) -> bool:
        """False for a tracker without webhooks (Redmine): its connection is polled only."""
        if not providers.is_supported(self.provider):
            return True
        return providers.client_class(self.provider).capabilities.webhooks

    @property
    def webhook_url(self) -> str:
        """Where the tracker posts its webhooks; "" for a tracker that has none."""
        if not self.receives_webhooks:
            return ""
        path = reverse(
            "webhook-connection", kwargs={"provider": self.provider, "connection_id": self.pk}
        )
        return f"{settings.PUBLIC_URL}{path}"

    @property
    def allows_inbound(self) -> bool:
        return self.direction in (Direction.BIDIRECTIONAL, Direction.INBOUND)

    @property
    def allows_outbound(self) -> bool:
        return self.direction in (Direction.BIDIRECTIONAL, Direction.OUTBOUND)


class DeliveryStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSING = "processing", "Processing"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored"
    FAILED = "failed", "Failed"


class WebhookDelivery(models.Model):
    """A verified webhook, stored before it is acknowledged, so nothing answered 2xx is lost."""

    provider = models.CharField(max_length=20, choices=PROVIDER_CHOICES)
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    delivery_id = models.CharField(max_length=200)
    event = models.CharField(max_length=100)
    headers = models.JSONField(default=dict, blank=True)
    body = models.BinaryField()
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(
        max_length=20, choices=DeliveryStatus.choices, default=DeliveryStatus.RECEIVED
    )
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    correlation_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-received_at"]
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.UniqueConstraint(fields=["provider", "delivery_id"], name="delivery_unique_id")
        ]
        indexes = [models.Index(fields=["status", "received_at"], name="delivery_status_recv")]

    def __str__(self) -> str:
        return f"{self.provider} {self.event} {self.delivery_id}"
