"""The fake Redmine must not drift from the real one: one scenario, run against both, compared.

The scenario (creates, reads, conditional reads, no-op and refused writes, status writes,
journals, listings with status/sort/paging/cap/updated_on filters, deletes, auth, malformed
input) runs once against the real Redmine (a fresh project) and once against `FakeRedmine`;
each step is then compared: status code, the JSON body with ids and timestamps masked (every
other key and value must be equal), and the headers a client relies on.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from integrations.fake_trackers.redmine import FakeRedmine
from tests.redmine.server import OUTSIDER, RedmineProject

pytestmark = [pytest.mark.redmine, pytest.mark.timeout(300)]

_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


@dataclasses.dataclass
class Target:
    url: str
    api_key: str
    project: str
    labels_field_id: int
    users: dict[str, int]
    versions: dict[str, int]
    statuses: dict[str, int]

    def __post_init__(self) -> None:
        self.session = requests.Session()
        self.session.headers["X-Redmine-API-Key"] = self.api_key
        self.names = {str(uid): login for login, uid in self.users.items()}
        self.version_names = {str(vid): name for name, vid in self.versions.items()}


Step = dict[str, Any]


def observe(target: Target, response: requests.Response) -> Step:
    """What is compared: status, masked body, and the headers a client relies on."""
    headers: dict[str, Any] = {
        "etag": "weak" if response.headers.get("ETag", "").startswith('W/"') else None,
        "last_modified": "Last-Modified" in response.headers,
        "date": "Date" in response.headers,
        "location": re.sub(
            r"^https?://[^/]+", "", re.sub(r"\d+$", "<id>", response.headers.get("Location", ""))
        ),
    }
    if response.content or response.status_code in (400, 401, 404):
        headers["content_type"] = response.headers.get("Content-Type")
    body: Any = response.json() if response.content else response.content.decode()
    return {"status": response.status_code, "body": mask(target, body), "headers": headers}


def mask(target: Target, value: Any, key: str = "") -> Any:
    if isinstance(value, dict):
        if value.get("property") == "attr" and value.get("name") in (
            "assigned_to_id",
            "fixed_version_id",
        ):
            table = target.names if value["name"] == "assigned_to_id" else target.version_names
            return {
                **value,
                "old_value": table.get(str(value["old_value"]), value["old_value"]),
                "new_value": table.get(str(value["new_value"]), value["new_value"]),
            }
        if value.get("property") == "cf":
            return {**value, "name": "<field>"}
        return {k: mask(target, v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [mask(target, v, key) for v in value]
    if key == "id" and isinstance(value, int):
        return "<id>"
    if isinstance(value, str) and _STAMP.fullmatch(value):
        return "<timestamp>"
    if key == "start_date" and isinstance(value, str):
        return "<date>"
    return value


def parse(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def scenario(t: Target) -> dict[str, Step]:
    """Run every step against one target; returns the observations by step name."""
    s, base, out = t.session, t.url, {}
    labels = t.labels_field_id

    def issue_path(issue_id: int) -> str:
        return f"{base}/issues/{issue_id}.json"

    def record(name: str, response: requests.Response, **derived: Any) -> requests.Response:
        out[name] = observe(t, response)
        out[name]["derived"] = derived
        return response

    def listing(**params: Any) -> dict[str, Any]:
        return {"project_id": t.project, **params}

    full = record(
        "create_full",
        s.post(
            f"{base}/issues.json",
            json={
                "issue": {
                    "project_id": t.project,
                    "subject": "Full issue",
                    "description": "line one\nline two\r\n",
                    "status_id": t.statuses["Closed"],  # ignored on create
                    "assigned_to_id": t.users["alice"],
                    "fixed_version_id": t.versions["v1"],
                    "custom_fields": [{"id": labels, "value": ["docs", "bug"]}],
                }
            },
        ),
    ).json()["issue"]
    record("create_bare", s.post(f"{base}/issues.json", json={"issue": {
        "project_id": t.project, "subject": "Bare issue"}}))  # fmt: skip
    bare_id = (
        out["create_bare"]["status"] == 201
        and s.get(f"{base}/issues.json", params=listing(sort="id:desc", limit=1)).json()["issues"][
            0
        ]["id"]
    )
    first = record("get_full", s.get(issue_path(full["id"])))
    record(
        "get_not_modified",
        s.get(issue_path(full["id"]), headers={"If-None-Match": first.headers["ETag"]}),
    )

    # A bump of updated_on must be visible at one-second resolution, and the bare issue must
    # fall out of the `>=T` filter below for sure (it keeps "later than T minus 1 s").
    time.sleep(2.1)
    record("put_noop", s.put(issue_path(full["id"]), json={"issue": {"subject": "Full issue"}}))
    after = s.get(issue_path(full["id"]), params={"include": "journals"})
    record(
        "get_after_noop",
        after,
        bumped=parse(after.json()["issue"]["updated_on"]) > parse(full["updated_on"]),
    )
    record("put_unwrapped", s.put(issue_path(full["id"]), json={"subject": "Not applied"}))
    record(
        "put_unknown_status", s.put(issue_path(full["id"]), json={"issue": {"status_id": 99999}})
    )
    record("get_after_unknown_status", s.get(issue_path(full["id"])))
    record(
        "put_outsider",
        s.put(issue_path(full["id"]), json={"issue": {"assigned_to_id": t.users[OUTSIDER]}}),
    )
    record(
        "put_undefined_label",
        s.put(
            issue_path(full["id"]),
            json={"issue": {"custom_fields": [{"id": labels, "value": ["bug", "nope"]}]}},
        ),
    )
    record("put_bad_version", s.put(issue_path(full["id"]), json={"issue": {
        "fixed_version_id": 987654}}))  # fmt: skip
    record("put_blank_subject", s.put(issue_path(full["id"]), json={"issue": {"subject": ""}}))
    record(
        "put_change",
        s.put(
            issue_path(full["id"]),
            json={
                "issue": {
                    "subject": "Full issue, edited",
                    "description": "new\nbody",
                    "notes": "changed by the scenario",
                    "status_id": t.statuses["Closed"],
                    "assigned_to_id": t.users["bob"],
                    "fixed_version_id": t.versions["v2"],
                    "custom_fields": [{"id": labels, "value": ["feature", "docs"]}],
                }
            },
        ),
    )
    changed = record("get_journals", s.get(issue_path(full["id"]), params={"include": "journals"}))
    changed_on = parse(changed.json()["issue"]["updated_on"])

    record("list_open", s.get(f"{base}/issues.json", params=listing(limit=100)))
    record("list_closed", s.get(f"{base}/issues.json", params=listing(status_id="closed")))
    record(
        "list_all_sorted_capped",
        s.get(
            f"{base}/issues.json",
            params=listing(status_id="*", sort="updated_on,id", limit=1000),
        ),
    )
    record(
        "list_default_limit",
        s.get(f"{base}/issues.json", params=listing(status_id="*", limit=0)),
    )
    record(
        "list_page_two",
        s.get(f"{base}/issues.json", params=listing(status_id="*", sort="id", limit=1, offset=1)),
    )
    record(
        "list_beyond",
        s.get(f"{base}/issues.json", params=listing(status_id="*", offset=50)),
    )
    for name, shift in (("list_updated_since_t", 0), ("list_updated_since_t_plus_2", 2)):
        bound = (changed_on + timedelta(seconds=shift)).strftime("%Y-%m-%dT%H:%M:%SZ")
        record(
            name,
            s.get(
                f"{base}/issues.json",
                params=listing(status_id="*", sort="updated_on,id", updated_on=f">={bound}"),
            ),
        )
    record(
        "list_bad_filter",
        s.get(f"{base}/issues.json", params=listing(status_id="*", updated_on=">=garbage")),
    )
    listed = s.get(f"{base}/issues.json", params=listing(status_id="*"))
    record(
        "list_not_modified",
        s.get(
            f"{base}/issues.json",
            params=listing(status_id="*"),
            headers={"If-None-Match": listed.headers["ETag"]},
        ),
    )

    record("delete", s.delete(issue_path(int(bare_id))))
    record("get_deleted", s.get(issue_path(int(bare_id))))
    record("delete_again", s.delete(issue_path(int(bare_id))))
    record("put_deleted", s.put(issue_path(int(bare_id)), json={"issue": {"subject": "x"}}))
    record(
        "bad_key",
        requests.get(
            f"{base}/issues.json", params=listing(), headers={"X-Redmine-API-Key": "0" * 40}
        ),
    )
    record("no_key", requests.get(f"{base}/issues.json", params=listing()))
    record("key_in_query", requests.get(f"{base}/issues.json", params=listing(key=t.api_key)))
    record("unknown_project", s.get(f"{base}/issues.json", params={"project_id": "no-such"}))
    record(
        "malformed_json",
        s.post(f"{base}/issues.json", data=b"{nope", headers={"Content-Type": "application/json"}),
    )
    record("create_without_project", s.post(f"{base}/issues.json", json={"issue": {
        "subject": "orphan"}}))  # fmt: skip
    record(
        "statuses",
        s.get(f"{base}/issue_statuses.json"),
    )
    return out


STEPS = [
    "create_full",
    "create_bare",
    "get_full",
    "get_not_modified",
    "put_noop",
    "get_after_noop",
    "put_unwrapped",
    "put_unknown_status",
    "get_after_unknown_status",
    "put_outsider",
    "put_undefined_label",
    "put_bad_version",
    "put_blank_subject",
    "put_change",
    "get_journals",
    "list_open",
    "list_closed",
    "list_all_sorted_capped",
    "list_default_limit",
    "list_page_two",
    "list_beyond",
    "list_updated_since_t",
    "list_updated_since_t_plus_2",
    "list_bad_filter",
    "list_not_modified",
    "delete",
    "get_deleted",
    "delete_again",
    "put_deleted",
    "bad_key",
    "no_key",
    "key_in_query",
    "unknown_project",
    "malformed_json",
    "create_without_project",
    "statuses",
]


def real_target(project: RedmineProject) -> Target:
    server = project.server
    return Target(
        url=project.url,
        api_key=project.api_key,
        project=project.identifier,
        labels_field_id=server.labels_field_id,
        users=server.users,
        versions=project.versions,
        statuses={s["name"]: int(s["id"]) for s in server.info["statuses"]},
    )


def fake_target(fake: FakeRedmine) -> Target:
    return Target(
        url=fake.url,
        api_key=fake.token,
        project=fake.repository,
        labels_field_id=fake.labels_field_id,
        users=dict(fake.user_ids),
        versions=dict(fake.version_ids),
        statuses={str(s["name"]): int(s["id"]) for s in fake.statuses},
    )


@pytest.fixture(scope="module")
def transcripts(redmine_project: RedmineProject) -> Iterator[dict[str, dict[str, Step]]]:
    # The fake's project carries the real one's identifier, so project names compare equal.
    with FakeRedmine(repository=redmine_project.identifier, token="fake-key") as fake:
        yield {
            "real": scenario(real_target(redmine_project)),
            "fake": scenario(fake_target(fake)),
        }


def test_the_scenario_covers_every_step(transcripts: dict[str, dict[str, Step]]) -> None:
    assert list(transcripts["real"]) == STEPS
    assert list(transcripts["fake"]) == STEPS


@pytest.mark.parametrize("step", STEPS)
def test_fake_answers_like_the_real_redmine(
    transcripts: dict[str, dict[str, Step]], step: str
) -> None:
    real, fake = transcripts["real"][step], transcripts["fake"][step]
    assert fake["status"] == real["status"]
    assert fake["headers"] == real["headers"]
    assert fake["body"] == real["body"]
    assert fake["derived"] == real["derived"]


_CHECKS: dict[str, Callable[[Step], bool]] = {
    # Guards that the scenario itself exercises what it claims (a drift test that compares
    # two identical mistakes would pass): these hold on the real server.
    "get_after_noop": lambda step: step["derived"]["bumped"] is True,
    "put_outsider": lambda step: step["body"] == {"errors": ["Assignee is invalid"]},
    "list_all_sorted_capped": lambda step: step["body"]["limit"] == 100,
    "get_not_modified": lambda step: step["status"] == 304,
    "bad_key": lambda step: step["status"] == 401,
}


@pytest.mark.parametrize("step", sorted(_CHECKS))
def test_the_real_answers_are_what_the_scenario_expects(
    transcripts: dict[str, dict[str, Step]], step: str
) -> None:
    assert _CHECKS[step](transcripts["real"][step]), transcripts["real"][step]
