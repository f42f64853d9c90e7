"""FakeGitHub and GitHubClient checked against GitHub's own OpenAPI description.

Responses of the fake must validate against the spec's response schemas, its webhook bodies
against the spec's `x-webhooks` schemas, and every request the client sends during a full
round trip must be an operation of the spec with valid parameters and body.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS30Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4
from werkzeug.datastructures import Headers, ImmutableMultiDict

from integrations.fake_trackers.base import OutgoingWebhook, RecordedRequest
from integrations.fake_trackers.github import FakeGitHub
from integrations.providers.base import IssueFields, IssueState
from integrations.providers.github import GitHubClient
from tests.shared_data import missing_shared, spec_path

openapi_core = pytest.importorskip("openapi_core")
from openapi_core.datatypes import RequestParameters  # noqa: E402

SPEC = spec_path("github")
pytestmark = pytest.mark.skipif(not SPEC.is_file(), reason=f"{SPEC} is absent (no /work/shared)")

REPO = "acme/widgets"
TOKEN = "contract-token"
SPEC_HOST = "https://api.github.com"  # the spec's server; the fake's address is not in it


# --- adapters between the fake's records and openapi-core's protocols ---------------------


class SpecRequest:
    """A request recorded at the fake, presented as if it had been sent to api.github.com."""

    host_url = SPEC_HOST

    def __init__(self, record: RecordedRequest, *, prefix: str = "") -> None:
        self.record = record
        self._path = record.path.removeprefix(prefix)
        pairs = [(key, value) for key, values in record.query.items() for value in values]
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(pairs),
            header=Headers(record.headers),
            cookie=ImmutableMultiDict(),
        )

    @property
    def path(self) -> str:
        return self._path

    @property
    def method(self) -> str:
        return self.record.method.lower()

    @property
    def body(self) -> bytes | None:
        return self.record.body or None

    @property
    def content_type(self) -> str:
        return self.record.headers.get("Content-Type", "application/json").lower()


class SpecResponse:
    def __init__(self, response: requests.Response) -> None:
        self.response = response

    @property
    def status_code(self) -> int:
        return self.response.status_code

    @property
    def content_type(self) -> str:
        return self.response.headers.get("Content-Type", "").lower()

    @property
    def headers(self) -> Headers:
        return Headers(dict(self.response.headers))

    @property
    def data(self) -> bytes | None:
        return self.response.content or None


# --- fixtures -----------------------------------------------------------------------------


def allow_documented_nulls(node: Any) -> int:
    """Make `nullable: true` mean what GitHub means by it; returns how many schemas changed.

    OpenAPI 3.0.3 lets `enum` and `oneOf` override `nullable`, so a strict validator refuses
    `"state_reason": null` (enum without null) and `"milestone": null` (oneOf of string and
    integer) although GitHub documents and sends both. Only this in-memory copy changes.
    """
    changed = 0
    if isinstance(node, dict):
        if node.get("nullable") is True:
            enum = node.get("enum")
            if isinstance(enum, list) and None not in enum:
                node["enum"] = [*enum, None]
                changed += 1
            for key in ("oneOf", "anyOf"):
                branches = node.get(key)
                if (
                    isinstance(branches, list)
                    and "type" not in node
                    and not any(isinstance(b, dict) and b.get("nullable") for b in branches)
                ):
                    node[key] = [*branches, {"enum": [None]}]
                    changed += 1
        for value in node.values():
            changed += allow_documented_nulls(value)
    elif isinstance(node, list):
        for value in node:
            changed += allow_documented_nulls(value)
    return changed


@pytest.fixture(scope="module")
def spec_dict() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SPEC.read_bytes())
    assert allow_documented_nulls(data) > 0
    return data


@pytest.fixture(scope="module")
def openapi(spec_dict: dict[str, Any]) -> Any:
    # The shared README records that the document validates; re-validating costs ~5 s.
    return openapi_core.OpenAPI.from_dict(
        spec_dict, config=openapi_core.Config(spec_validator_cls=None)
    )


@pytest.fixture(scope="module")
def webhook_registry(spec_dict: dict[str, Any]) -> Registry:
    return Registry().with_resource("urn:github", Resource.from_contents(spec_dict, DRAFT4))


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    tracker = FakeGitHub(repository=REPO, token=TOKEN, webhook_secret="s")
    tracker.webhook_sink = lambda hook: None
    tracker.start()
    yield tracker
    tracker.stop()


def call(fake: FakeGitHub, method: str, path: str, **kwargs: Any) -> tuple[Any, SpecResponse]:
    response = requests.request(
        method,
        f"{fake.api_url}{path}",
        headers={
            "Authorization": f"Bearer {TOKEN}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
        },
        timeout=5,
        **kwargs,
    )
    return SpecRequest(fake.requests[-1]), SpecResponse(response)


def assert_valid_response(openapi: Any, request: SpecRequest, response: SpecResponse) -> None:
    result = openapi.unmarshal_response(request, response)
    details = [getattr(e.__cause__, "schema_errors", e) for e in result.errors]
    assert result.errors == [], details


# --- responses ----------------------------------------------------------------------------


def seed(fake: FakeGitHub) -> None:
    fake.seed_issue(title="plain")
    fake.seed_issue(
        title="full ✓", body="b", labels=["bug", "docs"], assignees=["bob", "carol"], milestone="v1"
    )
    fake.seed_issue(title="closed", state="closed", milestone="v2")
    fake.seed_issue(title="a pull request", is_pull_request=True)
    fake.add_comment(2, "a comment", notify=False)


RESPONSE_CASES: dict[str, tuple[str, str, dict[str, Any], int]] = {
    "repository": ("GET", f"/repos/{REPO}", {}, 200),
    "list issues": ("GET", f"/repos/{REPO}/issues?state=all&per_page=2&page=1", {}, 200),
    "list issues last page": ("GET", f"/repos/{REPO}/issues?state=all&per_page=2&page=2", {}, 200),
    "get issue": ("GET", f"/repos/{REPO}/issues/2", {}, 200),
    "get closed issue": ("GET", f"/repos/{REPO}/issues/3", {}, 200),
    "get pull request as issue": ("GET", f"/repos/{REPO}/issues/4", {}, 200),
    "create issue": (
        "POST",
        f"/repos/{REPO}/issues",
        {"json": {"title": "new", "labels": ["bug"], "assignees": ["bob"], "milestone": 2}},
        201,
    ),
    "update issue": (
        "PATCH",
        f"/repos/{REPO}/issues/1",
        {"json": {"state": "closed", "state_reason": "not_planned", "labels": ["docs"]}},
        200,
    ),
    "list labels": ("GET", f"/repos/{REPO}/labels?per_page=100", {}, 200),
    "create label": ("POST", f"/repos/{REPO}/labels", {"json": {"name": "ops"}}, 201),
    "list milestones": ("GET", f"/repos/{REPO}/milestones?state=all", {}, 200),
    "create milestone": ("POST", f"/repos/{REPO}/milestones", {"json": {"title": "v3"}}, 201),
    "missing issue 404": ("GET", f"/repos/{REPO}/issues/999", {}, 404),
    "missing repository 404": ("GET", "/repos/acme/nothing", {}, 404),
    "invalid list filter 422": ("GET", f"/repos/{REPO}/issues?direction=sideways", {}, 422),
    "unknown assignee 422": (
        "PATCH",
        f"/repos/{REPO}/issues/1",
        {"json": {"assignees": ["ghost"]}},
        422,
    ),
    "untitled create 422": ("POST", f"/repos/{REPO}/issues", {"json": {"title": ""}}, 422),
}


@pytest.mark.parametrize("case", sorted(RESPONSE_CASES))
def test_fake_answers_validate_against_githubs_spec(
    case: str, fake: FakeGitHub, openapi: Any
) -> None:
    seed(fake)
    method, path, kwargs, status = RESPONSE_CASES[case]

    request, response = call(fake, method, path, **kwargs)

    assert response.status_code == status
    assert_valid_response(openapi, request, response)


def test_a_deleted_issue_answers_410_as_the_spec_describes(fake: FakeGitHub, openapi: Any) -> None:
    seed(fake)
    fake.delete_issue(1, notify=False)

    request, response = call(fake, "GET", f"/repos/{REPO}/issues/1")

    assert response.status_code == 410
    assert_valid_response(openapi, request, response)


def test_a_conditional_issue_read_answers_304_as_the_spec_describes(
    fake: FakeGitHub, openapi: Any
) -> None:
    seed(fake)
    _, first = call(fake, "GET", f"/repos/{REPO}/issues/2")
    etag = first.response.headers["ETag"]

    response = requests.get(
        f"{fake.api_url}/repos/{REPO}/issues/2",
        headers={"Authorization": f"Bearer {TOKEN}", "If-None-Match": etag},
        timeout=5,
    )

    assert response.status_code == 304
    assert_valid_response(openapi, SpecRequest(fake.requests[-1]), SpecResponse(response))


# --- webhooks -----------------------------------------------------------------------------


def webhook_schema_errors(
    spec_dict: dict[str, Any], registry: Registry, hook: OutgoingWebhook
) -> list[str]:
    payload = json.loads(hook.body)
    name = f"{hook.event.replace('_', '-')}-{payload['action']}"
    assert name in spec_dict["x-webhooks"], f"the spec has no webhook {name}"
    body = spec_dict["x-webhooks"][name]["post"]["requestBody"]["content"]["application/json"]
    validator = OAS30Validator({"$ref": "urn:github" + body["schema"]["$ref"]}, registry=registry)
    return [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(payload)]


def test_every_webhook_the_fake_sends_validates_against_the_specs_x_webhooks(
    fake: FakeGitHub, spec_dict: dict[str, Any], webhook_registry: Registry
) -> None:
    issue = fake.seed_issue(title="hooked", labels=["bug"], assignees=["bob"], notify=True)
    fake.edit_issue(issue.number, title="renamed", body="new body")
    fake.edit_issue(issue.number, labels=["docs"], assignees=["carol"], milestone="v1")
    fake.edit_issue(issue.number, milestone=None, state="closed")
    fake.edit_issue(issue.number, state="open")
    fake.add_comment(issue.number, "hello")
    github = GitHubClient(base_url=fake.api_url, repository=REPO, token=TOKEN)
    created = github.create_issue(IssueFields(title="via api", milestone="v2"))
    github.update_issue(created.number, IssueFields(state=IssueState.CLOSED, milestone=None))
    fake.delete_issue(issue.number)

    seen = {(h.event, json.loads(h.body)["action"]) for h in fake.sent_webhooks}
    assert seen >= {
        ("issues", action)
        for action in (
            "opened",
            "edited",
            "closed",
            "reopened",
            "labeled",
            "unlabeled",
            "assigned",
            "unassigned",
            "milestoned",
            "demilestoned",
            "deleted",
        )
    } | {("issue_comment", "created")}
    for hook in fake.sent_webhooks:
        assert webhook_schema_errors(spec_dict, webhook_registry, hook) == [], hook.event


def test_fake_webhooks_have_the_top_level_shape_of_real_captures(
    fake: FakeGitHub,
) -> None:
    from tests.shared_data import shared_fixture_paths

    captures = {
        json.loads(p.read_bytes())["action"]: json.loads(p.read_bytes())
        for p in shared_fixture_paths("github")
        if p.name.startswith("issues__") and "transfer" not in p.name
    }
    if not captures:
        missing_shared("no shared GitHub captures")
    issue = fake.seed_issue(title="t", assignees=["bob"], milestone="v1", notify=True)
    fake.edit_issue(issue.number, title="t2", labels=["bug"], assignees=[], milestone=None)
    fake.edit_issue(issue.number, labels=[], assignees=["carol"], milestone="v2", state="closed")
    ours = {json.loads(h.body)["action"]: json.loads(h.body) for h in fake.sent_webhooks}

    for action, real in captures.items():
        mine = ours[action]
        assert set(mine) == set(real) - {"organization", "enterprise", "installation"}, action
        assert set(real["issue"]) - {"type"} <= set(mine["issue"]), action


# --- the client's requests ----------------------------------------------------------------


def spec_operations(spec_dict: dict[str, Any]) -> list[tuple[str, re.Pattern[str], str]]:
    operations = []
    for template, item in spec_dict["paths"].items():
        pattern = re.compile(re.sub(r"\{[^}]+\}", "[^/]+", template))
        for method in item:
            if method in ("get", "post", "patch", "put", "delete"):
                operations.append((method.upper(), pattern, template))
    return operations


def test_every_request_of_a_full_client_round_trip_is_a_valid_spec_operation(
    spec_dict: dict[str, Any], openapi: Any
) -> None:
    with FakeGitHub(repository=REPO, token=TOKEN, api_prefix="/api/v3") as fake:
        fake.webhook_sink = lambda hook: None
        for n in range(120):
            fake.seed_issue(title=f"issue {n}", is_pull_request=n % 10 == 0)
        github = GitHubClient(
            base_url=fake.api_url, repository=REPO, token=TOKEN, allow_create_labels=True
        )
        github.check_access()
        listed = github.list_issues()
        github.list_issues(etag=listed.etag)
        list(github.iter_issue_pages(since=listed.issues[-1].updated_at))
        created = github.create_issue(
            IssueFields(
                title="round trip",
                body="b",
                labels=frozenset({"bug"}),
                assignees=frozenset({"bob"}),
                milestone="v1",
                state=IssueState.CLOSED,
            )
        )
        number = created.number
        github.update_issue(number, IssueFields(state=IssueState.OPEN, title="reopened"))
        github.update_issue(number, IssueFields(labels=frozenset({"brand-new"}), milestone=None))
        github.update_issue(number, IssueFields(assignees=frozenset(), milestone="v2"))
        github.update_issue(number, IssueFields(title="reopened"))  # a no-op: reads only
        github.get_issue(number)
        records = list(fake.requests)

    operations = spec_operations(spec_dict)
    used = set()
    for record in records:
        path = record.path.removeprefix("/api/v3")
        matches = [t for m, p, t in operations if m == record.method and p.fullmatch(path)]
        assert matches, f"{record.method} {path} is not an operation of the spec"
        used.add((record.method, matches[0]))
        result = openapi.unmarshal_request(SpecRequest(record, prefix="/api/v3"))
        assert result.errors == [], (record.method, path, record.query, record.body)

    assert used == {
        ("GET", "/repos/{owner}/{repo}"),
        ("GET", "/repos/{owner}/{repo}/issues"),
        ("POST", "/repos/{owner}/{repo}/issues"),
        ("GET", "/repos/{owner}/{repo}/issues/{issue_number}"),
        ("PATCH", "/repos/{owner}/{repo}/issues/{issue_number}"),
        # Sets change as additions and removals: a concurrent addition survives.
        ("POST", "/repos/{owner}/{repo}/issues/{issue_number}/labels"),
        ("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/labels/{name}"),
        ("DELETE", "/repos/{owner}/{repo}/issues/{issue_number}/assignees"),
        ("GET", "/repos/{owner}/{repo}/labels"),
        ("GET", "/repos/{owner}/{repo}/milestones"),
    }
