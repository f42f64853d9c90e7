"""`make demo`: a simulated Gitea with seeded issues, connected and mirrored, so a newcomer
sees sync happen without any account anywhere.

The fake tracker lives in memory, so every start is a fresh repository: the demo connection's
mirror is reset to match before the first full sync. Nothing outside the demo connection
(named `DEMO_CONNECTION_NAME`) is touched.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db import transaction
from django.urls import reverse

from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection, WebhookDelivery
from issues.models import Issue, SyncLog, SyncRun, Trigger
from issues.polling import SyncAlreadyRunning, sync_connection

DEMO_CONNECTION_NAME = "Demo Gitea (simulated)"
DEMO_REPOSITORY = "demo/widgets"
DEMO_TOKEN = "demo-token"  # the simulated tracker's own credential, on loopback only
DEFAULT_FAKE_PORT = 3300
DEFAULT_ISSUES = 50


def default_fake_port() -> int:
    return int(os.environ.get("DEMO_GITEA_PORT") or DEFAULT_FAKE_PORT)


def _service_url_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-service-url"


def service_url_record(url: str) -> None:
    """Remembered by `make demo`, so `demo_conflict` run from another terminal (without the
    service's environment) names the port the service really listens on."""
    path = _service_url_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(url.rstrip("/") + "\n")


def default_service_url() -> str:
    """Where the service listens (the fake posts its webhooks there): $SYNDARIX_PORT, else
    what the running demo recorded, else the configured port."""
    port = os.environ.get("SYNDARIX_PORT")
    if port:
        return f"http://127.0.0.1:{port}"
    try:
        recorded = _service_url_file().read_text().strip()
    except OSError:
        recorded = ""
    return recorded or f"http://127.0.0.1:{settings.PORT}"


def start_fake(
    *, port: int, issues: int = DEFAULT_ISSUES, secret: str = "", host: str = "127.0.0.1"
) -> FakeGitea:
    """A FakeGitea on loopback, seeded with `issues` varied issues (labels, assignees,
    milestones, some closed), already serving."""
    fake = FakeGitea(
        repository=DEMO_REPOSITORY, token=DEMO_TOKEN, webhook_secret=secret, host=host, port=port
    )
    fake.known_labels.extend(["enhancement", "question"])
    fake.seed(issues)
    fake.start()
    return fake


@transaction.atomic
def connect(fake: FakeGitea, *, service_url: str, name: str = DEMO_CONNECTION_NAME) -> Connection:
    """Create or update the demo connection for `fake`, reset its mirror (the fake starts
    empty-handed each time), and point the fake's webhooks at the service."""
    connection, created = Connection.objects.select_for_update().get_or_create(
        name=name,
        defaults={"provider": "gitea", "base_url": fake.url, "repository": fake.repository},
    )
    if not created:
        Issue.objects.filter(connection=connection).delete()  # conflicts and outbox go too
        SyncLog.objects.filter(connection=connection).delete()
        SyncRun.objects.filter(connection=connection).delete()
        WebhookDelivery.objects.filter(connection=connection).delete()
    connection.provider = "gitea"
    connection.base_url = fake.url
    connection.repository = fake.repository
    connection.api_token = fake.token
    connection.webhook_secret = fake.webhook_secret
    connection.enabled = True
    connection.poll_cursor = None
    connection.poll_etag = ""
    connection.last_polled_at = None
    connection.last_full_sync_at = None
    connection.last_webhook_at = None
    connection.webhook_healthy = True
    connection.webhook_unhealthy_since = None
    connection.sync_lock_until = None
    connection.save()
    path = reverse(
        "webhook-connection", kwargs={"provider": "gitea", "connection_id": connection.pk}
    )
    fake.webhook_url = service_url.rstrip("/") + path
    return connection


def initial_sync(connection: Connection, *, wait_seconds: float = 60.0) -> SyncRun:
    """A full sync now, waiting for a run the scheduler may have started meanwhile."""
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            return sync_connection(connection_id=connection.pk, full=True, trigger=Trigger.MANUAL)
        except SyncAlreadyRunning:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


@dataclass(frozen=True)
class DemoInfo:
    fake: FakeGitea
    connection: Connection
    run: SyncRun
    service_url: str

    def instructions(self) -> str:
        fake, connection, run, service = self.fake, self.connection, self.run, self.service_url
        mirrored = Issue.objects.filter(connection=connection).count()
        api = f"{fake.url}/api/v1/repos/{fake.repository}"
        first = Issue.objects.filter(connection=connection).order_by("pk").first()
        number = first.external_number if first else "1"
        local_id = first.pk if first else 1
        admin_user = os.environ.get("ADMIN_USERNAME") or "admin"
        status = "succeeded" if run.success else f"FAILED: {run.error}"
        return f"""
================================ Syndarix Sync demo ================================
Simulated Gitea  {fake.url}  (repository {fake.repository}, API token {fake.token})
Connection       "{connection.name}" (id {connection.pk}); webhooks go to
                 {fake.webhook_url}
Full sync        {status}: {mirrored} issues mirrored in {run.duration_seconds or 0:.1f} s

What to try:
 1. Sign in at {service}/admin/ as "{admin_user}" (password: ADMIN_PASSWORD, or the one
    printed above by ensure_admin). The home page shows each connection's health.
 2. Browse the mirror: {service}/admin/issues/issue/?connection__id__exact={connection.pk}
 3. Change an issue in the tracker, as a person would; its webhook updates the mirror
    within a second:
      curl -X PATCH -H 'Authorization: token {fake.token}' -H 'Content-Type: application/json' \\
           -d '{{"title": "Renamed in Gitea"}}' {api}/issues/{number}
 4. Change it here through the REST API; the outbox pushes it to the tracker:
      TOKEN=$(.venv/bin/python manage.py create_api_token demo | tail -n 1)
      curl -X PATCH -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \\
           -d '{{"state": "closed"}}' {service}/api/v1/issues/{local_id}/
      curl -H 'Authorization: token {fake.token}' {api}/issues/{number}
 5. Make a conflict (both sides edit one issue at the same moment), then resolve it at
    {service}/admin/issues/conflict/ :
      .venv/bin/python manage.py demo_conflict
 6. On the connection's page: "Test connection", "Sync now", "Full resync" (with progress).
Ctrl-C stops everything. The simulated Gitea starts afresh on the next `make demo`.
====================================================================================
"""


def run_demo(*, fake_port: int, service_url: str, issues: int = DEFAULT_ISSUES) -> DemoInfo:
    fake = start_fake(port=fake_port, issues=issues, secret=secrets.token_hex(16))
    try:
        connection = connect(fake, service_url=service_url)
        run = initial_sync(connection)
    except BaseException:
        fake.stop()
        raise
    return DemoInfo(fake=fake, connection=connection, run=run, service_url=service_url)
