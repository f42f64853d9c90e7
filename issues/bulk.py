"""Writing many rows of one model in one statement.

Django's `bulk_update` builds one `CASE WHEN id = … THEN …` per field over all the rows, which
PostgreSQL evaluates for every row: the work grows with the square of the batch. On
PostgreSQL the rows go in one `UPDATE … FROM (VALUES …)` instead, a join on the primary key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import connections, models, router

# Rows per statement: far below PostgreSQL's 65,535 parameters for the widest model here.
CHUNK = 500


def update_rows(rows: Sequence[models.Model], fields: Sequence[str]) -> None:
    """Write `fields` of `rows` (saved instances of one model), as they are in memory.

    No signals, no `auto_now`: the caller sets what must change (`updated_at` included).
    """
    if not rows:
        return
    model = type(rows[0])
    db = connections[router.db_for_write(model)]
    if db.vendor != "postgresql":
        model._default_manager.bulk_update(rows, fields, batch_size=100)
        return
    meta = model._meta
    columns: list[models.Field[Any, Any]] = [meta.pk]
    for name in fields:
        field = meta.get_field(name)
        assert isinstance(field, models.Field), f"{name} is not a column"
        columns.append(field)
    quote = db.ops.quote_name
    names = [quote(str(column.column)) for column in columns]
    # Each value cast to its column's type: VALUES has no column types of its own.
    row_sql = "(" + ", ".join(f"%s::{column.db_type(db)}" for column in columns) + ")"
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        params: list[Any] = []
        for row in chunk:
            params += [c.get_db_prep_save(getattr(row, c.attname), db) for c in columns]
        # Only our model's table and column names are interpolated; every value is a parameter.
        sql = (
            f"UPDATE {quote(meta.db_table)} AS t SET {assignments} "  # noqa: S608
            f"FROM (VALUES {', '.join([row_sql] * len(chunk))}) AS v({', '.join(names)}) "
            f"WHERE t.{names[0]} = v.{names[0]}"
        )
        with db.cursor() as cursor:
            cursor.execute(sql, params)
