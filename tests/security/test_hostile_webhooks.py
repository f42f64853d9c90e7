"""Hostile webhook deliveries: every provider URL by every hostile case → the SPEC §6 answer.

Production hardening, item 4. The matrix crosses the six `/webhooks/<provider>/` URLs with
the cases in CASES (named Zulip-style, `<what>__<variant>`). For gitea, github and gitlab
the requests start as deliveries the fake trackers build — shaped and signed like the real
ones — and are then damaged; jira and openproject have stable URLs but no provider
yet, so every case there, even a correctly signed delivery to a configured connection, must
answer 404.

"Nothing stored wrongly": for 204/400/401/404/413 no WebhookDelivery, Issue or SyncLog row
and no `last_webhook_at`; for 202 exactly one delivery holding the very bytes sent — and,
once processed, exactly the issue a user would expect.

The text rule (what the mirror stores of the text a tracker sends):
- U+0000 is removed: PostgreSQL text and jsonb cannot hold it. A label left empty is dropped.
- A lone surrogate (only a JSON escape such as "\\ud800" can carry one) becomes U+FFFD: it
  cannot be encoded as UTF-8, and no tracker could have stored it.
- Everything else is kept exactly: the other C0/C1 controls (CR, LF, TAB, ESC, BEL, DEL,
  U+0085), U+2028/U+2029, the BOM, bidi controls, zero-width characters, combining marks
  (no Unicode normalisation: "e" + U+0301 and "é" stay two different labels), astral-plane
  characters, and leading or trailing spaces.
- What cannot fit the mirror's columns: a title is cut to 1000 characters, a milestone to 300
  (real trackers allow 255/256, Trello 16,384); a URL over 1000 characters, or holding a NUL,
  is dropped (a cut URL would point nowhere). An id or number over 64 bits is a 400.

GitLab signs nothing: X-Gitlab-Token is the shared secret itself, so "the signature of
another body" is, for GitLab, the token of another GitLab connection's hook.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from integrations.fake_trackers.base import FakeIssue, FakeTracker
from integrations.fake_trackers.gitea import FakeGitea, go_json
from integrations.fake_trackers.github import FakeGitHub
from integrations.fake_trackers.gitlab import FakeGitLab
from integrations.models import Connection, DeliveryStatus, WebhookDelivery
from integrations.providers.base import MAX_URL_LENGTH
from issues.canonical import MAX_MILESTONE_LENGTH, MAX_TITLE_LENGTH
from issues.inbound import process_delivery
from issues.models import Issue, SyncLog
from tests.security.streams import CountingStream
from tests.shared_data import (
    gitea_signature,
    github_signature,
)

SECRET = "hostile-matrix-secret"
OTHER_SECRET = "another-connections-secret"
WRONG_SECRET = "not-the-secret"
REPOSITORY = "acme/widgets"
OTHER_REPOSITORY = "acme/gadgets"
STRANGER_REPOSITORY = "stranger/things"
IMPLEMENTED = ("gitea", "github", "gitlab")
# Jira, Trello and OpenProject carry their intake matrices in tests/providers
# (test_jira_intake.py, test_trello_webhooks.py, test_openproject_webhooks.py): their payloads
# are not issue-shaped like these three trackers' (Trello's and Jira's are re-read).
THIRTY_MB = 30 * 1024 * 1024
# Built once for the module: each 30 MB case wraps it in a payload of its provider.
PADDING = b"x" * THIRTY_MB

# --- the text a hostile (or just unusual) tracker user types ---------------------------------

CONTROL_TITLE = (
    "Crash 🐛 on «сохранить» — עברית \u200fRTL\u200f مرحبا \u202eevil\u202c e\u0301 vs é "
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 👩\u200d💻 NUL[\x00] CR[\r] LF[\n] TAB[\t] ESC[\x1b[31m] BEL[\x07] DEL[\x7f] "
    "NEL[\x85] LS[\u2028] PS[\u2029] BOM[\ufeff] ZWSP[\u200b]  "
)
CONTROL_BODY = "line one\r\nline two\x00 with NUL\n\x1b]0;title\x07\n\u2028after LS\n🏳️\u200d🌈"
CONTROL_LABELS = (
    "🐛 bug",
    "עברית",
    "e\u0301",  # decomposed …
    "é",  # … and precomposed: two labels, no normalisation
    "nul\x00inside",
    "\x00",  # nothing but NUL: dropped
    "esc\x1b[0m",
    "line\u2028sep",
    "𝔘𝔫𝔦",
    " padded ",
    "cr\rlf\n",
)
# A lone surrogate cannot even be put in a Python str that is encoded to bytes, so payloads
# carry these markers and the JSON escapes replace them in the body (then it is re-signed).
SURROGATE_MARKERS = {"LONE-HIGH": b"\\ud800", "LONE-LOW": b"\\udfff"}
SURROGATE_TITLE = "lone LONE-HIGH high and LONE-LOW low, a real pair 😀"
SURROGATE_LABELS = ("LONE-HIGH", "ok-LONE-LOW")
# JSON brackets inside strings are no nesting: the depth check must not count them.
BRACKETS_BODY = '[[{{ "quoted \\" [ { ' + "[" * 10_000 + "{" * 10_000
BRACKETS_TITLE = 'brackets [ { and a \\ backslash " quote ] }'
MANY_LABELS = tuple(f"label-{n:05d}-🏷" for n in range(10_000))


def stored_text(text: str) -> str:
    """The text rule above, written out independently of the code under test."""
    cleaned = text.replace("\x00", "")
    return "".join("\ufffd" if 0xD800 <= ord(char) <= 0xDFFF else char for char in cleaned)


def stored_labels(labels: tuple[str, ...]) -> list[str]:
    return sorted({stored_text(label) for label in labels} - {""})


def with_surrogates(text: str) -> str:
    """What SURROGATE_MARKERS stand for, as Python text (for the expected values)."""
    return text.replace("LONE-HIGH", "\ud800").replace("LONE-LOW", "\udfff")


# --- requests --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Hook:
    """One webhook request: the raw body and the headers (signature included)."""

    body: bytes
    headers: Mapping[str, str]
    content_type: str = "application/json"

    def replace(self, **changes: Any) -> Hook:
        return dataclasses.replace(self, **changes)


@dataclasses.dataclass(frozen=True)
class ExpectedIssue:
    title: str
    body: str
    labels: list[str]
    milestone: str | None = None
    remote_url: str | None = None  # None: not checked


# --- per provider: how its deliveries look and are signed -----------------------------------


class Kit:
    """Builds a provider's deliveries and knows where its payload keeps what."""

    provider: str
    signature_headers: tuple[str, ...]
    issue_key: str  # where the payload keeps the issue
    number_key: str
    url_key: str = "html_url"
    delivery_header: str = ""  # the header naming the delivery (for dedupe), if any
    unknown_event: str

    def hook(
        self,
        *,
        title: str,
        body: str = "",
        labels: tuple[str, ...] = ("bug",),
        milestone: str | None = None,
    ) -> Hook:
        raise NotImplementedError

    def stranger_hook(self) -> Hook:
        """A valid delivery, signed with SECRET, for a repository no connection has."""
        raise NotImplementedError

    def connection_values(self) -> dict[str, Any]:
        """Where the connection reaches the tracker (the fake, for a processing re-read)."""
        raise NotImplementedError

    def unsigned_tracker_hook(self) -> Hook:
        """What the tracker sends when the hook on its side has no secret."""
        raise NotImplementedError

    def encode(self, payload: Any) -> bytes:
        return json.dumps(payload).encode()

    def sign(self, hook: Hook, secret: str, *, signed_body: bytes | None = None) -> Hook:
        """`hook` with the signature of `signed_body` (default: its own body) by `secret`."""
        raise NotImplementedError

    def unsign(self, hook: Hook) -> Hook:
        headers = {k: v for k, v in hook.headers.items() if k not in self.signature_headers}
        return hook.replace(headers=headers)

    def with_event(self, hook: Hook, event: str) -> Hook:
        raise NotImplementedError

    def with_labels(self, payload: dict[str, Any], labels: tuple[str, ...]) -> None:
        raise NotImplementedError

    def issue_of(self, payload: dict[str, Any]) -> dict[str, Any]:
        issue: dict[str, Any] = payload[self.issue_key]
        return issue

    def rewrite(self, hook: Hook, change: Callable[[Any], Any]) -> Hook:
        """Decode, change (the callable may return a replacement payload), re-encode, re-sign."""
        payload = json.loads(hook.body)
        replaced = change(payload)
        body = self.encode(payload if replaced is None else replaced)
        return self.sign(hook.replace(body=body), SECRET)


