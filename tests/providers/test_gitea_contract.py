"""Contract: FakeGitea's answers and GiteaClient's requests against Gitea 1.20's OpenAPI document.

The document (`shared/specs/gitea.json`) is read at test time, never copied. Two adjustments,
both about the document rather than the fake:
- its `servers` URL is the relative `/api/v1`; it is pointed at the fake's API root;
- it is a Swagger 2 → OpenAPI 3.0 conversion that marks nothing `nullable`, while Gitea
  really sends `null` for absent objects (`milestone`, `closed_at`, `pull_request`,
  `assignees`, … — see the captured payloads in shared/fixtures/gitea): nulls are removed
  from answers before validation, so every present value is still checked.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.contrib.requests import RequestsOpenAPIRequest
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from integrations.fake_trackers.base import RecordedRequest
from integrations.fake_trackers.gitea import FakeGitea
from integrations.providers.base import IssueFields, IssueState
from integrations.providers.gitea import GiteaClient
from tests.shared_data import spec_path

SPEC = spec_path("gitea")
pytestmark = pytest.mark.skipif(not SPEC.is_file(), reason=f"Gitea OpenAPI document not at {SPEC}")


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


class NullFreeResponse:
    """openapi-core's Response protocol over a requests.Response, nulls removed (see above)."""

    def __init__(self, response: requests.Response) -> None:
        self.status_code = response.status_code
        self.headers = Headers(dict(response.headers))
        self.content_type = response.headers.get("Content-Type", "")
        self.data = json.dumps(without_nulls(response.json())).encode() if response.content else b""


class RecordedOpenAPIRequest:
    """openapi-core's Request protocol over a request the fake recorded."""

    def __init__(self, record: RecordedRequest, host_url: str) -> None:
        self.host_url = host_url
        self.path = record.path
        self.method = record.method.lower()
        self.body = record.body or None
        self.content_type = record.headers.get("Content-Type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(
                [(key, value) for key, values in record.query.items() for value in values]
            ),
            header=Headers(record.headers),
            cookie=ImmutableMultiDict(),
        )


def openapi_for(fake: FakeGitea) -> OpenAPI:
    document = json.loads(SPEC.read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    document["servers"] = [{"url": f"{fake.url}/api/v1"}]
    return OpenAPI.from_dict(document)


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGitea]:
    with FakeGitea(webhook_secret="s") as tracker:
        tracker.seed(12)
        tracker.seed_issue(title="A pull request", is_pull_request=True)
        yield tracker


@pytest.fixture(scope="module")
def openapi(fake: FakeGitea) -> OpenAPI:
    return openapi_for(fake)


def call(fake: FakeGitea, method: str, path: str, **kwargs: Any) -> requests.Response:
    request = requests.Request(
        method,
        f"{fake.url}/api/v1{path}",
        headers={"Authorization": f"token {fake.token}"},
        **kwargs,
    ).prepare()
    with requests.Session() as session:
        return session.send(request, timeout=5)


def label_ids(fake: FakeGitea, *names: str) -> list[int]:
    return [fake.label_id(name) for name in names]


