"""Every parser of untrusted input, fuzzed: thousands of examples, no unhandled exception.

Arbitrary JSON is refused at the top of a parser and never reaches its depths, so the main
strategy here starts from real input — the captured webhooks in ../shared/fixtures and the
API answers the fake trackers render — and replaces one subtree, anywhere in it, by arbitrary
JSON. A parser may accept the result or refuse it with its documented error; anything else
(a KeyError, a TypeError, a RecursionError...) is a bug the endpoint would turn into a 500.

FUZZ_EXAMPLES (default 400) examples per test; `FUZZ_EXAMPLES=5000 make test` for a long run.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ParseError

from integrations import providers
from integrations.fake_trackers.base import FakeIssue
from integrations.fake_trackers.gitea import FakeGitea
from integrations.fake_trackers.github import FakeGitHub
from integrations.fake_trackers.gitlab import FakeGitLab
from integrations.providers import gitea, github, gitlab
from integrations.providers.base import (
    ProviderError,
    RemoteIssue,
    WebhookEvent,
    WebhookPayloadError,
)
from integrations.providers.http import parse_link_header, parse_timestamp, retry_after_seconds
from integrations.providers.shapes import ShapeError
from issues.api.parsers import JSONParser
from syndarix_sync.json_depth import json_depth_within
from tests.shared_data import event_from_fixture_name, missing_shared, shared_fixture_paths

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "400"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
PROVIDERS = ("gitea", "github", "gitlab")
BASE_URL = "https://tracker.example"
REPOSITORY = "acme/widgets"

SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["", "0", "-1", "open", "closed", "2024-01-01T00:00:00Z", "\x00", "🐛"])
)
JSON = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
    max_leaves=12,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON document a subtree can be replaced."""
    found = [prefix]
    if isinstance(value, dict):
        for key, child in value.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(value, list):
        for index, child in enumerate(value):
            found += _paths(child, (*prefix, index))
    return found


