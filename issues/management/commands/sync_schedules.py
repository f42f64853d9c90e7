from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from integrations.models import Connection
from issues.schedules import connection_schedules_sync, global_schedules_sync


class Command(BaseCommand):
    help = "Register (update_or_create) the periodic tasks in django-celery-beat."

    def handle(self, *args: Any, **options: Any) -> None:
        global_schedules_sync()
        count = 0
        for connection in Connection.objects.all():
            connection_schedules_sync(connection=connection)
            count += 1
        self.stdout.write(f"schedules registered: global tasks and {count} connection(s)")
