"""Claiming on PostgreSQL: SKIP LOCKED means concurrent workers take disjoint rows."""

from __future__ import annotations

import threading

import pytest
from django.db import connection as db_connection
from django.utils import timezone

from integrations.models import Connection
from issues.models import Issue, OutboxEntry
from issues.outbox import claim_issue_batch


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_take_the_same_row() -> None:
    conn = Connection.objects.create(
        name="c", provider="gitea", base_url="http://127.0.0.1:9", repository="a/b"
    )
    now = timezone.now()
    for n in range(60):
        issue = Issue.objects.create(connection=conn, external_id=str(n), title=f"i{n}")
        OutboxEntry.objects.create(
            connection=conn,
            issue=issue,
            operation="update",
            changes={"title": f"t{n}"},
            next_attempt_at=now,
        )
    results: list[dict[int, list[int]]] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        try:
            empty_in_a_row = 0
            while empty_in_a_row < 3:
                batch = claim_issue_batch(limit=3)
                results.append(batch)
                empty_in_a_row = 0 if batch else empty_in_a_row + 1
        finally:
            db_connection.close()

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed_rows = [row for batch in results for rows in batch.values() for row in rows]
    assert len(claimed_rows) == len(set(claimed_rows)) == 60
    assert set(OutboxEntry.objects.values_list("status", flat=True)) == {"in_progress"}
