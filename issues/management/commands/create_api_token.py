from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from integrations.models import Connection
from issues.services.tokens import api_token_create


class Command(BaseCommand):
    help = (
        "Create an API token for USERNAME (creating the user if needed); prints the key last. "
        "Scoped to --connection ids, or unscoped (every connection) with --all-connections; "
        "without either the token is unscoped, as it always was for this command."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="", help="A label to recognise the token by.")
        parser.add_argument(
            "--connection",
            type=int,
            action="append",
            default=[],
            help="Scope the token to this connection id (repeatable).",
        )
        parser.add_argument(
            "--all-connections",
            action="store_true",
            help="An unscoped token: it sees and changes every connection, present and future.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        connection_ids: list[int] = options["connection"]
        if connection_ids and options["all_connections"]:
            raise CommandError("Give --connection or --all-connections, not both.")
        missing = sorted(
            set(connection_ids)
            - set(Connection.objects.filter(pk__in=connection_ids).values_list("pk", flat=True))
        )
        if missing:
            raise CommandError(f"No connection with id {', '.join(map(str, missing))}.")
        user, created = get_user_model().objects.get_or_create(username=options["username"])
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stdout.write(f"created user {user.username}")
        # SPEC §6: `create_api_token USERNAME` alone keeps giving an unscoped token; the choice
        # is stored on the token (all_connections), so losing connections never widens a scope.
        unscoped = not connection_ids
        _token, key = api_token_create(
            user=user,
            name=options["name"],
            connection_ids=connection_ids,
            all_connections=unscoped,
        )
        if unscoped:
            self.stdout.write("scope: every connection (unscoped)")
        else:
            self.stdout.write(f"scope: connections {', '.join(map(str, connection_ids))}")
        self.stdout.write("token (shown once; store it now):")
        self.stdout.write(key)