class FakeKit(Kit):
    """An implemented provider: deliveries come from its fake tracker."""

    def __init__(self, fake: FakeTracker, stranger: FakeTracker, unsigned: FakeTracker) -> None:
        self.fake, self.stranger, self.unsigned = fake, stranger, unsigned

    def _build(self, fake: FakeTracker, issue: FakeIssue) -> Hook:
        outgoing = fake.build_webhook(issue, "opened")
        assert outgoing is not None
        headers = {k: v for k, v in outgoing.headers.items() if k.lower() != "content-type"}
        return Hook(body=outgoing.body, headers=headers)

    def hook(
        self,
        *,
        title: str,
        body: str = "",
        labels: tuple[str, ...] = ("bug",),
        milestone: str | None = None,
    ) -> Hook:
        issue = self.fake.seed_issue(
            title=title, body=body, labels=list(labels), milestone=milestone
        )
        return self._build(self.fake, issue)

    def stranger_hook(self) -> Hook:
        return self._build(self.stranger, self.stranger.seed_issue(title="not ours"))

    def unsigned_tracker_hook(self) -> Hook:
        return self._build(self.unsigned, self.unsigned.seed_issue(title="unsigned"))

    def connection_values(self) -> dict[str, Any]:
        return {"base_url": self.fake.url, "api_token": self.fake.token}


