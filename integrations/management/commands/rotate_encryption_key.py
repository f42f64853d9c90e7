from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from integrations import crypto
from integrations.models import Connection

ENCRYPTED_COLUMNS = ("api_token", "webhook_secret")


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored token and secret with FIELD_ENCRYPTION_KEY. Run it with the "
        "previous key in FIELD_ENCRYPTION_OLD_KEYS; afterwards the old key can be dropped."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        table = connection.ops.quote_name(Connection._meta.db_table)
        rotated = 0
        with transaction.atomic(), connection.cursor() as cursor:
            # Raw SQL: the field class would decrypt on read, and we must rotate the ciphertext.
            cursor.execute(f"SELECT id, api_token, webhook_secret FROM {table}")  # noqa: S608
            for row_id, *values in cursor.fetchall():
                updates = [crypto.rotate(v) if v else "" for v in values]
                cursor.execute(
                    f"UPDATE {table} SET api_token = %s, webhook_secret = %s WHERE id = %s",  # noqa: S608
                    [*updates, row_id],
                )
                rotated += 1
        self.stdout.write(f"re-encrypted the secrets of {rotated} connection(s)")
