"""Hostile input to every API write: endpoint by case → a 4xx with a JSON error, or stored right.

Production hardening, item 4. Every write endpoint of `/api/v1/` (names Zulip-style,
`<resource>__<action>`) meets every case that applies to it (`<what>__<variant>`). A refused
request must answer a 4xx with a JSON error body and change nothing: no Issue, OutboxEntry,
Connection, Conflict, SyncLog or IdempotencyRecord row created or changed. A request that
is accepted must be stored exactly as the rule below says. No case may answer 5xx.

Endpoints that take no body (close, reopen, refresh, delete, sync) ignore whatever body is
sent — unless an `Idempotency-Key` makes the body part of the request's identity, then it
must be JSON like any other.

The text rule of the API (it differs from webhooks on purpose: an API caller can correct its
request, a tracker's stored state cannot be refused):
- U+0000 and lone surrogates are refused (400 naming the field): neither can be stored.
- Titles, names and labels lose leading and trailing whitespace (Python's `str.strip`, as
  DRF's CharField does, U+2028 and U+0085 included); a body is kept exactly.
- Everything else — emoji, RTL text, bidi controls, combining marks (no normalisation),
  astral characters, CR, LF, TAB, ESC, DEL, U+2028 inside the text — is stored exactly.
- Limits: title 1000 characters, body 262,144, a label or login 255, 100 labels; a request
  body over API_MAX_BODY_BYTES (1 MB, separate from the webhooks' 25 MB) is 413, refused
  before it is read.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.forms.models import model_to_dict
from django.test import Client

from integrations.fake_trackers.gitea import FakeGitea
from integrations.models import Connection
from issues.models import Conflict, IdempotencyRecord, Issue, IssueState, OutboxEntry, SyncLog
from issues.services.tokens import api_token_create
from tests.api.conftest import connection_write_permissions, make_conflict, make_issue
from tests.security.streams import CountingStream

THIRTY_MB = 30 * 1024 * 1024
PADDING = b"x" * THIRTY_MB  # built once for the module
HUGE_ID = 2**70  # more than any database id column holds
MISSING_ID = 987_654_321

# Text a user might really type, controls included, but no NUL (refused, see above).
ODD_TEXT = (
    "  Crash 🐛 «сохранить» עברית \u200fRTL\u200f \u202eevil\u202c e\u0301≠é 𝔘𝔫𝔦 "
    "👩\u200d💻 CR[\r] LF[\n] TAB[\t] ESC[\x1b[31m] DEL[\x7f] NEL[\x85] LS[\u2028] "
    "BOM[\ufeff]\u2028 "
)
ODD_LABELS = ["🐛 bug", "עברית", "e\u0301", "é", "esc\x1b[0m", " padded ", "𝔘𝔫𝔦", "🐛 bug"]
LIMIT_TITLE = "𝔘" * 1000  # exactly the limit, in astral characters (4 bytes each in UTF-8)
HUNDRED_LABELS = [f"label-{n:03d}-🏷" for n in range(100)]
MANY_LABELS = [f"label-{n:05d}" for n in range(10_000)]
OVERLONG_TEXT = "x" * 300_001  # over every text field's limit, under the API's body limit
# JSON brackets inside strings are no nesting (an escaped quote does not end the string).
BRACKETS_TEXT = 'a "quoted" \\ backslash \\" [' + "[" * 450 + "{" * 450


def stripped(text: str) -> str:
    return text.strip()


def stored_labels(labels: list[str]) -> list[str]:
    """How an issue keeps labels: stripped, as a sorted set."""
    return sorted({label.strip() for label in labels})


# --- the world the requests meet -------------------------------------------------------------


class HostileWorld:
    """What the requests meet: one connection (reaching a fake Gitea, for refresh) with two
    mirrored issues — the first with an open conflict on its body, the second on its labels —
    and a staff token (staff may write connections too). Lean on purpose: ~380 tests build it.
    """

    def __init__(self, tracker: FakeGitea, remote_id: int) -> None:
        staff = get_user_model().objects.create_user("hostile-admin", is_staff=True)
        staff.user_permissions.add(*connection_write_permissions())
        _, self.staff_key = api_token_create(user=staff, name="staff", all_connections=True)
        # Without the post_save hook that syncs its beat schedule (~25 ms, no part here).
        (self.alpha,) = Connection.objects.bulk_create(
            [
                Connection(
                    name="alpha",
                    provider="gitea",
                    base_url=tracker.url,
                    repository=tracker.repository,
                    api_token=tracker.token,
                    webhook_secret="alpha-secret",
                )
            ]
        )
        self.alpha_issue = make_issue(self.alpha, 1, external_id=str(remote_id), labels=["bug"])
        self.beta_issue = make_issue(self.alpha, 2, labels=["docs"])
        self.alpha_conflict = make_conflict(self.alpha_issue, "body")
        self.labels_conflict = make_conflict(
            self.beta_issue,
            "labels",
            base_value=["docs"],
            local_value=["docs", "local"],
            remote_value=["docs", "remote"],
        )


def db_state() -> dict[str, Any]:
    """Every row a write could create or change (tokens aside: auth stamps last_used_at)."""
    return {
        "issues": [model_to_dict(row) for row in Issue.objects.order_by("pk")],
        "issue_stamps": list(Issue.objects.order_by("pk").values_list("pk", "updated_at")),
        "outbox": list(OutboxEntry.objects.order_by("pk").values()),
        "connections": [model_to_dict(row) for row in Connection.objects.order_by("pk")],
        "connection_stamps": list(
            Connection.objects.order_by("pk").values_list("pk", "updated_at")
        ),
        "conflicts": list(Conflict.objects.order_by("pk").values()),
        "sync_logs": list(SyncLog.objects.order_by("pk").values_list("pk", flat=True)),
        "idempotency": list(IdempotencyRecord.objects.order_by("pk").values()),
    }


# --- endpoints ---------------------------------------------------------------------------------

Body = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Endpoint:
    name: str
    method: str
    path: Callable[[HostileWorld, int | None], str]  # the id to use, or None for the real one
    success: int
    valid: Callable[[HostileWorld], Body] | None = None  # None: the endpoint reads no body
    # What {} (or no body) gets: the endpoint's required fields are missing, or nothing changes.
    empty_status: int = 400
    # The body carrying `text` in its text fields and `labels` in its label field (either
    # may be None: leave that out); None when the endpoint has no such field.
    fill: Callable[[HostileWorld, str | None, list[str] | None], Body | None] = (
        lambda world, text, labels: None
    )
    wrong_types: Callable[[HostileWorld], Body] | None = None
    check: Callable[[HostileWorld, Any, str | None, list[str] | None], None] = (
        lambda world, response, text, labels: None
    )
    has_id: bool = True
    takes_text: bool = False  # fill() can carry text (title, body, name)
    takes_labels: bool = False  # fill() can carry labels (labels, label_filter)

    @property
    def reads_body(self) -> bool:
        return self.valid is not None


def _issue_path(suffix: str) -> Callable[[HostileWorld, int | None], str]:
    def path(world: HostileWorld, pk: int | None) -> str:
        return f"/api/v1/issues/{world.alpha_issue.pk if pk is None else pk}/{suffix}"

    return path


def _config_path(suffix: str) -> Callable[[HostileWorld, int | None], str]:
    def path(world: HostileWorld, pk: int | None) -> str:
        return f"/api/v1/sync/configs/{world.alpha.pk if pk is None else pk}/{suffix}"

    return path


def _resolve_path(labels: bool) -> Callable[[HostileWorld, int | None], str]:
    def path(world: HostileWorld, pk: int | None) -> str:
        conflict = world.labels_conflict if labels else world.alpha_conflict
        return f"/api/v1/sync/conflicts/{conflict.pk if pk is None else pk}/resolve/"

    return path


def _connection_body(name: str = "fresh", labels: list[str] | None = None) -> Body:
    body: Body = {
        "name": name,
        "provider": "gitea",
        "base_url": "https://git.example.com",
        "repository": "acme/fresh",
        # Moving a connection (base_url, provider, repository) needs the token again.
        "api_token": "fresh-token",
    }
    if labels is not None:
        body["label_filter"] = labels
    return body


def _issue_fill(world: HostileWorld, text: str | None, labels: list[str] | None) -> Body:
    body: Body = {}
    if text is not None:
        body.update(title=text, body=text)
    if labels is not None:
        body["labels"] = labels
    return body


def _check_issue(issue: Issue, text: str | None, labels: list[str] | None) -> None:
    if text is not None:
        assert issue.title == stripped(text)
        assert issue.body == text
    if labels is not None:
        assert issue.labels == stored_labels(labels)


def _check_created_issue(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    issue = Issue.objects.get(pk=response.json()["id"])
    assert issue.connection_id == world.alpha.pk
    assert OutboxEntry.objects.filter(issue=issue).count() == 1  # queued for the tracker
    _check_issue(issue, text, labels)


def _check_updated_issue(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    issue = Issue.objects.get(pk=world.alpha_issue.pk)
    if text is not None:
        assert issue.title == stripped(text)
        assert issue.body == world.alpha_issue.body  # not sent: untouched (it is in conflict)
    if labels is not None:
        assert issue.labels == stored_labels(labels)


def _check_connection(connection: Connection, text: str | None, labels: list[str] | None) -> None:
    if text is not None:
        assert connection.name == stripped(text)
    if labels is not None:
        assert connection.label_filter == [label.strip() for label in labels]


def _check_created_connection(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    connection = Connection.objects.get(pk=response.json()["id"])
    assert (connection.repository, connection.provider) == ("acme/fresh", "gitea")
    _check_connection(connection, text, labels)


def _check_alpha_connection(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    _check_connection(Connection.objects.get(pk=world.alpha.pk), text, labels)


def _check_closed(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    assert Issue.objects.get(pk=world.alpha_issue.pk).state == IssueState.CLOSED
    assert OutboxEntry.objects.filter(issue=world.alpha_issue).count() == 1


def _check_open(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    assert Issue.objects.get(pk=world.alpha_issue.pk).state == IssueState.OPEN


def _check_refreshed(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    assert response.json()["issue"]["id"] == world.alpha_issue.pk


def _check_deleted(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    assert not Connection.objects.filter(pk=world.alpha.pk).exists()
    assert not Issue.objects.filter(connection_id=world.alpha.pk).exists()


def _check_sync_queued(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    assert response.json() == {"connection": world.alpha.pk, "full": False, "status": "queued"}


def _check_resolved_body(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    conflict = Conflict.objects.get(pk=world.alpha_conflict.pk)
    assert conflict.resolved
    if text is not None:
        assert Issue.objects.get(pk=world.alpha_issue.pk).body == text
        assert conflict.resolved_value == text


def _check_resolved_labels(world: HostileWorld, response: Any, text: Any, labels: Any) -> None:
    assert Conflict.objects.get(pk=world.labels_conflict.pk).resolved
    if labels is not None:
        assert Issue.objects.get(pk=world.beta_issue.pk).labels == stored_labels(labels)


ENDPOINTS = [
    Endpoint(
        "issues__create",
        "POST",
        lambda world, pk: "/api/v1/issues/",
        201,
        valid=lambda world: {"connection": world.alpha.pk, "title": "New issue"},
        fill=lambda world, text, labels: {
            "connection": world.alpha.pk,
            "title": "New issue",
            **_issue_fill(world, text, labels),
        },
        wrong_types=lambda world: {"connection": str(world.alpha.pk), "title": 42, "labels": "x"},
        check=_check_created_issue,
        has_id=False,
        takes_text=True,
        takes_labels=True,
    ),
    Endpoint(
        "issues__update",
        "PATCH",
        _issue_path(""),
        200,
        valid=lambda world: {"title": "Renamed"},
        empty_status=200,  # nothing to change
        fill=lambda world, text, labels: {
            key: value
            for key, value in _issue_fill(world, text, labels).items()
            if key != "body"  # the body is in conflict (409); title and labels are not
        },
        wrong_types=lambda world: {"title": ["a list"], "labels": [1, 2], "state": True},
        check=_check_updated_issue,
        takes_text=True,
        takes_labels=True,
    ),
    Endpoint("issues__close", "POST", _issue_path("close/"), 200, check=_check_closed),
    Endpoint("issues__reopen", "POST", _issue_path("reopen/"), 200, check=_check_open),
    Endpoint("issues__refresh", "POST", _issue_path("refresh/"), 200, check=_check_refreshed),
    Endpoint(
        "configs__create",
        "POST",
        lambda world, pk: "/api/v1/sync/configs/",
        201,
        valid=lambda world: _connection_body(),
        fill=lambda world, text, labels: _connection_body(text or "fresh", labels),
        wrong_types=lambda world: {**_connection_body(), "enabled": "yes please", "name": 7},
        check=_check_created_connection,
        has_id=False,
        takes_text=True,
        takes_labels=True,
    ),
    Endpoint(
        "configs__replace",
        "PUT",
        _config_path(""),
        200,
        valid=lambda world: _connection_body("alpha"),
        fill=lambda world, text, labels: _connection_body(text or "alpha", labels),
        wrong_types=lambda world: {**_connection_body(), "poll_interval_seconds": "often"},
        check=_check_alpha_connection,
        takes_text=True,
        takes_labels=True,
    ),
    Endpoint(
        "configs__update",
        "PATCH",
        _config_path(""),
        200,
        valid=lambda world: {"enabled": False},
        empty_status=200,
        fill=lambda world, text, labels: {
            **({} if text is None else {"name": text}),
            **({} if labels is None else {"label_filter": labels}),
        },
        wrong_types=lambda world: {"label_filter": "bug", "base_url": 12},
        check=_check_alpha_connection,
        takes_text=True,
        takes_labels=True,
    ),
    Endpoint("configs__delete", "DELETE", _config_path(""), 204, check=_check_deleted),
    Endpoint("configs__sync", "POST", _config_path("sync/"), 202, check=_check_sync_queued),
    Endpoint(
        "conflicts__resolve",
        "POST",
        _resolve_path(labels=False),
        200,
        valid=lambda world: {"strategy": "remote_wins"},
        fill=lambda world, text, labels: (
            None if text is None else {"strategy": "merge", "values": {"body": text}}
        ),
        wrong_types=lambda world: {"strategy": ["merge"], "values": "body"},
        check=_check_resolved_body,
        takes_text=True,
    ),
    Endpoint(
        "conflicts__resolve_labels",
        "POST",
        _resolve_path(labels=True),
        200,
        valid=lambda world: {"strategy": "local_wins"},
        fill=lambda world, text, labels: (
            None if labels is None else {"strategy": "merge", "values": {"labels": labels}}
        ),
        wrong_types=lambda world: {"strategy": "merge", "values": {"labels": "bug"}},
        check=_check_resolved_labels,
        takes_labels=True,
    ),
]


# --- requests and cases ------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Sent:
    body: bytes = b""
    content_type: str | None = "application/json"
    auth: str | None = "staff"  # "staff": the staff token; None: no header; else the header
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    pk: int | None = None  # the id in the path (None: the endpoint's real object)
    # Accepted odd input: what check() must find stored.
    text: str | None = None
    labels: list[str] | None = None


# What a case expects: a status (a refusal, nothing stored) or SUCCESS (the endpoint's own
# success status, then its check).
SUCCESS = 0


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[Endpoint, HostileWorld], Sent]
    expect: Callable[[Endpoint], int]
    applies: Callable[[Endpoint], bool] = lambda endpoint: True


def as_json(value: Any) -> bytes:
    return json.dumps(value).encode()


def _valid_sent(endpoint: Endpoint, world: HostileWorld, **changes: Any) -> Sent:
    body = as_json(endpoint.valid(world)) if endpoint.valid else b""
    return dataclasses.replace(Sent(body=body), **changes)


def _raw(body: bytes, content_type: str = "application/json") -> Callable[..., Sent]:
    def build(endpoint: Endpoint, world: HostileWorld) -> Sent:
        return Sent(body=body, content_type=content_type)

    return build


def _text_case(
    name: str,
    expect: Callable[[Endpoint], int],
    text: str | None,
    labels: list[str] | None,
    *,
    keep: bool = False,
    escape: str | None = None,
    applies: Callable[[Endpoint], bool] | None = None,
) -> Case:
    """The endpoint's body carrying `text` and/or `labels`. `keep`: accepted, so check() must
    find them stored. `escape` goes raw into the JSON where the text says MARK."""

    def build(endpoint: Endpoint, world: HostileWorld) -> Sent:
        filled = endpoint.fill(
            world,
            text if endpoint.takes_text else None,
            labels if endpoint.takes_labels else None,
        )
        assert filled is not None
        body = as_json(filled)
        if escape is not None:
            body = body.replace(b"MARK", escape.encode())
        if not keep:
            return Sent(body=body)
        return Sent(
            body=body,
            text=text if endpoint.takes_text else None,
            labels=labels if endpoint.takes_labels else None,
        )

    def takes(endpoint: Endpoint) -> bool:
        return (text is not None and endpoint.takes_text) or (
            labels is not None and endpoint.takes_labels
        )

    return Case(name, build, expect, applies or takes)


def _deep_in_field(depth: int) -> Callable[[Endpoint, HostileWorld], Sent]:
    def build(endpoint: Endpoint, world: HostileWorld) -> Sent:
        assert endpoint.valid is not None
        body = endpoint.valid(world)
        # The last field: for resolve that is `values`, a JSONField walked again when valid.
        key = list(body)[-1]
        nested = "[" * depth + "]" * depth
        marker = "DEEP-NESTING-HERE"
        raw = as_json({**body, key: {"deep": marker}})
        assert as_json(marker) in raw
        return Sent(body=raw.replace(as_json(marker), nested.encode()))

    return build


def _thirty_mb(endpoint: Endpoint, world: HostileWorld) -> Sent:
    # A valid request padded to 30 MB: only its size is wrong.
    valid = as_json(endpoint.valid(world) if endpoint.valid else {"note": "no body expected"})
    return Sent(body=b'{"padding":"' + PADDING + b'",' + valid[1:])


def _wrong_types(endpoint: Endpoint, world: HostileWorld) -> Sent:
    assert endpoint.wrong_types is not None
    return Sent(body=as_json(endpoint.wrong_types(world)))


def _unknown_field(endpoint: Endpoint, world: HostileWorld) -> Sent:
    assert endpoint.valid is not None
    return Sent(body=as_json({**endpoint.valid(world), "tilte": "a typo"}))


def _id(pk: int) -> Callable[..., Sent]:
    def build(endpoint: Endpoint, world: HostileWorld) -> Sent:
        if endpoint.has_id:
            return _valid_sent(endpoint, world, pk=pk)
        return Sent(body=as_json({"connection": pk, "title": "t"}))  # issues__create

    return build


def refused(status: int) -> Callable[[Endpoint], int]:
    return lambda endpoint: status


def body_refused(status: int) -> Callable[[Endpoint], int]:
    """`status` where the body is read; an endpoint without a body ignores it."""
    return lambda endpoint: status if endpoint.reads_body else SUCCESS


def _no_data_status(endpoint: Endpoint) -> int:
    """No data at all: the endpoint's required fields are missing, or there is nothing to do."""
    if not endpoint.reads_body or endpoint.empty_status < 300:
        return SUCCESS
    return endpoint.empty_status