class GiteaKit(FakeKit):
    provider = "gitea"
    signature_headers = (
        "X-Gitea-Signature",
        "X-Gogs-Signature",
        "X-Hub-Signature",
        "X-Hub-Signature-256",
    )
    issue_key = "issue"
    number_key = "number"
    delivery_header = "X-Gitea-Delivery"
    unknown_event = "wiki_page_edited"

    def encode(self, payload: Any) -> bytes:
        return go_json(payload)

    def sign(self, hook: Hook, secret: str, *, signed_body: bytes | None = None) -> Hook:
        signature = gitea_signature(secret, hook.body if signed_body is None else signed_body)
        headers = dict(self.unsign(hook).headers)
        headers.update(
            {
                "X-Gitea-Signature": signature,
                "X-Gogs-Signature": signature,
                "X-Hub-Signature-256": f"sha256={signature}",
            }
        )
        return hook.replace(headers=headers)

    def with_event(self, hook: Hook, event: str) -> Hook:
        headers = dict(hook.headers)
        for name in ("X-Gitea-Event", "X-Gitea-Event-Type", "X-Gogs-Event", "X-Gogs-Event-Type"):
            headers[name] = event
        return hook.replace(headers=headers)

    def with_labels(self, payload: dict[str, Any], labels: tuple[str, ...]) -> None:
        # Gitea's label objects, written here: the fake's own label registry is quadratic.
        payload["issue"]["labels"] = [
            {"id": 50_000 + n, "name": name, "exclusive": False, "color": "c5def5"}
            for n, name in enumerate(labels)
        ]


