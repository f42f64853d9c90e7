"""`issues.bulk.insert_rows`: new rows as `bulk_create` writes them — on PostgreSQL by `COPY`.

Every value is read back and compared with the same row written by `bulk_create`, including
the text that `COPY`'s own format treats specially (backslashes, `\\N`, `\\.`, tabs, newlines).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.models import Value
from django.db.models.functions import Lower
from django.test.utils import CaptureQueriesContext

from integrations.models import Connection
from issues.bulk import assign_keys, insert_rows
from issues.models import Issue, SyncLog

pytestmark = pytest.mark.django_db

# Text COPY's format would misread if it were sent as is: its NULL (\N), its end marker (\.),
# its separators and escapes; JSON's own escapes (quotes, backslashes), unicode beyond the BMP.
AWKWARD = [
    "\\N",
    "\\.",
    "line one\nline two\r\nthree",
    "tab\there",
    'quote " and backslash \\ and \\" both',
    "unicode é ✓ 漢字 🐛",
    "",
    "{not json}",
    "\\x00 is only text",
]
ZONE = dt.timezone(dt.timedelta(hours=5, minutes=30))


def make_connection(name: str = "acme") -> Connection:
    return Connection.objects.create(
        name=name,
        provider="gitea",
        base_url="http://127.0.0.1:3000",
        repository=f"acme/{name}",
        api_token="tok-plaintext-123456",
    )


def awkward_issue(conn: Connection, n: int, text: str, *, copy: int = 0) -> Issue:
    return Issue(
        connection=conn,
        external_id=f"ext-{n}-{copy}",
        external_number=str(n),
        remote_url=f"https://tracker.example/acme/{n}?q=a%20b&x=\\N",
        title=f"title {text}",
        body=text,
        state="closed" if n % 2 else "open",
        labels=[text, "bug"],
        assignees=[] if n % 3 else ["alice", text],
        milestone=None if n % 2 else text or None,
        base={"title": text, "nested": {"list": [text, None, 1, 2.5, True]}, "null": None},
        versions={},
        sync_status="pending" if n % 2 else "synced",
        sync_error=text,
        tracker_status=text[:200],
        remote_created_at=dt.datetime(2024, 2, 29, 23, 59, 58, 123456, tzinfo=ZONE),
        remote_updated_at=None if n % 2 else dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        remote_deleted_at=dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.UTC) if n % 2 else None,
        remote_hash=f"{n:032x}",
    )


def stored(model: Any, pks: list[int], skip: set[str]) -> list[dict[str, Any]]:
    names = [f.attname for f in model._meta.concrete_fields if f.attname not in skip]
    rows = {row["id"]: row for row in model.objects.filter(pk__in=pks).values("id", *names)}
    return [{k: v for k, v in rows[pk].items() if k != "id"} for pk in pks]


def test_every_field_of_an_issue_reads_back_as_bulk_create_writes_it() -> None:
    conn = make_connection()
    copied = insert_rows(Issue, [awkward_issue(conn, n, text) for n, text in enumerate(AWKWARD)])
    created = Issue.objects.bulk_create(
        [awkward_issue(conn, n, text, copy=1) for n, text in enumerate(AWKWARD)]
    )
    differing = {"id", "external_id", "created_at", "updated_at"}  # the last two: stamped
    ours = stored(Issue, [i.pk for i in copied], differing)
    theirs = stored(Issue, [i.pk for i in created], differing)
    assert ours == theirs
    for row, text in zip(ours, AWKWARD, strict=True):
        assert row["body"] == text and row["sync_error"] == text
        assert row["labels"] == [text, "bug"]
        assert row["base"]["nested"]["list"] == [text, None, 1, 2.5, True]
        assert row["base"]["null"] is None  # JSON null inside, not SQL NULL
        assert row["remote_created_at"] == dt.datetime(
            2024, 2, 29, 18, 29, 58, 123456, tzinfo=dt.UTC
        )
    first = Issue.objects.get(pk=copied[0].pk)
    assert first.remote_url == "https://tracker.example/acme/0?q=a%20b&x=\\N"
    assert first.milestone == "\\N" and first.remote_deleted_at is None
    assert Issue.objects.get(pk=copied[1].pk).milestone is None  # SQL NULL stays NULL


def test_sql_null_and_json_null_are_told_apart() -> None:
    conn = make_connection()
    issue = Issue(connection=conn, external_id="1", title="t", base=None)
    (entry,) = insert_rows(
        SyncLog,
        [
            SyncLog(
                connection=conn,
                provider="gitea",
                direction="inbound",
                action="create",
                trigger="poll",
                before=None,
                after=Value(None, output_field=SyncLog._meta.get_field("after")),
            )
        ],
    )
    insert_rows(Issue, [issue])
    with connection.cursor() as cursor:
        cursor.execute("SELECT base IS NULL FROM issues_issue WHERE id = %s", [issue.pk])
        assert cursor.fetchone() == (True,)
        cursor.execute(
            'SELECT "before" IS NULL, "after" IS NULL, "after"::text FROM issues_synclog '
            "WHERE id = %s",
            [entry.pk],
        )
        assert cursor.fetchone() == (True, False, "null")


def test_keys_stamps_and_defaults_are_set_on_the_instances() -> None:
    conn = make_connection()
    before = dt.datetime.now(dt.UTC)
    issues = insert_rows(Issue, [Issue(connection=conn, external_id=str(n)) for n in range(5)])
    pks = [i.pk for i in issues]
    assert all(pks) and pks == sorted(pks) and len(set(pks)) == 5
    for issue in issues:
        assert not issue._state.adding and issue._state.db == "default"
        row = Issue.objects.get(pk=issue.pk)
        assert row.external_id == issue.external_id
        assert row.created_at == issue.created_at and row.updated_at == issue.updated_at
        assert issue.created_at >= before
        # Model defaults, written as such.
        assert (row.state, row.labels, row.versions, row.sync_status) == ("open", [], {}, "synced")
        assert (row.title, row.body, row.milestone, row.base) == ("", "", None, None)
    # A key given is kept; the sequence is not asked for it.
    given = Issue(pk=max(pks) + 1000, connection=conn, external_id="given")
    insert_rows(Issue, [given])
    assert Issue.objects.get(external_id="given").pk == max(pks) + 1000


def test_a_log_row_points_at_an_issue_assigned_before_it_was_written() -> None:
    conn = make_connection()
    issue = Issue(connection=conn, external_id="1", title="t")
    entry = SyncLog(
        connection=conn,
        issue=issue,
        provider="gitea",
        direction="inbound",
        action="create",
        trigger="poll",
        after={"title": "t"},
    )
    with pytest.raises(ValueError, match="unsaved related object 'issue'"):
        insert_rows(SyncLog, [entry])
    insert_rows(Issue, [issue])
    insert_rows(SyncLog, [entry])
    assert SyncLog.objects.get(pk=entry.pk).issue_id == issue.pk
    assert entry.created_at is not None


def test_a_duplicate_external_id_raises_integrity_error_and_writes_nothing() -> None:
    conn = make_connection()
    Issue.objects.create(connection=conn, external_id="taken", title="first")
    with transaction.atomic():
        with pytest.raises(IntegrityError), transaction.atomic():
            insert_rows(
                Issue,
                [
                    Issue(connection=conn, external_id="new", title="x"),
                    Issue(connection=conn, external_id="taken", title="y"),
                ],
            )
        # The savepoint rolled back: the transaction goes on, nothing of the batch is written.
        assert list(Issue.objects.values_list("external_id", flat=True)) == ["taken"]
        insert_rows(Issue, [Issue(connection=conn, external_id="new", title="x")])
    assert Issue.objects.count() == 2
    # Twice in one call, too.
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_rows(
            Issue,
            [
                Issue(connection=conn, external_id="twice"),
                Issue(connection=conn, external_id="twice"),
            ],
        )
    assert not Issue.objects.filter(external_id="twice").exists()


def test_rows_belong_to_the_callers_transaction() -> None:
    conn = make_connection()
    with pytest.raises(RuntimeError), transaction.atomic():
        (issue,) = insert_rows(Issue, [Issue(connection=conn, external_id="1")])
        assert Issue.objects.filter(pk=issue.pk).exists()  # seen inside
        raise RuntimeError("roll back")
    assert not Issue.objects.exists()


def test_the_copy_is_one_logged_statement_and_an_expression_falls_back_to_bulk_create() -> None:
    conn = make_connection()
    with CaptureQueriesContext(connection) as captured:
        insert_rows(Issue, [Issue(connection=conn, external_id=str(n)) for n in range(30)])
    kinds = [q["sql"].split(" ", 1)[0] for q in captured.captured_queries]
    assert kinds == ["SELECT", "COPY"]  # the keys, then the rows

    (row,) = insert_rows(
        Issue, [Issue(connection=conn, external_id="expr", title=Lower(Value("ABC")))]
    )
    assert Issue.objects.get(pk=row.pk).title == "abc"


def test_a_naive_datetime_is_made_aware_as_django_does() -> None:
    conn = make_connection()
    naive = dt.datetime(2025, 3, 1, 12, 0)
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        insert_rows(Issue, [Issue(connection=conn, external_id="a", remote_created_at=naive)])
    with pytest.warns(RuntimeWarning, match="naive datetime"):
        Issue.objects.bulk_create(
            [Issue(connection=conn, external_id="b", remote_created_at=naive)]
        )
    stamps = dict(Issue.objects.values_list("external_id", "remote_created_at"))
    assert stamps["a"] == stamps["b"] and stamps["a"].tzinfo is not None


def test_the_keys_of_two_models_are_drawn_in_one_query_and_kept_by_the_inserts() -> None:
    conn = make_connection()
    issues = [Issue(connection=conn, external_id=str(n)) for n in range(4)]
    given = Issue(pk=10**6, connection=conn, external_id="given")
    logs = [
        SyncLog(
            connection=conn,
            issue=issue,
            provider="gitea",
            direction="inbound",
            action="create",
            trigger="poll",
        )
        for issue in issues
    ]
    with CaptureQueriesContext(connection) as captured:
        assign_keys([*issues, given], logs)
    assert len(captured.captured_queries) == 1
    assert given.pk == 10**6  # a key given is kept
    for rows in (issues, logs):
        keys = [row.pk for row in rows]
        assert all(keys) and keys == sorted(set(keys))
    with CaptureQueriesContext(connection) as captured:
        insert_rows(Issue, [*issues, given])
        insert_rows(SyncLog, logs)
    assert [q["sql"].split(" ", 1)[0] for q in captured.captured_queries] == ["COPY", "COPY"]
    stored = dict(SyncLog.objects.values_list("pk", "issue_id"))
    assert stored == {log.pk: issue.pk for log, issue in zip(logs, issues, strict=True)}
