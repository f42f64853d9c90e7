"""`connection_test` against a real FakeGitea: one precise message per kind of failure, and the
admin's "Test connection" action and button that show it."""

from __future__ import annotations

import socket
import time

import pytest

from integrations.fake_trackers.base import Fault
from integrations.services import Problem, connection_test
from tests.admin.conftest import messages_of


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_working_connection_says_so_and_warns_about_plain_http(tracker):
    result = connection_test(connection=tracker.connection)
    assert result.ok, result.message
    assert result.problem == Problem.NONE
    assert "Connected" in result.message and "acme/widgets" in result.message
    assert "plain http" in result.message


def _bad_token(t):
    t.connection.api_token = "wrong-token"


def _no_access(t):
    t.fake.token_scopes_ok = False


def _not_found(t):
    t.connection.repository = "acme/gadgets"


def _unreachable(t):
    t.connection.base_url = f"http://127.0.0.1:{unused_port()}"


def _tls(t):
    t.connection.base_url = f"https://127.0.0.1:{t.fake.port}"  # the fake speaks plain http


def _rate_limited(t):
    t.fake.inject(Fault(status=429, retry_after=30))


def _invalid(t):
    t.connection.repository = "just-a-name"


@pytest.mark.parametrize(
    ("break_it", "problem", "says"),
    [
        (_bad_token, Problem.BAD_TOKEN, "Bad token"),
        (_no_access, Problem.NO_ACCESS, "No access"),
        (_not_found, Problem.NOT_FOUND, "Repository not found"),
        (_unreachable, Problem.UNREACHABLE, "Unreachable URL"),
        (_tls, Problem.TLS, "TLS error"),
        (_rate_limited, Problem.RATE_LIMITED, "wait 30 s"),
        (_invalid, Problem.INVALID, "owner/name"),
    ],
    ids=lambda v: v.__name__ if callable(v) else None,
)
def test_each_failure_gets_its_own_precise_message(tracker, break_it, problem, says):
    break_it(tracker)
    started = time.monotonic()
    result = connection_test(connection=tracker.connection)
    assert not result.ok
    assert result.problem == problem, result.message
    assert says in result.message
    assert time.monotonic() - started < 3, "the test answers at once, without retry back-off"


def test_a_tracker_that_does_not_answer_is_a_timeout(tracker, settings):
    settings.PROVIDER_HTTP_TIMEOUT = 0.3
    tracker.fake.inject(Fault(status=500, hang_seconds=1.0))
    result = connection_test(connection=tracker.connection)
    assert (result.ok, result.problem) == (False, Problem.TIMEOUT), result.message
    assert "within 0.3 s" in result.message


def test_the_admin_action_reports_each_connection(tracker, staff_client):
    _not_found(tracker)
    tracker.connection.save()
    response = staff_client.post(
        "/admin/integrations/connection/",
        {"action": "test_connection", "_selected_action": [tracker.connection.pk]},
    )
    assert response.status_code == 302
    (message,) = messages_of(response)
    assert message.startswith("acme: Repository not found")


def test_the_button_on_the_connection_page_tests_it(tracker, staff_client):
    page = staff_client.get(f"/admin/integrations/connection/{tracker.connection.pk}/change/")
    url = f"/admin/integrations/connection/{tracker.connection.pk}/test/"
    assert f'action="{url}"' in page.content.decode()
    assert staff_client.get(url).status_code == 405  # a POST only: it uses the token
    response = staff_client.post(url)
    assert response.status_code == 302
    assert response["Location"].endswith(f"/{tracker.connection.pk}/change/")
    (message,) = messages_of(response)
    assert "Connected" in message