class GitHubKit(FakeKit):
    provider = "github"
    signature_headers = ("X-Hub-Signature", "X-Hub-Signature-256")
    issue_key = "issue"
    number_key = "number"
    delivery_header = "X-GitHub-Delivery"
    unknown_event = "sponsorship_of_the_moon"

    def encode(self, payload: Any) -> bytes:
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    def sign(self, hook: Hook, secret: str, *, signed_body: bytes | None = None) -> Hook:
        headers = dict(self.unsign(hook).headers)
        headers["X-Hub-Signature-256"] = github_signature(
            secret, hook.body if signed_body is None else signed_body
        )
        return hook.replace(headers=headers)

    def with_event(self, hook: Hook, event: str) -> Hook:
        return hook.replace(headers={**hook.headers, "X-GitHub-Event": event})

    def with_labels(self, payload: dict[str, Any], labels: tuple[str, ...]) -> None:
        assert isinstance(self.fake, FakeGitHub)
        payload["issue"]["labels"] = [self.fake.render_label(name) for name in labels]

    def connection_values(self) -> dict[str, Any]:
        assert isinstance(self.fake, FakeGitHub)
        return {"base_url": self.fake.api_url, "api_token": self.fake.token}


class GitLabKit(FakeKit):
    provider = "gitlab"
    signature_headers = ("X-Gitlab-Token",)
    issue_key = "object_attributes"
    number_key = "iid"
    url_key = "url"
    delivery_header = "Idempotency-Key"
    unknown_event = "Moon Landing Hook"

    def sign(self, hook: Hook, secret: str, *, signed_body: bytes | None = None) -> Hook:
        # GitLab signs nothing: X-Gitlab-Token is the shared secret itself, whatever the body.
        return hook.replace(headers={**self.unsign(hook).headers, "X-Gitlab-Token": secret})

    def with_event(self, hook: Hook, event: str) -> Hook:
        return hook.replace(headers={**hook.headers, "X-Gitlab-Event": event})

    def with_labels(self, payload: dict[str, Any], labels: tuple[str, ...]) -> None:
        assert isinstance(self.fake, FakeGitLab)
        rendered = [self.fake.hook_label(name) for name in labels]
        payload["labels"] = rendered
        payload["object_attributes"]["labels"] = rendered


# --- the cases -------------------------------------------------------------------------------


def quick_connection(**values: Any) -> Connection:
    """A connection row without the post_save hook that syncs its beat schedule: that hook
    costs ~25 ms a connection, a third of a matrix test, and schedules play no part here."""
    (connection,) = Connection.objects.bulk_create([Connection(**values)])
    return connection


@dataclasses.dataclass
class World:
    kit: Kit
    connection: Connection

    def make_other_connection(self) -> Connection:
        """A second connection of the same provider, with its own secret and repository."""
        return quick_connection(
            name=f"{self.kit.provider}-other",
            provider=self.kit.provider,
            repository=OTHER_REPOSITORY,
            webhook_secret=OTHER_SECRET,
            **self.kit.connection_values(),
        )


@dataclasses.dataclass(frozen=True)
class Sent:
    hook: Hook
    path: str = ""  # after /webhooks/<provider>/, e.g. "<connection id>/"
    expected_issue: ExpectedIssue | None = None


def plain(world: World) -> Hook:
    return world.kit.hook(title="A perfectly normal issue", body="Steps: none.")


def _valid(world: World) -> Sent:
    return Sent(
        plain(world),
        expected_issue=ExpectedIssue("A perfectly normal issue", "Steps: none.", ["bug"]),
    )


def _addressed_by_id(world: World) -> Sent:
    return dataclasses.replace(_valid(world), path=f"{world.connection.pk}/")


def _odd_delivery_id(world: World) -> Sent:
    # Over the 200-character column, non-ASCII (what a WSGI server passes on, Latin-1
    # decoded) and with a TAB: kept within the column, and the delivery still applied.
    sent = _valid(world)
    headers = {**sent.hook.headers, world.kit.delivery_header: "dé\tlivery-" + "é" * 300}
    return dataclasses.replace(sent, hook=sent.hook.replace(headers=headers))


def _unknown_connection_id(world: World) -> Sent:
    return Sent(plain(world), path=f"{world.connection.pk + 1000}/")


