from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from integrations.models import Connection
from issues.schedules import connection_schedules_disable, connection_schedules_sync


@receiver(post_save, sender=Connection)
def _connection_saved(sender: type[Connection], instance: Connection, **kwargs: Any) -> None:
    connection_schedules_sync(connection=instance)


@receiver(post_delete, sender=Connection)
def _connection_deleted(sender: type[Connection], instance: Connection, **kwargs: Any) -> None:
    connection_schedules_disable(connection_id=instance.pk)
