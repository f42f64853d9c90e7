from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser

from issues.services.tokens import api_token_create


class Command(BaseCommand):
    help = "Create an API token for USERNAME (creating the user if needed); prints the key last."

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

    def handle(self, *args: Any, **options: Any) -> None:
        user, created = get_user_model().objects.get_or_create(username=options["username"])
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
            self.stdout.write(f"created user {user.username}")
        _token, key = api_token_create(
            user=user, name=options["name"], connection_ids=options["connection"]
        )
        self.stdout.write("token (shown once; store it now):")
        self.stdout.write(key)
