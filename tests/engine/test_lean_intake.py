"""Issue 18 (3): the lean intake — a delivery costs one INSERT (committed on its own), the
connections and their decrypted secrets are remembered for a few seconds and forgotten when
one changes, and the webhook route runs on its own short middleware chain, its answers still
carrying a Content-Length.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
from django.db import connection as db_connection
from django.db import connections
from django.test.utils import CaptureQueriesContext

from integrations.models import Connection, WebhookDelivery
from tests.engine.test_webhook_intake import SECRET, gitea_payload, post
from tests.shared_data import gitea_signature


@pytest.fixture
def connection(db: Any) -> Connection:
    return Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url="http://tracker.test",
        repository="acme/widgets",
        api_token="t",
        webhook_secret=SECRET,
    )


def statements(fn: Any) -> list[str]:
    with CaptureQueriesContext(db_connection) as captured:
        fn()
    return [q["sql"] for q in captured.captured_queries]


def test_a_delivery_costs_one_insert_once_the_connections_are_known(connection: Connection):
    assert post(gitea_payload(number=1), delivery="d-1").status_code == 202
    sql = statements(lambda: post(gitea_payload(number=2), delivery="d-2"))
    assert len(sql) == 1 and sql[0].startswith("INSERT INTO"), sql
    # A redelivery: the same one statement, nothing stored, no error to roll back.
    sql = statements(lambda: post(gitea_payload(number=2), delivery="d-2"))
    assert len(sql) == 1 and sql[0].startswith("INSERT INTO"), sql
    assert WebhookDelivery.objects.count() == 2


def test_a_connection_saved_here_is_seen_by_the_next_delivery(connection: Connection):
    assert post(gitea_payload(), delivery="before").status_code == 202
    connection.webhook_secret = "rotated-secret"
    connection.save()
    assert post(gitea_payload(), delivery="old-secret").status_code == 401
    assert post(gitea_payload(), delivery="new-secret", secret="rotated-secret").status_code == 202
    connection.enabled = False
    connection.save()
    assert post(gitea_payload(), delivery="disabled", secret="rotated-secret").status_code == 404
    connection.enabled = True
    connection.save()
    assert post(gitea_payload(), delivery="enabled", secret="rotated-secret").status_code == 202
    connection.delete()
    assert post(gitea_payload(), delivery="deleted", secret="rotated-secret").status_code == 404


def test_another_processes_change_is_seen_within_the_cache_lifetime(
    connection: Connection, settings: Any
):
    """A change no signal here reports (made by another process) is seen at once when it
    would refuse a delivery, and within WEBHOOK_CONNECTION_CACHE_SECONDS when it refuses."""
    settings.WEBHOOK_CONNECTION_CACHE_SECONDS = 0.5
    assert post(gitea_payload(), delivery="known").status_code == 202
    other = Connection.objects.bulk_create(  # no signal: as if saved in another process
        [
            Connection(
                name="other",
                provider="gitea",
                base_url="http://tracker.test",
                repository="acme/other",
                api_token="t",
                webhook_secret=SECRET,
            )
        ]
    )[0]
    path = f"/webhooks/gitea/{other.pk}/"
    body = gitea_payload(repository="acme/other")
    assert post(body, delivery="new-connection", path=path).status_code == 202
    Connection.objects.filter(pk=connection.pk).update(enabled=False)
    assert post(gitea_payload(), delivery="remembered").status_code == 202
    time.sleep(0.6)
    assert post(gitea_payload(), delivery="forgotten").status_code == 404


# --- the WSGI application itself -------------------------------------------------------------


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        return


class _Threading(ThreadingMixIn, WSGIServer):
    daemon_threads = True

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            connections.close_all()  # the request thread's own database connection


@pytest.fixture
def served(transactional_db: Any) -> Iterator[int]:
    """syndarix_sync.wsgi.application on a loopback port, as gunicorn serves it."""
    from syndarix_sync.wsgi import application

    server = make_server("127.0.0.1", 0, application, server_class=_Threading, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def request(port: int, method: str, path: str, body: bytes = b"", **headers: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_the_webhook_route_runs_its_short_chain_and_answers_with_a_content_length(
    served: int,
):
    Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url="http://tracker.test",
        repository="acme/widgets",
        api_token="t",
        webhook_secret=SECRET,
    )
    body = gitea_payload()
    signed = {
        "Content-Type": "application/json",
        "X-Gitea-Event": "issues",
        "X-Gitea-Delivery": "wsgi-1",
        "X-Gitea-Signature": gitea_signature(SECRET, body),
        "X-Correlation-ID": "lean-1",
    }
    status, headers, content = request(served, "POST", "/webhooks/gitea/", body, **signed)
    assert status == 202, content
    assert int(headers["Content-Length"]) == len(content)
    assert headers["X-Correlation-ID"] == "lean-1"  # the correlation middleware runs
    # No frame options, no session cookie handling: those middleware are not on this route…
    assert "X-Frame-Options" not in headers and "Vary" not in headers
    status, headers, content = request(served, "POST", "/webhooks/gitea/", b"{}", **signed)
    assert status == 401 and int(headers["Content-Length"]) == len(content)
    # …while every other route keeps the full chain.
    status, headers, _ = request(served, "GET", "/healthz")
    assert headers.get("X-Frame-Options") == "DENY"
    # And the host is still checked on the webhook route.
    status, _, _ = request(served, "POST", "/webhooks/gitea/", body, Host="evil.example", **signed)
    assert status == 400
    assert WebhookDelivery.objects.count() == 1


def test_the_lean_route_answers_503_when_the_database_is_gone(served: int, settings: Any):
    """DatabaseUnavailableMiddleware stays on the webhook route."""
    Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url="http://tracker.test",
        repository="acme/widgets",
        api_token="t",
        webhook_secret=SECRET,
    )
    body = gitea_payload()
    headers = {
        "Content-Type": "application/json",
        "X-Gitea-Event": "issues",
        "X-Gitea-Delivery": "wsgi-503",
        "X-Gitea-Signature": gitea_signature(SECRET, body),
    }
    saved = dict(connections["default"].settings_dict)
    connections["default"].settings_dict["PORT"] = 1  # nothing listens there
    try:  # each request is served in a new thread, with a new database connection
        status, answer, _ = request(served, "POST", "/webhooks/gitea/", body, **headers)
    finally:
        connections["default"].settings_dict.update(saved)
    assert status == 503 and answer["Retry-After"] == "5"


@pytest.mark.django_db(transaction=True)
def test_a_connection_the_server_dropped_is_replaced_without_a_refusal():
    """No health-check query before the INSERT: a dropped connection (a PostgreSQL restart)
    is noticed by the INSERT itself, replaced, and the delivery stored on the first try."""
    Connection.objects.create(
        name="acme",
        provider="gitea",
        base_url="http://tracker.test",
        repository="acme/widgets",
        api_token="t",
        webhook_secret=SECRET,
    )
    assert post(gitea_payload(number=1), delivery="before").status_code == 202
    pid = db_connection.connection.info.backend_pid
    other = connections.create_connection("default")
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    assert post(gitea_payload(number=2), delivery="after").status_code == 202
    assert WebhookDelivery.objects.count() == 2
