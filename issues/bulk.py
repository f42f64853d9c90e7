"""Writing many rows of one model in one statement.

Django's `bulk_update` builds one `CASE WHEN id = … THEN …` per field over all the rows, which
PostgreSQL evaluates for every row: the work grows with the square of the batch. And both it
and `bulk_create` pass every value as its own parameter, which the driver quotes one by one
into the statement's text — on PostgreSQL `bulk_create` binds one array per column
(`INSERT … SELECT * FROM UNNEST(…)`) and psycopg escapes each JSON element in Python: on a
10,000-issue import that was most of the time spent inserting.

On PostgreSQL, updated rows go instead as one JSON document, one parameter, that the
statement unpacks with `jsonb_to_recordset` into typed columns (an UPDATE joined on the
primary key); new rows are streamed with `COPY` (its text format is escaped in psycopg's C
code), their keys drawn from the table's sequence first. Elsewhere (SQLite) Django's own
bulk methods.
"""

from __future__ import annotations

import datetime
import functools
import json
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connections, models, router
from django.db.backends.base.base import BaseDatabaseWrapper

M = TypeVar("M", bound=models.Model)


def _columns(model: type[models.Model], names: Sequence[str]) -> list[models.Field[Any, Any]]:
    columns: list[models.Field[Any, Any]] = []
    for name in names:
        field = model._meta.get_field(name)
        assert isinstance(field, models.Field) and field.concrete, f"{name} is not a column"
        columns.append(field)
    return columns


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime.datetime | datetime.date):
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


def insert_rows(model: type[M], rows: Sequence[M]) -> list[M]:
    """Insert new instances of `model`, as `model.objects.bulk_create(rows)` does: the
    primary keys are set on the instances, `auto_now`/`auto_now_add` stamped, the values
    prepared by their fields, and a constraint violation raises Django's `IntegrityError`
    (the transaction, or the savepoint around the call, is then to be rolled back).

    On PostgreSQL the keys are drawn from the table's sequence first (one query) and the rows
    sent by one `COPY`; elsewhere, or for what `COPY` cannot carry (an expression or a
    database default as a value, a model with parents), it is `bulk_create`.
    """
    rows = list(rows)
    if not rows:
        return rows
    db = connections[router.db_for_write(model)]
    meta = model._meta
    fields: list[models.Field[Any, Any]] = [
        f for f in meta.concrete_fields if not getattr(f, "generated", False)
    ]
    if db.vendor != "postgresql" or meta.parents:
        return model._default_manager.db_manager(db.alias).bulk_create(rows)
    pk = meta.pk
    assert pk is not None
    values = _row_values(rows, fields, pk, db)
    if values is None:  # an expression somewhere: SQL only bulk_create can write
        return model._default_manager.db_manager(db.alias).bulk_create(rows)
    quote = db.ops.quote_name
    columns = ", ".join(quote(str(f.column)) for f in fields)
    sql = f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN"

    def copy(sql: str, params: Any, many: bool, context: dict[str, Any]) -> None:
        with context["cursor"].copy(sql) as stream:
            for row in values:
                stream.write_row(row)

    with db.cursor() as cursor:
        executor: Callable[..., Any] = copy
        # Through the connection's execute wrappers, as Django runs a statement (counted,
        # instrumented); when queries are logged (DEBUG, tests), Django's cursor logs a COPY.
        for wrapper in reversed(db.execute_wrappers):
            executor = functools.partial(wrapper, executor)
        with db.wrap_database_errors:
            executor(sql, None, False, {"connection": db, "cursor": cursor})
    for row in rows:
        row._state.adding = False
        row._state.db = db.alias
    return rows


def assign_keys(*groups: Sequence[models.Model]) -> None:
    """Give the instances that have no primary key one from their table's sequence, as
    `insert_rows` does — for several groups (one model each) in one query, where inserting
    them one group after another would ask once per group.

    Only on PostgreSQL and for auto-incremented keys; elsewhere nothing is done (the insert
    gives the keys)."""
    parts: list[str] = []
    params: list[Any] = []
    wanting: list[list[models.Model]] = []
    db: BaseDatabaseWrapper | None = None
    for rows in groups:
        missing = [row for row in rows if row.pk is None]
        if not missing:
            continue
        meta = missing[0]._meta
        group_db = connections[router.db_for_write(type(missing[0]))]
        if group_db.vendor != "postgresql" or not isinstance(meta.pk, models.AutoField):
            continue
        assert db is None or db is group_db, "one database for all the groups"
        db = group_db
        parts.append(
            "SELECT %s::int, nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)"
        )
        params += [len(wanting), db.ops.quote_name(meta.db_table), meta.pk.column, len(missing)]
        wanting.append(missing)
    if db is None:
        return
    with db.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(parts), params)
        keys: list[list[int]] = [[] for _ in wanting]
        for group, key in cursor.fetchall():
            keys[group].append(key)
    for missing, drawn in zip(wanting, keys, strict=True):
        for row, key in zip(missing, sorted(drawn), strict=True):
            row.pk = key


