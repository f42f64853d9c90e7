"""Writing many rows of one model in one statement.

Django's `bulk_update` builds one `CASE WHEN id = … THEN …` per field over all the rows, which
PostgreSQL evaluates for every row: the work grows with the square of the batch. And both it
and `bulk_create` pass every value as its own parameter, which the driver quotes one by one
into the statement's text — the larger part of a batch's time on our side.

On PostgreSQL the rows go instead as one JSON document, one parameter, that the statement
unpacks with `jsonb_to_recordset` into typed columns: an UPDATE joined on the primary key, or
an INSERT … SELECT that returns the new ids. Elsewhere (SQLite) Django's own bulk methods.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from django.db import connections, models, router


def _columns(model: type[models.Model], names: Sequence[str]) -> list[models.Field[Any, Any]]:
    columns: list[models.Field[Any, Any]] = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field) and field.concrete, f"{name} is not a column"
        columns.append(field)
    return columns


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()  # every digit: Django's JSON encoder cuts microseconds
    raise TypeError(f"{type(value).__name__} is not JSON: {value!r}")


def _document(
    rows: Sequence[models.Model], columns: list[models.Field[Any, Any]], *, add: bool
) -> str:
    """The rows as one JSON array of objects, each value as its column stores it."""
    records = [
        {
            str(column.column): column.get_prep_value(
                column.pre_save(row, add) if add else getattr(row, column.attname)
            )
            for column in columns
        }
        for row in rows
    ]
    return json.dumps(records, default=_json_value, ensure_ascii=False, separators=(",", ":"))


def _recordset(db: Any, columns: list[models.Field[Any, Any]]) -> str:
    quote = db.ops.quote_name
    typed = ", ".join(f"{quote(str(c.column))} {c.db_type(db)}" for c in columns)
    return f"jsonb_to_recordset(%s::jsonb) AS v({typed})"


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
    pk: models.Field[Any, Any] = model._meta.pk
    columns = [pk, *_columns(model, fields)]
    quote = db.ops.quote_name
    names = [quote(str(c.column)) for c in columns]
    assignments = ", ".join(f"{name} = v.{name}" for name in names[1:])
    # Only our model's table and column names are interpolated; the rows are one parameter.
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {assignments} "  # noqa: S608
        f"FROM {_recordset(db, columns)} WHERE t.{names[0]} = v.{names[0]}"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, [_document(rows, columns, add=False)])


def insert_rows(rows: Sequence[models.Model]) -> None:
    """Insert new instances of one model (every concrete column but the primary key, with
    their `auto_now_add` defaults); their primary keys are set. No signals."""
    if not rows:
        return
    model = type(rows[0])
    db = connections[router.db_for_write(model)]
    if db.vendor != "postgresql":
        model._default_manager.bulk_create(rows)
        return
    meta = model._meta
    columns = [f for f in meta.concrete_fields if not f.primary_key]
    quote = db.ops.quote_name
    names = ", ".join(quote(str(c.column)) for c in columns)
    pk = quote(str(meta.pk.column))
    # The rows come out of the recordset, and their ids back, in the order given (as they
    # do for Django's own multi-row INSERT … RETURNING).
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({names}) "  # noqa: S608
        f"SELECT {names} FROM {_recordset(db, columns)} RETURNING {pk}"
    )
    with db.cursor() as cursor:
        cursor.execute(sql, [_document(rows, columns, add=True)])
        ids = [row[0] for row in cursor.fetchall()]
    for row, pk_value in zip(rows, ids, strict=True):
        row.pk = pk_value
        row._state.adding = False
        row._state.db = db.alias