def _connection_id_out_of_range(world: World) -> Sent:
    return Sent(plain(world), path=f"{2**70}/")


def _no_signature(world: World) -> Sent:
    return Sent(world.kit.unsign(plain(world)))


def _wrong_signature(world: World) -> Sent:
    return Sent(world.kit.sign(plain(world), WRONG_SECRET))


def _garbage_signature(world: World) -> Sent:
    hook = plain(world)
    garbage = {name: "sha256=💥 not hex \t" for name in world.kit.signature_headers}
    return Sent(hook.replace(headers={**world.kit.unsign(hook).headers, **garbage}))


def _signature_of_another_body(world: World) -> Sent:
    kit = world.kit
    if kit.provider == "gitlab":
        # A GitLab token covers no body, so "the signature of another body" cannot exist. The
        # nearest hostile equivalent is a token lifted from another hook: the one another
        # GitLab connection uses (the same as secret__of_another_connection).
        return _secret_of_another_connection(world)
    other = kit.hook(title="a different issue")
    return Sent(kit.sign(plain(world), SECRET, signed_body=other.body))


def _secret_of_another_connection(world: World) -> Sent:
    world.make_other_connection()
    return Sent(world.kit.sign(plain(world), OTHER_SECRET))


def _unsigned_tracker(world: World) -> Sent:
    return Sent(world.kit.unsigned_tracker_hook())


def _secret_not_configured(world: World) -> Sent:
    Connection.objects.filter(pk=world.connection.pk).update(webhook_secret="")
    return Sent(plain(world))


def _resigned(world: World, body: bytes, content_type: str = "application/json") -> Sent:
    hook = plain(world).replace(body=body, content_type=content_type)
    return Sent(world.kit.sign(hook, SECRET))


def _empty_body(world: World) -> Sent:
    return _resigned(world, b"")


def _not_json(world: World) -> Sent:
    return _resigned(world, b"\xff\xfe\x00 this is not JSON {")


def _truncated_json(world: World) -> Sent:
    return _resigned(world, plain(world).body[:-7])


def _form_without_payload(world: World) -> Sent:
    return _resigned(world, b"action=opened&number=1", "application/x-www-form-urlencoded")


def _form_with_garbage_payload(world: World) -> Sent:
    return _resigned(world, b"payload=%7Bnope", "application/x-www-form-urlencoded")


def _shape(value: Any) -> Callable[[World], Sent]:
    def build(world: World) -> Sent:
        return _resigned(world, json.dumps(value).encode())

    return build


def _issue_change(change: Callable[[Kit, dict[str, Any]], Any]) -> Callable[[World], Sent]:
    def build(world: World) -> Sent:
        kit = world.kit
        return Sent(kit.rewrite(plain(world), lambda payload: change(kit, payload)))

    return build


def _nested_10000_bare(world: World) -> Sent:
    return _resigned(world, b"[" * 10_000 + b"]" * 10_000)


def _nested_10000_inside_issue(world: World) -> Sent:
    deep = "[" * 10_000 + "]" * 10_000
    marker = "DEEP-NESTING-HERE"
    hook = world.kit.rewrite(
        plain(world), lambda payload: world.kit.issue_of(payload).update(title=marker)
    )
    body = hook.body.replace(json.dumps(marker).encode(), deep.encode())
    return _resigned(world, body)


def _brackets_in_strings(world: World) -> Sent:
    hook = world.kit.hook(title=BRACKETS_TITLE, body=BRACKETS_BODY)
    return Sent(hook, expected_issue=ExpectedIssue(BRACKETS_TITLE, BRACKETS_BODY, ["bug"]))


def _body_30_mb(world: World) -> Sent:
    # A real delivery padded to 30 MB, correctly signed: only its size is wrong.
    valid = plain(world).body
    assert valid.startswith(b"{")
    return _resigned(world, b'{"padding":"' + PADDING + b'",' + valid[1:])


def _unknown_event(world: World) -> Sent:
    return Sent(world.kit.with_event(plain(world), world.kit.unknown_event))