def _row_values(
    rows: list[M],
    fields: list[models.Field[Any, Any]],
    pk: models.Field[Any, Any],
    db: BaseDatabaseWrapper,
) -> list[list[Any]] | None:
    """Each row's column values as its fields prepare them for the database (`None` if one
    is an expression). Rows without a primary key get one (`assign_keys`)."""
    if isinstance(pk, models.AutoField):
        assign_keys(rows)
    else:
        for row in rows:
            if row.pk is None:  # a default (uuid4 …), as bulk_create would
                row.pk = pk.get_pk_value_on_save(row)
    for row in rows:
        _prepare_related(row)
    # Only the fields that stamp or compute their value on save are asked to (auto_now…):
    # for the others `pre_save` is the attribute itself.
    plan = [
        (
            field,
            field.attname,
            type(field).pre_save is not models.Field.pre_save,
            _prepared_as_is(field),
            field.get_db_prep_save,
        )
        for field in fields
    ]
    values: list[list[Any]] = []
    for row in rows:
        out = []
        for field, attname, stamped, as_is, prep in plan:
            value = field.pre_save(row, add=True) if stamped else getattr(row, attname)
            kind = type(value)
            if kind in as_is and (kind is not datetime.datetime or value.tzinfo is not None):
                out.append(value)
            elif hasattr(value, "resolve_expression"):
                return None
            else:
                out.append(prep(value, db))
        values.append(out)
    return values


# Field classes (exactly these, not subclasses, which may prepare differently) whose
# `get_db_prep_save` on PostgreSQL gives a value of these types back unchanged (an aware
# datetime for a DateTimeField; an int as psycopg's sized int, which COPY writes the same):
# the common case skips Django's preparation chain, 200,000 calls on a 10,000-issue import.
# Anything else goes through the field.
_AS_IS: dict[type[models.Field[Any, Any]], frozenset[type]] = {
    models.CharField: frozenset({str, type(None)}),
    models.TextField: frozenset({str, type(None)}),
    models.DateTimeField: frozenset({datetime.datetime, type(None)}),
    models.BooleanField: frozenset({bool, type(None)}),
    models.IntegerField: frozenset({int, type(None)}),
    models.BigIntegerField: frozenset({int, type(None)}),
    models.PositiveIntegerField: frozenset({int, type(None)}),
    models.AutoField: frozenset({int}),
    models.BigAutoField: frozenset({int}),
}


def _prepared_as_is(field: models.Field[Any, Any]) -> frozenset[type]:
    if isinstance(field, models.ForeignKey):  # prepared by the field it points to
        target = _AS_IS.get(type(field.target_field))
        return target | {type(None)} if target else frozenset()
    return _AS_IS.get(type(field), frozenset())


def _prepare_related(row: models.Model) -> None:
    """What `bulk_create` checks of related objects: one assigned before it was saved gives
    its primary key now; one still unsaved is refused (its row would point nowhere)."""
    for field in row._meta.concrete_fields:
        if not (isinstance(field, models.ForeignKey) and field.is_cached(row)):
            continue
        related = field.get_cached_value(row)
        if related is None:
            continue
        if related.pk is None:
            raise ValueError(
                f"insert_rows() prohibited to prevent data loss due to unsaved related "
                f"object '{field.name}'."
            )
        if getattr(row, field.attname) in field.empty_values:
            setattr(row, field.attname, getattr(related, field.target_field.attname))


def ensure_statistics(model: type[models.Model]) -> bool:
    """`ANALYZE` the model's table if PostgreSQL has no statistics on it yet; True if it did.

    Why: a table never analyzed (a new installation, the minute before autovacuum's first
    round) has no statistics, and PostgreSQL then plans `external_id IN (…50 ids…)` as a scan
    of all the connection's rows: a first import's page lock grows with the rows already
    imported (5.6 ms at 10,000 rows instead of 0.2 ms) — quadratic over the import. Statistics
    taken on the first page are enough: the ids' selectivity (all distinct) carries over.
    """
    db = connections[router.db_for_write(model)]
    if db.vendor != "postgresql":
        return False
    table = model._meta.db_table
    with db.cursor() as cursor:
        cursor.execute(
            "SELECT EXISTS (SELECT 1 FROM pg_stats WHERE tablename = %s "
            "AND schemaname = ANY(current_schemas(false)))",
            [table],
        )
        row = cursor.fetchone()
        if row and row[0]:
            return False
        # Only our model's table name is interpolated (ANALYZE takes no parameters).
        cursor.execute(f"ANALYZE {db.ops.quote_name(table)}")
    return True
