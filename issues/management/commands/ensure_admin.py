from __future__ import annotations

import os
import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Ensure the superuser $ADMIN_USERNAME exists. Outside production a generated password "
        "is printed once; in production ADMIN_PASSWORD is required, else no admin is created."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("ADMIN_USERNAME") or "admin"
        password = os.environ.get("ADMIN_PASSWORD") or ""
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first()
        if user is None:
            if not password and settings.PRODUCTION:
                # A generated password printed to stdout ends up in container logs.
                self.stderr.write(
                    f"No admin created: set ADMIN_PASSWORD to create {username} "
                    "(DJANGO_ENV=production never generates or prints a password)."
                )
                return
            generated = not password
            password = password or secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username=username, email="", password=password)
            shown = password if generated else "(from ADMIN_PASSWORD)"
            self.stdout.write(f"Admin login: {username} / {shown}")
            return
        if password and not user.check_password(password):
            user.set_password(password)
            user.save(update_fields=["password"])
            self.stdout.write(f"Admin {username}: password set from ADMIN_PASSWORD")
            return
        self.stdout.write(f"Admin {username} exists (password unchanged)")