def _unknown_event_unsigned(world: World) -> Sent:
    kit = world.kit
    return Sent(kit.unsign(kit.with_event(plain(world), kit.unknown_event)))


def _unknown_repository(world: World) -> Sent:
    return Sent(world.kit.stranger_hook())


def _unicode_and_controls(world: World) -> Sent:
    hook = world.kit.hook(title=CONTROL_TITLE, body=CONTROL_BODY, labels=CONTROL_LABELS)
    # GitLab keeps a description's CRLF as LF (its UI and API alike), so its delivery already
    # carries LF; the others deliver the text as it was typed.
    body = CONTROL_BODY.replace("\r\n", "\n") if world.kit.provider == "gitlab" else CONTROL_BODY
    expected = ExpectedIssue(
        stored_text(CONTROL_TITLE), stored_text(body), stored_labels(CONTROL_LABELS)
    )
    return Sent(hook, expected_issue=expected)


def _lone_surrogates(world: World) -> Sent:
    hook = world.kit.hook(title=SURROGATE_TITLE, body=SURROGATE_TITLE, labels=SURROGATE_LABELS)
    body = hook.body
    for marker, escape in SURROGATE_MARKERS.items():
        body = body.replace(marker.encode(), escape)
    title = stored_text(with_surrogates(SURROGATE_TITLE))
    labels = stored_labels(tuple(with_surrogates(label) for label in SURROGATE_LABELS))
    expected = ExpectedIssue(title, title, labels)
    return dataclasses.replace(_resigned(world, body), expected_issue=expected)


def _overlong_title(world: World) -> Sent:
    title = "T" * 4000 + "🐛" * 1000
    hook = world.kit.hook(title=title)
    return Sent(hook, expected_issue=ExpectedIssue(title[:MAX_TITLE_LENGTH], "", ["bug"]))


def _overlong_milestone(world: World) -> Sent:
    milestone = "m" * 250 + "é" * 250
    # GitLab's hook names only the milestone's id: processing re-reads the issue from the fake.
    hook = world.kit.hook(title="milestoned", milestone=milestone)
    expected = ExpectedIssue("milestoned", "", ["bug"], milestone[:MAX_MILESTONE_LENGTH])
    return Sent(hook, expected_issue=expected)


def _unstorable_url(junk: str) -> Callable[[World], Sent]:
    def build(world: World) -> Sent:
        kit = world.kit

        def change(payload: dict[str, Any]) -> None:
            issue = kit.issue_of(payload)
            # Still pointing at this very issue (Gitea only uses a URL that does).
            issue[kit.url_key] = (
                f"https://{junk}.example/{REPOSITORY}/issues/{issue[kit.number_key]}"
            )

        hook = kit.rewrite(plain(world), change)
        expected = ExpectedIssue("A perfectly normal issue", "Steps: none.", ["bug"], None, "")
        return Sent(hook, expected_issue=expected)

    return build


def _ten_thousand_labels(world: World) -> Sent:
    kit = world.kit
    hook = kit.rewrite(plain(world), lambda payload: kit.with_labels(payload, MANY_LABELS))
    expected = ExpectedIssue("A perfectly normal issue", "Steps: none.", sorted(MANY_LABELS))
    return Sent(hook, expected_issue=expected)


def _set_issue_field(key: str, value: Any) -> Callable[[Kit, dict[str, Any]], None]:
    def change(kit: Kit, payload: dict[str, Any]) -> None:
        kit.issue_of(payload)[kit.number_key if key == "<number>" else key] = value

    return change


def _labels_to(value: Any) -> Callable[[Kit, dict[str, Any]], None]:
    def change(kit: Kit, payload: dict[str, Any]) -> None:
        kit.issue_of(payload)["labels"] = value
        if kit.provider == "gitlab":
            payload["labels"] = value  # the hook's top-level copy is the one read first

    return change


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[World], Sent]
    status: int  # for gitea, github and gitlab; the others always answer 404