def _replaced(document: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    copy = json.loads(json.dumps(document))
    parent = copy
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return copy


def mutations(documents: list[Any]) -> st.SearchStrategy[Any]:
    """A real document with one subtree (or a key's value, or the whole) replaced."""

    @st.composite
    def mutate(draw: st.DrawFn) -> Any:
        document = draw(st.sampled_from(documents))
        path = draw(st.sampled_from(_paths(document)))
        if draw(st.booleans()) and isinstance(document, dict) and path:
            # Sometimes remove the key instead: a missing field, not a wrong one.
            copy = json.loads(json.dumps(document))
            parent = copy
            for step in path[:-1]:
                parent = parent[step]
            del parent[path[-1]]
            return copy
        return _replaced(document, path, draw(JSON))

    return mutate()


# --- the inputs -------------------------------------------------------------------------------


@cache
def captured(provider: str) -> list[tuple[str, Any]]:
    """(event, payload) for every captured webhook of the provider."""
    paths = shared_fixture_paths(provider)
    verifier = providers.webhooks(provider)
    hooks = []
    for path in paths:
        payload = json.loads(Path(path).read_text())
        event = event_from_fixture_name(path)
        if provider == "gitlab":  # the file name is not the header: the body says the kind
            event = verifier.event_name(headers={}, payload=payload) or event
        hooks.append((event, payload))
    return hooks


def _fake_issue(number: int) -> FakeIssue:
    now = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    return FakeIssue(
        id=1000 + number,
        number=number,
        title=f"Issue {number}",
        body="body",
        state="closed" if number % 2 else "open",
        labels=["bug", "ui"][: number % 3],
        assignees=["alice"] if number % 2 else [],
        milestone="v1" if number % 2 else None,
        created_at=now,
        updated_at=now,
    )


@cache
def api_answers(provider: str) -> list[Any]:
    """Issue JSON as each provider's API renders it (the fakes follow the specs)."""
    issues = [_fake_issue(n) for n in (1, 2, 3)]
    if provider == "gitea":
        fake_gitea = FakeGitea(repository=REPOSITORY)
        fake_gitea.known_labels = ["bug", "ui"]
        fake_gitea.known_milestones = ["v1"]
        return [fake_gitea.render_issue(i) for i in issues]
    if provider == "github":
        fake_github = FakeGitHub(repository=REPOSITORY)
        return [fake_github.render_issue(i) for i in issues]
    fake_gitlab = FakeGitLab(repository=REPOSITORY)
    return [fake_gitlab.issue_json(i) for i in issues]


API_PARSERS: dict[str, Callable[[Any], RemoteIssue]] = {
    "gitea": lambda data: gitea.parse_issue(data, base_url=BASE_URL, repository=REPOSITORY),
    "github": github.issue_from_json,
    "gitlab": gitlab.issue_from_api,
}


def _require_captures(provider: str) -> list[tuple[str, Any]]:
    hooks = captured(provider)
    if not hooks:
        missing_shared(f"no captured {provider} webhooks under ../shared/fixtures/{provider}")
    return hooks


# --- webhook payloads ------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mutated_captured_webhooks_parse_or_are_refused_cleanly(provider: str) -> None:
    hooks = _require_captures(provider)
    verifier = providers.webhooks(provider)
    events = sorted({event for event, _ in hooks})

    @FUZZ
    @given(event=st.sampled_from(events), payload=mutations([p for _, p in hooks]))
    def check(event: str, payload: Any) -> None:
        try:
            parsed = verifier.parse(event=event, payload=payload, base_url=BASE_URL)
        except WebhookPayloadError:
            return
        assert isinstance(parsed, WebhookEvent)
        if parsed.issue is not None:
            assert isinstance(parsed.issue, RemoteIssue)
            assert parsed.issue.number.isdigit() and parsed.issue.external_id

    check()


@pytest.mark.parametrize("provider", PROVIDERS)
def test_signature_checks_and_header_readers_never_raise(provider: str) -> None:
    verifier = providers.webhooks(provider)
    header_names = st.sampled_from(
        [
            "X-Gitea-Event",
            "X-Gitea-Signature",
            "X-Gitea-Delivery",
            "X-GitHub-Event",
            "X-GitHub-Delivery",
            "X-Hub-Signature-256",
            "X-Gitlab-Event",
            "X-Gitlab-Token",
            "X-Gitlab-Event-UUID",
            "Idempotency-Key",
            "Content-Type",
        ]
    )
    header_values = st.text(max_size=80) | st.sampled_from(["sha256=", "sha256=zz", "0" * 64])

    @FUZZ
    @given(
        headers=st.dictionaries(header_names, header_values, max_size=6),
        body=st.binary(max_size=200),
        secret=st.text(max_size=30),
        payload=JSON,
    )
    def check(headers: dict[str, str], body: bytes, secret: str, payload: Any) -> None:
        assert verifier.verify(secret=secret, body=body, headers=headers, url=BASE_URL) in (
            True,
            False,
        )
        event = verifier.event_name(headers=headers, payload=payload)
        assert event is None or isinstance(event, str)
        if event is not None:
            assert verifier.is_known_event(event) in (True, False)
        assert isinstance(verifier.delivery_id(headers=headers, body=body), str)

    check()


# --- API answers -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
def test_mutated_api_answers_parse_or_are_refused_cleanly(provider: str) -> None:
    parse = API_PARSERS[provider]

    @FUZZ
    @given(data=mutations(api_answers(provider)) | JSON)
    def check(data: Any) -> None:
        try:
            issue = parse(data)
        except (ShapeError, WebhookPayloadError, ProviderError):
            return  # the clients' documented refusals (GitLab's is a retryable ProviderError)
        assert isinstance(issue, RemoteIssue)
        assert issue.number.isdigit() and issue.external_id

    check()


@FUZZ
@given(
    value=JSON,
    link=st.text(max_size=120),
    headers=st.dictionaries(
        st.sampled_from(["Retry-After", "X-RateLimit-Reset", "RateLimit-Reset"]),
        st.text(max_size=40) | st.integers().map(str),
        max_size=3,
    ),
)
def test_http_header_and_timestamp_parsers_never_raise(
    value: Any, link: str, headers: dict[str, str]
) -> None:
    parsed = parse_timestamp(value)
    assert parsed is None or parsed.tzinfo is not None
    assert all(isinstance(url, str) for url in parse_link_header(link).values())
    wait = retry_after_seconds(headers, now=1_700_000_000.0)
    assert wait is None or wait >= 0


# --- the API's own request parser ------------------------------------------------------------


@FUZZ
@given(
    body=st.binary(max_size=300)
    | JSON.map(lambda v: json.dumps(v).encode())
    | st.integers(min_value=0, max_value=3000).map(lambda n: b"[" * n + b"]" * n)
)
def test_the_api_json_parser_returns_data_or_a_parse_error(body: bytes) -> None:
    with contextlib.suppress(ParseError):
        JSONParser().parse(io.BytesIO(body), "application/json", {})
    assert json_depth_within(body, 32) in (True, False)