def _id_status(endpoint: Endpoint) -> int:
    return 404 if endpoint.has_id else 400  # issues__create: the connection id is a field


def reads_body(endpoint: Endpoint) -> bool:
    return endpoint.reads_body


def takes_an_id(endpoint: Endpoint) -> bool:
    return endpoint.has_id or endpoint.name == "issues__create"


def takes_a_title(endpoint: Endpoint) -> bool:
    return endpoint.name in ("issues__create", "issues__update")


CASES = [
    Case("request__valid", _valid_sent, refused(SUCCESS)),
    Case("auth__missing", lambda e, w: _valid_sent(e, w, auth=None), refused(401)),
    Case("auth__bad_token", lambda e, w: _valid_sent(e, w, auth="Bearer not-a-key"), refused(401)),
    Case("auth__scheme_only", lambda e, w: _valid_sent(e, w, auth="Bearer"), refused(401)),
    Case(
        "auth__three_words",
        lambda e, w: _valid_sent(e, w, auth=f"Token {w.staff_key} extra"),
        refused(401),
    ),
    Case(
        "auth__non_ascii_token", lambda e, w: _valid_sent(e, w, auth="Bearer clé\xff"), refused(401)
    ),
    Case(
        "auth__overlong_token",
        lambda e, w: _valid_sent(e, w, auth="Bearer " + "k" * 10_000),
        refused(401),
    ),
    Case("ids__nonexistent", _id(MISSING_ID), _id_status, takes_an_id),
    Case("ids__out_of_range", _id(HUGE_ID), _id_status, takes_an_id),
    Case("body__garbage_json", _raw(b'{"title": "unterminated'), body_refused(400)),
    Case("body__invalid_utf8", _raw(b'{"title": "\xff\xfe\xfd"}'), body_refused(400)),
    Case("body__empty", _raw(b""), _no_data_status),
    Case("shape__list", _raw(b"[1, 2, 3]"), body_refused(400)),
    Case("shape__string", _raw(b'"title"'), body_refused(400)),
    Case("shape__number", _raw(b"42"), body_refused(400)),
    Case("shape__null", _raw(b"null"), body_refused(400)),
    Case("shape__boolean", _raw(b"true"), body_refused(400)),
    Case(
        "shape__wrong_field_types",
        _wrong_types,
        refused(400),
        lambda e: e.wrong_types is not None,
    ),
    Case("shape__unknown_field", _unknown_field, refused(400), reads_body),
    Case("nesting__10000_deep", _raw(b"[" * 10_000 + b"]" * 10_000), body_refused(400)),
    Case("nesting__10000_deep_in_a_field", _deep_in_field(10_000), refused(400), reads_body),
    Case("nesting__500_deep_in_a_field", _deep_in_field(500), refused(400), reads_body),
    _text_case(
        "nesting__brackets_inside_strings",
        refused(SUCCESS),
        BRACKETS_TEXT,
        None,
        keep=True,
        applies=lambda e: e.name in ("issues__create", "issues__update", "conflicts__resolve"),
    ),
    # Over API_MAX_BODY_BYTES: 413 before reading, whether or not the endpoint takes a body.
    Case("size__30_mb", _thirty_mb, refused(413)),
    Case("content_type__text_plain", _raw(b'{"title": "x"}', "text/plain"), body_refused(415)),
    Case(
        "content_type__form",
        _raw(b"title=x", "application/x-www-form-urlencoded"),
        body_refused(415),
    ),
    Case(
        "content_type__multipart",
        _raw(b"--b\r\n\r\nx\r\n--b--\r\n", "multipart/form-data; boundary=b"),
        body_refused(415),
    ),
    Case(
        "content_type__missing",
        lambda e, w: _valid_sent(e, w, content_type=None),
        body_refused(415),
    ),
    Case(
        "content_type__unknown_charset",  # ignored: the body is read as UTF-8
        lambda e, w: _valid_sent(e, w, content_type="application/json; charset=x-nonsense"),
        refused(SUCCESS),
    ),
    Case(
        "content_type__utf16_charset_on_utf8",
        lambda e, w: _valid_sent(e, w, content_type="application/json; charset=utf-16"),
        body_refused(400),
    ),
    Case(
        "idempotency__garbage_body",
        lambda e, w: Sent(body=b"{nope", headers={"Idempotency-Key": "k-1"}),
        refused(400),
    ),
    Case(
        "idempotency__bad_key",
        lambda e, w: _valid_sent(e, w, headers={"Idempotency-Key": "clé \x7f"}),
        refused(400),
    ),
    _text_case("text__unicode_and_controls", refused(SUCCESS), ODD_TEXT, ODD_LABELS, keep=True),
    _text_case("text__nul_in_text", refused(400), "before\x00after", None),
    _text_case("text__nul_in_a_label", refused(400), None, ["ok", "bad\x00label"]),
    _text_case("text__lone_surrogate", refused(400), "lone MARK here", None, escape="\\ud800"),
    _text_case("text__overlong", refused(400), OVERLONG_TEXT, None),
    _text_case(
        "text__title_at_the_limit",
        refused(SUCCESS),
        LIMIT_TITLE,
        None,
        keep=True,
        applies=takes_a_title,
    ),
    _text_case("labels__empty_name", refused(400), None, ["ok", ""]),
    _text_case("labels__100", refused(SUCCESS), None, HUNDRED_LABELS, keep=True),
    _text_case("labels__10000", refused(400), None, MANY_LABELS),
]