CASES = [
    Case("delivery__valid", _valid, 202),
    Case("delivery__addressed_by_connection_id", _addressed_by_id, 202),
    Case("delivery__odd_delivery_id", _odd_delivery_id, 202),
    Case("delivery__unknown_connection_id", _unknown_connection_id, 404),
    Case("delivery__connection_id_out_of_range", _connection_id_out_of_range, 404),
    Case("signature__missing", _no_signature, 401),
    Case("signature__wrong_secret", _wrong_signature, 401),
    Case("signature__garbage", _garbage_signature, 401),
    Case("signature__of_another_body", _signature_of_another_body, 401),
    Case("signature__of_another_connection", _secret_of_another_connection, 401),
    Case("signature__unsigned_by_tracker", _unsigned_tracker, 401),
    Case("secret__not_configured", _secret_not_configured, 401),
    Case("body__empty", _empty_body, 400),
    Case("body__not_json", _not_json, 400),
    Case("body__truncated_json", _truncated_json, 400),
    Case("body__form_without_payload", _form_without_payload, 400),
    Case("body__form_with_garbage_payload", _form_with_garbage_payload, 400),
    Case("shape__list", _shape([1, 2, 3]), 400),
    Case("shape__string", _shape("issues"), 400),
    Case("shape__number", _shape(42), 400),
    Case("shape__null", _shape(None), 400),
    Case("shape__empty_object", _shape({}), 400),
    Case("shape__without_issue", _issue_change(lambda k, p: p.pop(k.issue_key)), 400),
    Case("shape__issue_is_a_list", _issue_change(lambda k, p: p.update({k.issue_key: []})), 400),
    Case("shape__title_is_a_number", _issue_change(_set_issue_field("title", 42)), 400),
    Case("shape__number_is_a_string", _issue_change(_set_issue_field("<number>", "7")), 400),
    Case("shape__number_is_a_boolean", _issue_change(_set_issue_field("<number>", True)), 400),
    Case("shape__number_of_150_digits", _issue_change(_set_issue_field("<number>", 10**150)), 400),
    Case("shape__id_of_150_digits", _issue_change(_set_issue_field("id", 10**150)), 400),
    Case("shape__labels_is_a_string", _issue_change(_labels_to("bug")), 400),
    Case("shape__label_is_a_number", _issue_change(_labels_to([42])), 400),
    Case("nesting__10000_deep", _nested_10000_bare, 400),
    Case("nesting__10000_deep_inside_issue", _nested_10000_inside_issue, 400),
    Case("nesting__brackets_inside_strings", _brackets_in_strings, 202),
    Case("size__30_mb", _body_30_mb, 413),
    Case("event__unknown", _unknown_event, 204),
    Case("event__unknown_unsigned", _unknown_event_unsigned, 204),
    Case("repository__unknown", _unknown_repository, 404),
    Case("text__unicode_and_control_characters", _unicode_and_controls, 202),
    Case("text__lone_surrogates", _lone_surrogates, 202),
    Case("labels__10000", _ten_thousand_labels, 202),
    Case("text__title_of_5000_characters", _overlong_title, 202),
    Case("text__milestone_of_500_characters", _overlong_milestone, 202),
    Case("text__url_of_1100_characters", _unstorable_url("u" * 1100), 202),
    Case("text__url_with_nul", _unstorable_url("nul\x00host"), 202),
]


def _params() -> Iterator[Any]:
    for provider in IMPLEMENTED:
        for case in CASES:
            yield pytest.param(provider, case, case.status, id=f"{provider}-{case.name}")


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kits() -> Iterator[dict[str, Kit]]:
    """One set of fake trackers for the module: the fakes hold no database state."""
    fakes: list[FakeTracker] = []

    def started(cls: type[FakeTracker], repository: str, secret: str) -> FakeTracker:
        fake = cls(repository=repository, webhook_secret=secret).start()
        fakes.append(fake)
        return fake

    kits: dict[str, Kit] = {}
    for cls, kit_cls in ((FakeGitea, GiteaKit), (FakeGitHub, GitHubKit), (FakeGitLab, GitLabKit)):
        kit = kit_cls(
            started(cls, REPOSITORY, SECRET),
            started(cls, STRANGER_REPOSITORY, SECRET),
            started(cls, REPOSITORY, ""),
        )
        kits[kit.provider] = kit
    try:
        yield kits
    finally:
        for fake in fakes:
            fake.stop()


