from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.urls import reverse

from integrations.models import Connection
from integrations.providers.base import IssueFields, ProviderError
from integrations.providers.registry import client_for
from issues.demo import DEMO_CONNECTION_NAME, default_service_url
from issues.models import Conflict, Issue, IssueState, SyncStatus, Trigger
from issues.services.issues import IssueServiceError, issue_update


class Command(BaseCommand):
    help = (
        "Edit one issue on both sides at the same moment — here through the service, in the "
        "tracker through its HTTP API — so that a conflict appears in the admin to resolve."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--connection",
            default=DEMO_CONNECTION_NAME,
            help=f"connection name (default {DEMO_CONNECTION_NAME!r})",
        )
        parser.add_argument(
            "--issue",
            default="",
            help="the issue's number in the tracker (default: the first open, synced issue)",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=15.0,
            help="seconds to wait for the conflict to be recorded (0: don't)",
        )
        parser.add_argument("--service-url", default=default_service_url())

    def handle(self, *args: Any, **options: Any) -> None:
        connection = Connection.objects.filter(name=options["connection"]).first()
        if connection is None:
            raise CommandError(
                f"no connection named {options['connection']!r}: is `make demo` running?"
            )
        issue = self._issue(connection, options["issue"])
        local = {
            "title": f"{issue.title} (edited here)",
            "body": f"{issue.body}\n\nSteps to reproduce, added locally.".lstrip(),
        }
        remote = {
            "title": f"{issue.title} (edited in Gitea)",
            "body": f"{issue.body}\n\nWorkaround, added in the tracker.".lstrip(),
        }
        client = client_for(connection)
        try:
            # Both edits inside one transaction: the tracker's webhook (or our push reading the
            # tracker first) can only be applied after the local edit is committed, and the
            # local edit was made without seeing the tracker's — they are concurrent.
            with transaction.atomic():
                issue_update(issue=issue, changes=local, trigger=Trigger.MANUAL)
                client.update_issue(
                    issue.external_number, IssueFields(title=remote["title"], body=remote["body"])
                )
        except ProviderError as exc:
            raise CommandError(f"the tracker refused the edit: {exc}") from exc
        except IssueServiceError as exc:
            raise CommandError(f"issue #{issue.external_number} cannot be edited: {exc}") from exc
        finally:
            client.close()
        self.stdout.write(
            f"Issue #{issue.external_number}: the title and the description were changed here "
            f"({local['title']!r}) and in the tracker ({remote['title']!r}) at the same moment."
        )
        conflict = self._wait(issue, options["wait"])
        service = options["service_url"].rstrip("/")
        if conflict is None:
            self.stdout.write(
                "The conflict appears as soon as the worker applies the tracker's webhook: "
                f"{service}{reverse('admin:issues_conflict_changelist')}"
            )
            return
        resolve = reverse("admin:issues_conflict_resolve", args=[conflict.pk])
        self.stdout.write(f"Conflict recorded. Resolve it at {service}{resolve}")

    @staticmethod
    def _issue(connection: Connection, number: str) -> Issue:
        issues = Issue.objects.filter(connection=connection, external_id__isnull=False)
        if number:
            found = issues.filter(external_number=str(number)).first()
            if found is None:
                raise CommandError(f"issue #{number} is not mirrored in {connection.name}")
            return found
        candidates = issues.filter(state=IssueState.OPEN, sync_status=SyncStatus.SYNCED)
        found = min(candidates, key=lambda i: int(i.external_number or 0), default=None)
        if found is None:
            raise CommandError(f"{connection.name} has no open, synced issue to edit")
        return found

    @staticmethod
    def _wait(issue: Issue, seconds: float) -> Conflict | None:
        deadline = time.monotonic() + seconds
        while True:
            conflict = Conflict.objects.filter(issue=issue, resolved=False).order_by("id").first()
            if conflict is not None or time.monotonic() >= deadline:
                return conflict
            time.sleep(0.25)
