"""FakeRedmine on its own (no real server needed): human edits, its clock, faults, command line.

What it answers over HTTP is compared with the real Redmine in test_parity.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from integrations.fake_trackers.base import Fault
from integrations.fake_trackers.redmine import FakeRedmine, _updated_on_filter, crlf
from tests.shared_data import REPO_ROOT


@pytest.fixture
def fake() -> Iterator[FakeRedmine]:
    with FakeRedmine(token="k") as tracker:
        yield tracker


def api(fake: FakeRedmine, method: str, path: str, **kwargs: object) -> requests.Response:
    headers = {"X-Redmine-API-Key": fake.token}
    return requests.request(method, f"{fake.url}{path}", headers=headers, timeout=5, **kwargs)  # type: ignore[arg-type]


def issue_json(fake: FakeRedmine, number: int, **params: str) -> dict[str, object]:
    response = api(fake, "GET", f"/issues/{number}.json", params=params)
    assert response.status_code == 200
    return dict(response.json()["issue"])


def test_a_human_status_change_sets_the_status_state_and_a_journal(fake: FakeRedmine) -> None:
    issue = fake.seed_issue(title="Work", labels=["bug"], assignees=["alice"], milestone="v1")
    fake.edit_issue(issue.number, status="In Progress")
    assert (fake.status_name(issue.number), issue.state) == ("In Progress", "open")
    fake.edit_issue(issue.number, status="Rejected", user="bob")
    assert (fake.status_name(issue.number), issue.state) == ("Rejected", "closed")
    fake.edit_issue(issue.number, state="open")
    assert fake.status_name(issue.number) == "New"

    rendered = issue_json(fake, issue.number, include="journals")
    assert rendered["closed_on"] is not None
    journals = rendered["journals"]
    assert isinstance(journals, list)
    assert [j["user"]["name"] for j in journals] == ["Alice Test", "Bob Test", "Alice Test"]
    assert journals[1]["details"] == [
        {"property": "attr", "name": "status_id", "old_value": "2", "new_value": "6"}
    ]


def test_writes_in_one_second_keep_distinct_microsecond_stamps(fake: FakeRedmine) -> None:
    issue = fake.seed_issue(title="Fast")
    stamps = []
    for _ in range(3):
        assert (
            api(fake, "PUT", f"/issues/{issue.number}.json", json={"issue": {}}).status_code == 204
        )
        stamps.append(fake.updated_precise[issue.number])
    assert stamps == sorted(set(stamps))
    # No journal for writes that change nothing, though each one bumped updated_on.
    assert fake.journals[issue.number] == []


def test_the_updated_on_filter_is_later_than_t_minus_one_second() -> None:
    at = datetime(2026, 12, 7, 4, 0, 0, 500_000, tzinfo=UTC)
    since = _updated_on_filter(">=2026-12-07T04:00:01Z")
    assert since is not None and since(at)
    later = _updated_on_filter(">=2026-12-07T04:00:02Z")
    assert later is not None and not later(at)
    until = _updated_on_filter("<=2026-12-07T04:00:00Z")
    assert until is not None and not until(at)
    day = _updated_on_filter(">=2026-12-07")
    assert day is not None and day(at) and not day(at - timedelta(days=1))
    assert _updated_on_filter(">=yesterday") is None
    assert _updated_on_filter("=2026-12-07") is None


def test_descriptions_are_stored_with_crlf(fake: FakeRedmine) -> None:
    assert crlf("a\nb\rc\r\nd") == "a\r\nb\r\nc\r\nd"
    issue = fake.seed_issue(title="Lines", body="one\ntwo")
    assert issue_json(fake, issue.number)["description"] == "one\r\ntwo"


def test_an_injected_fault_answers_before_auth_and_routing(fake: FakeRedmine) -> None:
    fake.inject(Fault(status=503, method="GET", path_contains="/issues.json"))
    assert api(fake, "GET", "/issues.json").status_code == 503
    assert api(fake, "GET", "/issues.json").status_code == 200
    assert fake.count_requests("GET", "/issues.json") == 2


def test_the_command_line_seeds_serves_and_stops() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "integrations.fake_trackers.redmine"),
            *("--port", "0", "--seed", "5", "--token", "cli-key"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("Fake Redmine 5.0.4.stable serving project widgets at http://")
        url = first.rsplit(" ", 1)[-1].strip()
        assert "cli-key" in process.stdout.readline()
        listed = requests.get(
            f"{url}/issues.json",
            params={"status_id": "*"},
            headers={"X-Redmine-API-Key": "cli-key"},
            timeout=5,
        )
        assert listed.json()["total_count"] == 5
        assert requests.get(f"{url}/issues.json", timeout=5).status_code == 401
        process.send_signal(signal.SIGTERM)
        out, _ = process.communicate(timeout=10)
        assert out.strip().endswith("stopped")
        assert process.returncode == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