def _params() -> Iterator[Any]:
    for endpoint in ENDPOINTS:
        for case in CASES:
            if case.applies(endpoint):
                yield pytest.param(endpoint, case, id=f"{endpoint.name}-{case.name}")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _fresh_throttle_budget() -> None:
    cache.clear()  # throttle counters must not carry over from one test's user to the next


@pytest.fixture(scope="module")
def tracker() -> Iterator[tuple[FakeGitea, int]]:
    """A fake Gitea holding the alpha connection's issue #1, for refresh."""
    with FakeGitea(repository="acme/alpha", token="alpha-token") as fake:
        issue = fake.seed_issue(title="Issue 1", labels=["bug"], assignees=["alice"])
        yield fake, issue.id


@pytest.fixture
def world(db: Any, tracker: tuple[FakeGitea, int]) -> HostileWorld:
    return HostileWorld(*tracker)


def send(endpoint: Endpoint, world: HostileWorld, sent: Sent) -> tuple[Any, CountingStream]:
    """The request as a WSGI server hands it over, counting the body bytes the view reads."""
    headers = dict(sent.headers)
    if sent.auth == "staff":
        headers["Authorization"] = f"Bearer {world.staff_key}"
    elif sent.auth is not None:
        headers["Authorization"] = sent.auth
    stream = CountingStream(sent.body)
    environ: dict[str, Any] = {"wsgi.input": stream, "CONTENT_LENGTH": str(len(sent.body))}
    if sent.content_type is not None:
        environ["CONTENT_TYPE"] = sent.content_type
    path = endpoint.path(world, sent.pk)
    response = Client().generic(endpoint.method, path, headers=headers, **environ)
    return response, stream


# --- the matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize(("endpoint", "case"), list(_params()))
def test_hostile_api_write(world: HostileWorld, endpoint: Endpoint, case: Case) -> None:
    sent = case.build(endpoint, world)
    expected = case.expect(endpoint)
    before = db_state() if expected != SUCCESS else None

    response, stream = send(endpoint, world, sent)

    assert response.status_code < 500, response.content[:500]
    assert stream.bytes_read <= settings.API_MAX_BODY_BYTES + 1
    if len(sent.body) > settings.API_MAX_BODY_BYTES:
        assert stream.bytes_read == 0  # refused (or ignored) without reading it
    if expected == SUCCESS:
        assert response.status_code == endpoint.success, response.content[:500]
        endpoint.check(world, response, sent.text, sent.labels)
        return
    assert response.status_code == expected, response.content[:500]
    assert response["Content-Type"].startswith("application/json")
    error = response.json()
    assert isinstance(error, dict) and error  # says what is wrong
    assert db_state() == before  # nothing created or changed
