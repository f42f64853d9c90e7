"""Contract: FakeJira's answers and JiraClient's requests against Jira Cloud's v3 OpenAPI
document (`shared/specs/jira.json`, read at test time, never copied).

The spec predates `/rest/api/3/search/jql` (its README says so) and has no `/myself`: those
two operations are checked by the client tests against the documented behaviour instead, and
are the only requests of a client round trip allowed outside the spec. Its `servers` URL is
pointed at the fake; nulls are removed from answers before validation, as for Gitea (the spec
marks few fields nullable, while Jira sends `null` for an empty assignee or description).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest

from integrations.fake_trackers.base import RecordedRequest
from integrations.fake_trackers.jira import FakeJira
from integrations.providers.base import IssueFields, IssueState
from integrations.providers.jira import JiraClient
from tests.providers.test_gitea_contract import NullFreeResponse, RecordedOpenAPIRequest
from tests.shared_data import spec_path

SPEC = spec_path("jira")
pytestmark = pytest.mark.skipif(not SPEC.is_file(), reason=f"Jira OpenAPI document not at {SPEC}")
# Newer than the spec (search/jql) or not in its trimmed paths (myself).
OUTSIDE_SPEC = {("GET", "/rest/api/3/search/jql"), ("GET", "/rest/api/3/myself")}


def openapi_for(fake: FakeJira) -> OpenAPI:
    document = copy.deepcopy(json.loads(SPEC.read_text(encoding="utf-8")))
    document["servers"] = [{"url": fake.url}]
    return OpenAPI.from_dict(document)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeJira]:
    with FakeJira(webhook_secret="s") as tracker:
        tracker.seed(5)
        tracker.seed_issue(
            title="Full", body="a\n\nb", labels=["bug"], assignees=["alice"], milestone="v1"
        )
        yield tracker


@pytest.fixture(scope="module")
def openapi(fake: FakeJira) -> OpenAPI:
    return openapi_for(fake)


def call(fake: FakeJira, method: str, path: str, **kwargs: Any) -> requests.Response:
    request = requests.Request(
        method, f"{fake.url}/rest/api/3{path}", auth=(fake.email, fake.token), **kwargs
    ).prepare()
    with requests.Session() as session:
        return session.send(request, timeout=5)


DOC = {"type": "doc", "version": 1, "content": [{"type": "paragraph", "content": []}]}
OPERATIONS = {
    "getProject": ("GET", "/project/PROJ", {}),
    "getIssue": ("GET", "/issue/PROJ-6", {"params": {"fields": "summary", "properties": "x"}}),
    "createIssue": (
        "POST",
        "/issue",
        {
            "json": {
                "fields": {
                    "project": {"key": "PROJ"},
                    "issuetype": {"name": "Task"},
                    "summary": "Contract",
                    "description": DOC,
                },
                "properties": [{"key": "syndarix", "value": {"create": "m"}}],
            }
        },
    ),
    "editIssue": (
        "PUT",
        "/issue/PROJ-2",
        {
            "json": {
                "fields": {"summary": "Edited", "assignee": {"accountId": "bob"}},
                "update": {"labels": [{"add": "docs"}]},
            }
        },
    ),
    "getTransitions": ("GET", "/issue/PROJ-3/transitions", {}),
    "doTransition": ("POST", "/issue/PROJ-4/transitions", {"json": {"transition": {"id": "41"}}}),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_the_fakes_answer_validates_against_the_jira_spec(fake, openapi, operation):
    method, path, options = OPERATIONS[operation]
    response = call(fake, method, path, **options)
    assert response.status_code < 300, response.text
    request = RequestsOpenAPIRequest(response.request)
    openapi.validate_request(request)
    if response.status_code == 204:
        # The spec declares 204 with an `application/json` body of schema `{}`; Jira (and
        # the fake) send no body, which openapi-core reports as missing data. The status is
        # the documented one; there is nothing else to check.
        return
    openapi.validate_response(request, NullFreeResponse(response))


def test_the_spec_adapter_really_rejects_a_wrong_shape(fake, openapi):
    response = call(fake, "GET", "/project/PROJ")
    broken = NullFreeResponse(response)
    document = json.loads(broken.data)
    document["versions"] = "v1"
    broken.data = json.dumps(document).encode()
    with pytest.raises(Exception, match=r"(?i)invalid|validat"):
        openapi.validate_response(RequestsOpenAPIRequest(response.request), broken)


def test_every_request_of_a_client_round_trip_matches_a_spec_operation():
    with FakeJira(webhook_secret="s") as fake:
        fake.seed(30)
        openapi = openapi_for(fake)
        client = JiraClient(
            base_url=fake.url,
            repository=fake.key,
            token=fake.token,
            timeout=2.0,
            backoff_factor=0.01,
            config={"email": fake.email},
        )
        client.check_access()
        listed = client.list_issues(since=fake.now().replace(year=2000))
        created = client.create_issue(
            IssueFields(
                title="Round trip",
                body="b\nc",
                labels=frozenset({"bug"}),
                assignees=frozenset({"bob"}),
                milestone="v2",
                state=IssueState.CLOSED,
            ),
            marker="rt-1",
        )
        client.update_issue(
            created.number,
            IssueFields(
                title="Round trip 2",
                body="",
                labels=frozenset({"docs"}),
                milestone=None,
                state=IssueState.OPEN,
                assignees=frozenset(),
            ),
        )
        client.close()

        assert len(listed.issues) == 30
        seen = set()
        for record in fake.requests:
            path = record.path.replace(f"/{created.number}", "/{issueIdOrKey}")
            seen.add((record.method, path))
            if (record.method, record.path) in OUTSIDE_SPEC:
                continue
            openapi.validate_request(RecordedOpenAPIRequest(record, fake.url))

    prefix = "/rest/api/3"
    assert seen == OUTSIDE_SPEC | {
        ("GET", f"{prefix}/project/PROJ"),
        ("POST", f"{prefix}/issue"),
        ("GET", f"{prefix}/issue/{{issueIdOrKey}}"),
        ("PUT", f"{prefix}/issue/{{issueIdOrKey}}"),
        ("GET", f"{prefix}/issue/{{issueIdOrKey}}/transitions"),
        ("POST", f"{prefix}/issue/{{issueIdOrKey}}/transitions"),
    }


def test_a_request_outside_the_spec_is_caught_by_the_same_check():
    with FakeJira() as fake:
        record = RecordedRequest(
            method="POST",
            path="/rest/api/3/issue/PROJ-1/assignee",
            query={},
            headers={},
            body=b"{}",
        )
        with pytest.raises(Exception, match=r"(?i)not found"):
            openapi_for(fake).validate_request(RecordedOpenAPIRequest(record, fake.url))