OPERATIONS = {
    "repoGet": ("GET", "/repos/acme/widgets", {}),
    "issueListIssues": (
        "GET",
        "/repos/acme/widgets/issues",
        {
            "params": {
                "state": "all",
                "type": "issues",
                "limit": 5,
                "page": 2,
                "since": "2000-01-01T00:00:00Z",
            }
        },
    ),
    "issueGetIssue": ("GET", "/repos/acme/widgets/issues/1", {}),
    "issueCreateIssue": (
        "POST",
        "/repos/acme/widgets/issues",
        {"json": {"title": "Contract", "body": "b", "assignees": ["bob"], "closed": True}},
    ),
    "issueEditIssue": (
        "PATCH",
        "/repos/acme/widgets/issues/2",
        {"json": {"title": "Edited", "state": "closed", "assignees": ["carol"], "milestone": 0}},
    ),
    "issueGetLabels": ("GET", "/repos/acme/widgets/issues/1/labels", {}),
    "issueListLabels": ("GET", "/repos/acme/widgets/labels", {"params": {"limit": 50}}),
    "issueCreateLabel": (
        "POST",
        "/repos/acme/widgets/labels",
        {"json": {"name": "contract-label", "color": "#00aabb", "description": "d"}},
    ),
    "issueGetMilestonesList": (
        "GET",
        "/repos/acme/widgets/milestones",
        {"params": {"state": "all", "limit": 50}},
    ),
    "issueCreateMilestone": ("POST", "/repos/acme/widgets/milestones", {"json": {"title": "v9"}}),
    "getVersion": ("GET", "/version", {}),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_the_fakes_answer_validates_against_the_gitea_spec(fake, openapi, operation):
    method, path, options = OPERATIONS[operation]
    response = call(fake, method, path, **options)
    assert response.status_code < 300, response.text
    request = RequestsOpenAPIRequest(response.request)

    openapi.validate_request(request)
    openapi.validate_response(request, NullFreeResponse(response))


def test_replacing_labels_by_id_validates_against_the_gitea_spec(fake, openapi):
    response = call(
        fake,
        "PUT",
        "/repos/acme/widgets/issues/3/labels",
        json={"labels": label_ids(fake, "bug", "docs")},
    )
    assert response.status_code == 200
    assert sorted(label["name"] for label in response.json()) == ["bug", "docs"]
    request = RequestsOpenAPIRequest(response.request)
    openapi.validate_request(request)
    openapi.validate_response(request, NullFreeResponse(response))


def test_an_issue_with_labels_milestone_and_assignees_validates(fake, openapi):
    issue = fake.seed_issue(
        title="Full",
        labels=["bug", "feature"],
        assignees=["alice", "bob"],
        milestone="v1",
        state="closed",
    )
    response = call(fake, "GET", f"/repos/acme/widgets/issues/{issue.number}")
    body = response.json()
    assert body["milestone"]["title"] == "v1" and len(body["assignees"]) == 2
    request = RequestsOpenAPIRequest(response.request)
    openapi.validate_response(request, NullFreeResponse(response))


def test_a_pull_request_in_the_listing_validates(fake, openapi):
    response = call(
        fake, "GET", "/repos/acme/widgets/issues", params={"state": "all", "type": "pulls"}
    )
    assert [item["pull_request"]["merged"] for item in response.json()] == [False]
    request = RequestsOpenAPIRequest(response.request)
    openapi.validate_response(request, NullFreeResponse(response))


def test_the_spec_adapter_really_rejects_a_wrong_shape(fake, openapi):
    response = call(fake, "GET", "/repos/acme/widgets/issues/1")
    broken = NullFreeResponse(response)
    document = json.loads(broken.data)
    document["number"] = "one"
    broken.data = json.dumps(document).encode()
    with pytest.raises(Exception, match=r"(?i)invalid|validat"):
        openapi.validate_response(RequestsOpenAPIRequest(response.request), broken)


def test_every_request_of_a_client_round_trip_matches_a_spec_operation():
    with FakeGitea(webhook_secret="s") as fake:
        fake.seed(60)
        openapi = openapi_for(fake)
        client = GiteaClient(
            base_url=fake.url,
            repository=fake.repository,
            token=fake.token,
            timeout=2.0,
            allow_create_labels=True,
            backoff_factor=0.01,
        )
        client.check_access()
        listed = client.list_issues(since=fake.now().replace(year=2000))
        client.list_issues(etag=client.list_issues(since=fake.now()).etag, since=fake.now())
        created = client.create_issue(
            IssueFields(
                title="Round trip",
                body="b",
                labels=frozenset({"bug", "brand-new"}),
                assignees=frozenset({"bob"}),
                milestone="v2",
                state=IssueState.CLOSED,
            )
        )
        client.update_issue(
            created.number,
            IssueFields(
                title="Round trip 2",
                labels=frozenset({"docs"}),
                milestone=None,
                state=IssueState.OPEN,
                assignees=frozenset(),
            ),
        )
        client.get_issue(created.number)
        client.close()

        assert len(listed.issues) == 60
        seen = set()
        for record in fake.requests:
            request = RecordedOpenAPIRequest(record, fake.url)
            openapi.validate_request(request)  # path template, method, parameters, body
            path = record.path.replace(f"/{created.number}", "/{index}")
            seen.add((record.method, re.sub(r"/labels/\d+$", "/labels/{id}", path)))

    prefix = "/api/v1/repos/acme/widgets"
    assert seen == {
        ("GET", prefix),
        ("GET", f"{prefix}/issues"),
        ("GET", f"{prefix}/issues/{{index}}"),
        ("POST", f"{prefix}/issues"),
        ("PATCH", f"{prefix}/issues/{{index}}"),
        # Labels change as additions and removals: a concurrent addition survives.
        ("POST", f"{prefix}/issues/{{index}}/labels"),
        ("DELETE", f"{prefix}/issues/{{index}}/labels/{{id}}"),
        ("GET", f"{prefix}/labels"),
        ("POST", f"{prefix}/labels"),
        ("GET", f"{prefix}/milestones"),
    }


def test_a_request_outside_the_spec_is_caught_by_the_same_check():
    with FakeGitea() as fake:
        openapi = openapi_for(fake)
        record = RecordedRequest(
            method="POST",
            path="/api/v1/repos/acme/widgets/issues/1/assignees",
            query={},
            headers={"Authorization": f"token {fake.token}"},
            body=b"{}",
        )
        with pytest.raises(Exception, match=r"(?i)not found"):
            openapi.validate_request(RecordedOpenAPIRequest(record, fake.url))


@pytest.mark.parametrize(
    ("method", "path", "query", "body"),
    [
        ("PUT", "/issues/1/labels", {}, {"labels": ["bug"]}),  # names where 1.20 wants ids
        ("PATCH", "/issues/1", {}, {"milestone": "v1"}),  # a title where Gitea wants an id
        ("GET", "/issues", {"state": ["everything"]}, None),
        ("GET", "/issues", {"limit": ["fifty"]}, None),
    ],
)
def test_requests_with_wrong_parameters_or_bodies_fail_the_same_check(method, path, query, body):
    with FakeGitea() as fake:
        openapi = openapi_for(fake)
        record = RecordedRequest(
            method=method,
            path=f"/api/v1/repos/acme/widgets{path}",
            query=query,
            headers={"Authorization": f"token {fake.token}", "Content-Type": "application/json"},
            body=json.dumps(body).encode() if body is not None else b"",
        )
        with pytest.raises(Exception, match=r"(?i)invalid|error"):
            openapi.validate_request(RecordedOpenAPIRequest(record, fake.url))