def deliver(provider: str, sent: Sent) -> tuple[Any, CountingStream]:
    """POST the hook as a WSGI server would hand it over, counting the body bytes read."""
    hook = sent.hook
    stream = CountingStream(hook.body)
    environ: dict[str, Any] = {
        "wsgi.input": stream,
        "CONTENT_LENGTH": str(len(hook.body)),
        "CONTENT_TYPE": hook.content_type,
    }
    response = Client().generic(
        "POST", f"/webhooks/{provider}/{sent.path}", headers=dict(hook.headers), **environ
    )
    return response, stream


# --- the matrix ------------------------------------------------------------------------------


@pytest.mark.parametrize(("provider", "case", "status"), list(_params()))
def test_hostile_webhook(db: Any, kits: dict[str, Kit], provider: str, case: Case, status: int):
    kit = kits[provider]
    connection = quick_connection(
        name=f"{provider}-hostile",
        provider=provider,
        repository=REPOSITORY,
        webhook_secret=SECRET,
        **kit.connection_values(),
    )
    sent = case.build(World(kit, connection))

    response, stream = deliver(provider, sent)

    assert response.status_code < 500
    assert response.status_code == status, response.content[:300]
    # Nothing reads more than the limit (+1 byte to tell "at the limit" from "over it"), and a
    # body declared too large is refused before a byte of it is read.
    assert stream.bytes_read <= settings.WEBHOOK_MAX_BODY_BYTES + 1
    if len(sent.hook.body) > settings.WEBHOOK_MAX_BODY_BYTES:
        assert stream.bytes_read == 0
    connection.refresh_from_db()
    if status != 202:
        if status != 204:
            assert response["Content-Type"] == "application/json"
            assert response.json()["detail"]
        assert WebhookDelivery.objects.count() == 0
        assert Issue.objects.count() == 0
        assert SyncLog.objects.count() == 0
        assert connection.last_webhook_at is None
        return

    delivery = WebhookDelivery.objects.get()
    assert response.json()["delivery"] == delivery.pk
    assert 0 < len(delivery.delivery_id) <= 200
    assert (delivery.provider, delivery.connection_id) == (provider, connection.pk)
    assert bytes(delivery.body) == sent.hook.body
    assert delivery.status == DeliveryStatus.RECEIVED
    assert connection.last_webhook_at == delivery.received_at
    assert Issue.objects.count() == 0  # applied by the worker, not by the intake

    assert process_delivery(delivery.pk) == "created"
    delivery.refresh_from_db()
    assert delivery.status == DeliveryStatus.PROCESSED, delivery.error
    issue = Issue.objects.get()
    expected = sent.expected_issue
    assert expected is not None
    assert issue.connection_id == connection.pk
    assert issue.title == expected.title
    assert issue.body == expected.body
    assert issue.labels == expected.labels
    assert issue.milestone == expected.milestone
    if expected.remote_url is not None:
        assert issue.remote_url == expected.remote_url
    assert issue.state == "open"
    assert issue.external_number and issue.external_id


def test_the_cut_lengths_are_the_mirror_columns():
    # Tracker text is cut to these so that storing never fails: they must stay the columns'.
    fields = {field.name: field for field in Issue._meta.get_fields()}
    assert fields["title"].max_length == MAX_TITLE_LENGTH  # type: ignore[union-attr]
    assert fields["milestone"].max_length == MAX_MILESTONE_LENGTH  # type: ignore[union-attr]
    assert fields["remote_url"].max_length == MAX_URL_LENGTH  # type: ignore[union-attr]
