"""Contract: FakeTrello's routes and TrelloClient's requests against shared/specs/trello.json.

The document is unofficial (APIs-guru): trusted for routes, not for response shapes, so this
checks methods and paths only. Two routes are outside the trimmed document and named here:
`GET /boards/{id}` (the access check) and `GET /boards/{id}/members` (usernames → member ids);
both are in Trello's published reference.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from integrations.fake_trackers.trello import FakeTrello
from integrations.providers.base import IssueFields, IssueState
from integrations.providers.trello import TrelloClient
from tests.shared_data import missing_shared, spec_path

SPEC = spec_path("trello")
OUTSIDE_THE_DOCUMENT = {("GET", "/boards/{}"), ("GET", "/boards/{}/members")}


def template(path: str) -> str:
    """`/cards/{idCard}/idLabels` and `/1/cards/(?P<card>[^/]+)/idLabels` → `/cards/{}/idLabels`."""
    path = re.sub(r"\{[^}]+\}", "{}", path)
    path = re.sub(r"\(\?P<\w+>\[\^/\]\+\)", "{}", path)
    return path.rstrip("/") or "/"


@pytest.fixture(scope="module")
def spec_routes() -> set[tuple[str, str]]:
    if not SPEC.is_file():
        missing_shared(f"Trello OpenAPI document not at {SPEC}")
    document = json.loads(SPEC.read_text(encoding="utf-8"))
    return {
        (method.upper(), template(path))
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "delete", "patch", "head")
    }


def matches(routes: set[tuple[str, str]], method: str, path: str) -> bool:
    path = path.removeprefix("/1").rstrip("/")
    for known_method, known in routes:
        if known_method != method:
            continue
        pattern = "/".join(
            "[^/]+" if part == "{}" else re.escape(part) for part in known.split("/")
        )
        if re.fullmatch(pattern, path):
            return True
    return False


def test_every_route_of_the_fake_is_a_trello_route(spec_routes: set[tuple[str, str]]):
    fake = FakeTrello()
    served = {
        (method, template(pattern.pattern.removeprefix("/1")))
        for method, pattern, _ in fake._routes
    }
    try:
        assert served - spec_routes == OUTSIDE_THE_DOCUMENT
    finally:
        fake._server.server_close()


@pytest.fixture
def fake() -> Iterator[FakeTrello]:
    tracker = FakeTrello().start()
    yield tracker
    tracker.stop()


@pytest.mark.parametrize("done_list", [None, "Done"])
def test_every_request_of_the_client_is_a_trello_route(
    spec_routes: set[tuple[str, str]], fake: FakeTrello, done_list: str | None
):
    config = {"api_key": fake.api_key, **({"done_list": done_list} if done_list else {})}
    client = TrelloClient(
        base_url=fake.url,
        repository=fake.repository,
        token=fake.token,
        config=config,
        allow_create_labels=True,
    )
    seeded = fake.seed_issue(title="seeded", labels=["bug"], assignees=["alice"])
    since = fake.now()
    client.check_access()
    created = client.create_issue(
        IssueFields(title="new", body="b", labels=frozenset({"bug"}), assignees=frozenset({"bob"})),
        marker="m",
    )
    current = client.get_issue(created.number)
    client.update_issue(
        created.number,
        IssueFields(
            title="t2",
            body="b2",
            labels=frozenset({"docs", "brand-new"}),
            assignees=frozenset({"carol"}),
            state=IssueState.CLOSED,
        ),
        current=current,
    )
    client.update_issue(created.number, IssueFields(state=IssueState.OPEN))
    client.update_issue(str(seeded.number), IssueFields(state=IssueState.CLOSED))
    client.list_issues()
    client.list_issues(since=since)
    client.find_by_marker("m", since=since)
    client.close()

    sent = {(r.method, r.path) for r in fake.requests}
    assert {"POST", "PUT", "DELETE", "GET"} <= {m for m, _ in sent}
    unknown = {
        (m, p)
        for m, p in sent
        if not matches(spec_routes, m, p) and not matches(OUTSIDE_THE_DOCUMENT, m, p)
    }
    assert unknown == set()
    assert all(r.status < 400 for r in fake.requests), [
        (r.method, r.path, r.status) for r in fake.requests if r.status >= 400
    ]
