"""A simulated Trello (REST API 1) on loopback: one board, its lists, cards, labels, members,
actions, signed webhooks (with the HEAD check at registration) and per-key / per-token 429s.

The canonical FakeIssue is the card: `number` is `idShort`, `state == "closed"` means archived
(a card's list is kept beside it, `card_list(number)`), `milestone` is never rendered. Routes
are the ones in shared/specs/trello.json, plus `GET /boards/{id}` and `GET /boards/{id}/members`
(real, documented routes the trimmed spec left out).
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any

import requests

from integrations.fake_trackers.base import (
    FakeIssue,
    FakeTracker,
    HttpError,
    OutgoingWebhook,
    RecordedRequest,
    Response,
    Route,
    cli_parser,
    serve_cli,
    tracker_options,
)
from integrations.providers.http import parse_timestamp

DEFAULT_BOARD = "5f1b2c3d4e5f60718293a4b5"
_OAUTH = re.compile(r'(\w+)="([^"]*)"')
_ID = re.compile(r"[0-9a-f]{24}")
LIST_FILTERS = frozenset({"all", "closed", "none", "open", "visible"})
RATE_WINDOW_SECONDS = 10.0


def trello_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def signature(secret: str, body: bytes, callback_url: str) -> str:
    digest = hmac.new(secret.encode(), body + callback_url.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


@dataclasses.dataclass
class CardMeta:
    id: str
    short_link: str
    list_id: str
    board: str | None = None  # another board's id once the card moved there


class FakeTrello(FakeTracker):
    provider = "trello"
    max_page_size = 1000
    default_page_size = 1000

    def __init__(
        self,
        *,
        api_key: str = "test-key",
        lists: tuple[str, ...] = ("To Do", "Doing", "Done"),
        api_user: str = "syncbot",
        key_limit: int | None = None,
        token_limit: int | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("repository", DEFAULT_BOARD)
        self._counter = 0
        super().__init__(**kwargs)
        self.api_key = api_key
        self.api_user = api_user
        self.known_users.add(api_user)
        self.board_name = "Syndarix board"
        self.list_ids: dict[str, str] = {name: self._new_id() for name in lists}
        self.label_ids: dict[str, str] = {}
        self.member_ids: dict[str, str] = {}
        self.cards: dict[int, CardMeta] = {}
        self.actions: list[dict[str, Any]] = []
        self.webhooks: dict[str, dict[str, Any]] = {}
        # Trello: 300 requests / 10 s per key, 100 / 10 s per token. Off unless set.
        self.key_limit = key_limit
        self.token_limit = token_limit
        self._calls: dict[str, deque[float]] = {}
        self._actor = threading.local()

    # --- identity ----------------------------------------------------------------------

    def _new_id(self, when: datetime | None = None) -> str:
        """An ObjectId-like id: creation second, then a counter (sorts by creation)."""
        with self.lock:
            self._counter += 1
            stamp = int((when or datetime.now(UTC)).timestamp())
            return f"{stamp:08x}{self._counter:016x}"

    def label_id(self, name: str) -> str:
        with self.lock:
            if name not in self.known_labels:
                self.known_labels.append(name)
            for known in self.known_labels:
                self.label_ids.setdefault(known, self._new_id())
            return self.label_ids[name]

    def member_id(self, username: str) -> str:
        with self.lock:
            for known in sorted(self.known_users):
                self.member_ids.setdefault(known, self._new_id())
            return self.member_ids[username]

    def card_id(self, number: int) -> str:
        return self.cards[number].id

    def card_list(self, number: int) -> str:
        with self.lock:
            list_id = self.cards[number].list_id
            return next(name for name, lid in self.list_ids.items() if lid == list_id)

    def _list_name(self, list_id: str) -> str:
        return next((n for n, lid in self.list_ids.items() if lid == list_id), "")

    @property
    def sender(self) -> str:
        return getattr(self._actor, "login", None) or "alice"

    # --- state helpers (a human in Trello's UI) ------------------------------------------

    def seed_issue(self, *, list_name: str | None = None, **kwargs: Any) -> FakeIssue:
        notify = kwargs.pop("notify", False)
        kwargs["milestone"] = None  # Trello cards have none
        issue = super().seed_issue(**kwargs, notify=False)
        with self.lock:
            for user in issue.assignees:
                self.known_users.add(user)
            card_id = self._new_id(issue.created_at)
            list_id = self.list_ids[list_name] if list_name else next(iter(self.list_ids.values()))
            self.cards[issue.number] = CardMeta(card_id, card_id[-8:], list_id)
            self._record("createCard", issue, notify=notify)
        return issue

    def edit_issue(self, number: int, *, notify: bool = True, **changes: Any) -> FakeIssue:
        changes.pop("milestone", None)
        with self.lock:
            issue = self.issues[number]
            before = issue.copy()
            for key, given in changes.items():
                value = sorted(set(given)) if key in ("labels", "assignees") else given
                if key == "assignees":
                    self.known_users.update(value)
                elif key == "labels":
                    for name in value:
                        self.label_id(name)
                setattr(issue, key, value)
            issue.updated_at = self.now()
            self._record_changes(before, issue, notify=notify)
        return issue

    def move_card(self, number: int, list_name: str, *, notify: bool = True) -> FakeIssue:
        with self.lock:
            issue = self.issues[number]
            meta = self.cards[number]
            old = meta.list_id
            meta.list_id = self.list_ids[list_name]
            issue.updated_at = self.now()
            self._record(
                "updateCard",
                issue,
                card={"idList": meta.list_id},
                old={"idList": old},
                extra={
                    "listBefore": {"id": old, "name": self._list_name(old)},
                    "listAfter": {"id": meta.list_id, "name": list_name},
                },
                notify=notify,
            )
        return issue

    def move_to_board(self, number: int, board: str, *, notify: bool = True) -> None:
        """A human moves the card to another board: it lives on, just not on ours."""
        with self.lock:
            issue = self.issues[number]
            issue.updated_at = self.now()
            self._record(
                "moveCardFromBoard", issue, extra={"boardTarget": {"id": board}}, notify=notify
            )
            self.cards[number].board = board

    def delete_issue(self, number: int, *, notify: bool = True) -> None:
        with self.lock:
            issue = self.issues[number]
            self._record("deleteCard", issue, notify=notify)
            del self.issues[number]
            del self.cards[number]

    def _record_changes(self, before: FakeIssue, after: FakeIssue, *, notify: bool) -> None:
        """The actions Trello records for this change: one per kind, like its UI does."""
        for key, field in (("name", "title"), ("desc", "body")):
            if getattr(before, field) != getattr(after, field):
                self._record(
                    "updateCard",
                    after,
                    card={key: getattr(after, field)},
                    old={key: getattr(before, field)},
                    notify=notify,
                )
        if before.state != after.state:
            closed = after.state == "closed"
            self._record(
                "updateCard",
                after,
                card={"closed": closed},
                old={"closed": not closed},
                notify=notify,
            )
        for name in sorted(set(after.labels) - set(before.labels)):
            self._record("addLabelToCard", after, extra=self._label_data(name), notify=notify)
        for name in sorted(set(before.labels) - set(after.labels)):
            self._record("removeLabelFromCard", after, extra=self._label_data(name), notify=notify)
        for user in sorted(set(after.assignees) - set(before.assignees)):
            self._record("addMemberToCard", after, extra=self._member_data(user), notify=notify)
        for user in sorted(set(before.assignees) - set(after.assignees)):
            self._record(
                "removeMemberFromCard", after, extra=self._member_data(user), notify=notify
            )

    def _label_data(self, name: str) -> dict[str, Any]:
        return {"label": {"id": self.label_id(name), "name": name, "color": None}, "text": name}

    def _member_data(self, username: str) -> dict[str, Any]:
        return {"idMember": self.member_id(username), "member": {"id": self.member_id(username)}}

    # --- actions and webhooks ------------------------------------------------------------

    def render_board(self) -> dict[str, Any]:
        return {
            "id": self.repository,
            "name": self.board_name,
            "desc": "",
            "closed": False,
            "shortLink": self.repository[-8:],
            "url": f"{self.url}/b/{self.repository[-8:]}",
            "shortUrl": f"{self.url}/b/{self.repository[-8:]}",
        }

    def _record(
        self,
        kind: str,
        issue: FakeIssue,
        *,
        card: dict[str, Any] | None = None,
        old: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
        notify: bool = True,
    ) -> dict[str, Any]:
        with self.lock:
            meta = self.cards[issue.number]
            stamp = issue.updated_at
            data: dict[str, Any] = {
                "board": {
                    "id": self.repository,
                    "name": self.board_name,
                    "shortLink": self.repository[-8:],
                },
                "card": {
                    "id": meta.id,
                    "idShort": issue.number,
                    "name": issue.title,
                    "shortLink": meta.short_link,
                    **(card or {}),
                },
                "list": {"id": meta.list_id, "name": self._list_name(meta.list_id)},
                **(extra or {}),
            }
            if old is not None:
                data["old"] = old
            user = self.sender
            action = {
                "id": self._new_id(stamp),
                "idMemberCreator": self.member_id(user) if user in self.known_users else None,
                "type": kind,
                "date": trello_time(stamp),
                "data": data,
                "memberCreator": {"id": None, "username": user, "fullName": user.title()},
            }
            self.actions.append(action)
        if notify:
            self._send_action(action)
        return action

    def _send_action(self, action: dict[str, Any]) -> None:
        with self.lock:
            hooks = [h for h in self.webhooks.values() if h["active"]]
            if not hooks and self.webhook_url:
                hooks = [{"id": None, "callbackURL": self.webhook_url}]
        for hook in hooks:
            payload: dict[str, Any] = {"model": self.render_board(), "action": action}
            if hook["id"]:
                payload["webhook"] = {
                    "id": hook["id"],
                    "idModel": self.repository,
                    "callbackURL": hook["callbackURL"],
                }
            body = json.dumps(payload).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Trello",
                "X-Trello-Webhook": signature(self.webhook_secret, body, hook["callbackURL"]),
            }
            outgoing = OutgoingWebhook(
                event=action["type"], headers=headers, body=body, delivery_id=action["id"]
            )
            outgoing.callback_url = hook["callbackURL"]  # type: ignore[attr-defined]
            self.send_webhook(outgoing)

    def _deliver_one(self, session: requests.Session, hook: OutgoingWebhook) -> None:
        if self.webhook_sink is not None:
            super()._deliver_one(session, hook)
            return
        url = getattr(hook, "callback_url", None) or self.webhook_url
        if not url:
            return
        try:
            session.post(url, data=hook.body, headers=hook.headers, timeout=10)
        except requests.RequestException:
            return

    def build_webhook(self, issue: FakeIssue, action: str, **extra: Any) -> OutgoingWebhook | None:
        return None  # actions are recorded and sent by _record

    # --- rendering -----------------------------------------------------------------------

    def render_card(self, issue: FakeIssue, *, members: bool = False) -> dict[str, Any]:
        meta = self.cards[issue.number]
        card: dict[str, Any] = {
            "id": meta.id,
            "idShort": issue.number,
            "idBoard": meta.board or self.repository,
            "idList": meta.list_id,
            "name": issue.title,
            "desc": issue.body,
            "closed": issue.state == "closed",
            "idLabels": [self.label_id(n) for n in issue.labels],
            "labels": [
                {"id": self.label_id(n), "idBoard": self.repository, "name": n, "color": None}
                for n in issue.labels
            ],
            "idMembers": [self.member_id(u) for u in issue.assignees],
            "shortLink": meta.short_link,
            "shortUrl": f"{self.url}/c/{meta.short_link}",
            "url": f"{self.url}/c/{meta.short_link}/{issue.number}",
            "dateLastActivity": trello_time(issue.updated_at),
            "pos": issue.number * 1024,
        }
        if members:
            card["members"] = [
                {"id": self.member_id(u), "username": u, "fullName": u.title()}
                for u in issue.assignees
            ]
        return card

    # --- HTTP ----------------------------------------------------------------------------

    def _credentials(self, record: RecordedRequest) -> tuple[str | None, str | None]:
        auth = record.headers.get("Authorization") or ""
        if auth.startswith("OAuth "):
            values = dict(_OAUTH.findall(auth))
            return values.get("oauth_consumer_key"), values.get("oauth_token")
        key, token = record.query.get("key", []), record.query.get("token", [])
        return (key[0] if key else None), (token[0] if token else None)

    def _over_limit(self, name: str, limit: int | None) -> bool:
        if limit is None:
            return False
        now = time.monotonic()
        calls = self._calls.setdefault(name, deque())
        while calls and calls[0] <= now - RATE_WINDOW_SECONDS:
            calls.popleft()
        if len(calls) >= limit:
            return True
        calls.append(now)
        return False

    def _respond(self, record: RecordedRequest) -> Response:
        if record.method != "HEAD":
            key, token = self._credentials(record)
            if key != self.api_key:
                return Response(HTTPStatus.UNAUTHORIZED, {"message": "invalid key"})
            if token != self.token:
                return Response(HTTPStatus.UNAUTHORIZED, {"message": "invalid token"})
            with self.lock:
                # Trello answers 429 without Retry-After; its windows are 10 s long.
                if self._over_limit(f"key:{key}", self.key_limit):
                    return Response(
                        HTTPStatus.TOO_MANY_REQUESTS,
                        {"error": "API_KEY_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
                    )
                if self._over_limit(f"token:{token}", self.token_limit):
                    return Response(
                        HTTPStatus.TOO_MANY_REQUESTS,
                        {"error": "API_TOKEN_LIMIT_EXCEEDED", "message": "Rate limit exceeded"},
                    )
        return super()._respond(record)

    def routes(self) -> list[Route]:
        def route(method: str, pattern: str, view: Callable[..., Response]) -> Route:
            return method, re.compile("/1" + pattern), view

        board = r"/boards/(?P<board>[^/]+)"
        card = r"/cards/(?P<card>[^/]+)"
        return [
            route("GET", board, self._get_board),
            route("GET", board + "/lists", self._get_lists),
            route("GET", board + "/labels", self._get_labels),
            route("POST", board + "/labels", self._create_label),
            route("GET", board + "/members", self._get_members),
            route("GET", board + "/cards", self._list_cards),
            route("GET", board + r"/cards/(?P<which>[^/]+)", self._board_card),
            route("GET", board + "/actions", self._list_actions),
            route("POST", "/cards", self._create_card),
            route("GET", card, self._get_card),
            route("PUT", card, self._update_card),
            route("DELETE", card, self._delete_card),
            route("POST", card + "/idLabels", self._add_label),
            route("DELETE", card + r"/idLabels/(?P<label>[^/]+)", self._remove_label),
            route("POST", card + "/idMembers", self._add_member),
            route("DELETE", card + r"/idMembers/(?P<member>[^/]+)", self._remove_member),
            route("POST", "/webhooks", self._create_webhook),
            route("GET", r"/webhooks/(?P<hook>[^/]+)", self._get_webhook),
            route("PUT", r"/webhooks/(?P<hook>[^/]+)", self._update_webhook),
            route("DELETE", r"/webhooks/(?P<hook>[^/]+)", self._delete_webhook),
        ]

    @staticmethod
    def _params(record: RecordedRequest, data: Any) -> dict[str, Any]:
        """Trello reads arguments from the query string and the body alike."""
        params: dict[str, Any] = {k: v[0] for k, v in record.query.items()}
        if isinstance(data, dict):
            params.update(data)
        return params

    def _board_guard(self, board: str) -> None:
        if board not in (self.repository, self.repository[-8:]):
            raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")

    def _card_or_404(self, ref: str) -> FakeIssue:
        with self.lock:
            for number, meta in self.cards.items():
                if ref in (meta.id, meta.short_link):
                    return self.issues[number]
        raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")

    def _as_api(self) -> _Actor:
        return _Actor(self._actor, self.api_user)

    def _card_answer(self, issue: FakeIssue, params: dict[str, Any]) -> Response:
        return Response(200, self.render_card(issue, members=params.get("members") == "true"))

    def _get_board(self, record: RecordedRequest, data: Any, board: str) -> Response:
        self._board_guard(board)
        return Response(200, self.render_board())

    def _get_lists(self, record: RecordedRequest, data: Any, board: str) -> Response:
        self._board_guard(board)
        with self.lock:
            body = [
                {"id": lid, "name": name, "closed": False, "idBoard": self.repository}
                for name, lid in self.list_ids.items()
            ]
        return Response(200, body)

    def _get_labels(self, record: RecordedRequest, data: Any, board: str) -> Response:
        self._board_guard(board)
        with self.lock:
            body = [
                {"id": self.label_id(n), "idBoard": self.repository, "name": n, "color": None}
                for n in self.known_labels
            ]
        return Response(200, body)

    def _create_label(self, record: RecordedRequest, data: Any, board: str) -> Response:
        self._board_guard(board)
        name = self._params(record, data).get("name")
        if not isinstance(name, str):
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for name")
        with self.lock:
            label = {"id": self.label_id(name), "idBoard": self.repository, "name": name}
        return Response(200, {**label, "color": None})

    def _get_members(self, record: RecordedRequest, data: Any, board: str) -> Response:
        self._board_guard(board)
        with self.lock:
            body = [
                {"id": self.member_id(u), "username": u, "fullName": u.title()}
                for u in sorted(self.known_users)
            ]
        return Response(200, body)

    def _cards(self, which: str) -> list[FakeIssue]:
        with self.lock:
            ours = [i for i in self.issues.values() if self.cards[i.number].board is None]
            cards = sorted(ours, key=lambda i: self.cards[i.number].id)
        if which == "all":
            return cards
        if which == "closed":
            return [c for c in cards if c.state == "closed"]
        if which == "none":
            return []
        return [c for c in cards if c.state != "closed"]

    def _list_cards(self, record: RecordedRequest, data: Any, board: str) -> Response:
        self._board_guard(board)
        params = self._params(record, data)
        cards = self._cards(str(params.get("filter", "open")))
        before = params.get("before")
        if isinstance(before, str) and before:
            cards = [c for c in cards if self.cards[c.number].id < before]
        cards.reverse()  # newest first
        try:
            limit = min(int(params.get("limit", self.max_page_size)), self.max_page_size)
        except ValueError as exc:
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for limit") from exc
        with self.lock:
            body = [
                self.render_card(c, members=params.get("members") == "true") for c in cards[:limit]
            ]
        return Response(200, body)

    def _board_card(self, record: RecordedRequest, data: Any, board: str, which: str) -> Response:
        """`/boards/{id}/cards/{filter}` — or one card by id or idShort (`{idCard}`)."""
        self._board_guard(board)
        params = self._params(record, data)
        if which in LIST_FILTERS:
            with self.lock:
                return Response(200, [self.render_card(c) for c in self._cards(which)])
        if which.isascii() and which.isdigit():
            with self.lock:
                issue = self.issues.get(int(which))
                if issue is not None and self.cards[issue.number].board is not None:
                    issue = None  # idShort is per board
            if issue is None:
                raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")
            return self._card_answer(issue, params)
        if _ID.fullmatch(which):
            return self._card_answer(self._card_or_404(which), params)
        raise HttpError(HTTPStatus.BAD_REQUEST, "invalid id")

    def _list_actions(self, record: RecordedRequest, data: Any, board: str) -> Response:
        self._board_guard(board)
        params = self._params(record, data)
        with self.lock:
            actions = list(self.actions)
        kinds = str(params.get("filter") or "all")
        if kinds != "all":
            wanted = set(kinds.split(","))
            actions = [a for a in actions if a["type"] in wanted]
        since = params.get("since")
        if isinstance(since, str) and since:
            if _ID.fullmatch(since):
                actions = [a for a in actions if a["id"] > since]
            else:
                when = parse_timestamp(since)
                if when is None:
                    raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for since")
                actions = [a for a in actions if parse_timestamp(a["date"]) >= when]  # type: ignore[operator]
        before = params.get("before")
        if isinstance(before, str) and before:
            actions = [a for a in actions if a["id"] < before]
        actions.reverse()  # newest first, as Trello answers
        limit = min(int(params.get("limit", 50)), 1000)
        return Response(200, actions[:limit])

    def _get_card(self, record: RecordedRequest, data: Any, card: str) -> Response:
        return self._card_answer(self._card_or_404(card), self._params(record, data))

    @staticmethod
    def _id_list(value: Any) -> list[str]:
        if value is None or value == "":
            return []
        if isinstance(value, list):
            return [str(v) for v in value]
        return [v for v in str(value).split(",") if v]

    def _labels_from_ids(self, ids: list[str]) -> list[str]:
        names = {lid: n for n, lid in self.label_ids.items()}
        if any(i not in names for i in ids):
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for idLabels")
        return sorted({names[i] for i in ids})

    def _members_from_ids(self, ids: list[str]) -> list[str]:
        names = {mid: n for n, mid in self.member_ids.items()}
        if any(i not in names for i in ids):
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for idMembers")
        return sorted({names[i] for i in ids})

    def _create_card(self, record: RecordedRequest, data: Any) -> Response:
        params = self._params(record, data)
        list_id = params.get("idList")
        name = params.get("name")
        with self.lock:
            if list_id not in self.list_ids.values():
                raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for idList")
            if not isinstance(name, str) or not name:
                raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for name")
            labels = self._labels_from_ids(self._id_list(params.get("idLabels")))
            members = self._members_from_ids(self._id_list(params.get("idMembers")))
            with self._as_api():
                issue = self.seed_issue(
                    title=name,
                    body=str(params.get("desc") or ""),
                    labels=labels,
                    assignees=members,
                    list_name=self._list_name(str(list_id)),
                    notify=True,
                )
            return self._card_answer(issue, params)

    def _update_card(self, record: RecordedRequest, data: Any, card: str) -> Response:
        params = self._params(record, data)
        with self.lock:
            issue = self._card_or_404(card)
            changes: dict[str, Any] = {}
            if "name" in params:
                if not isinstance(params["name"], str) or not params["name"]:
                    raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for name")
                changes["title"] = params["name"]
            if "desc" in params:
                changes["body"] = str(params["desc"] or "")
            if "closed" in params:
                closed = params["closed"] in (True, "true")
                changes["state"] = "closed" if closed else "open"
            list_id = params.get("idList")
            if list_id is not None and list_id not in self.list_ids.values():
                raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for idList")
            with self._as_api():
                if changes:
                    self.edit_issue(issue.number, **changes)
                if list_id is not None and list_id != self.cards[issue.number].list_id:
                    self.move_card(issue.number, self._list_name(str(list_id)))
            return self._card_answer(issue, params)

    def _delete_card(self, record: RecordedRequest, data: Any, card: str) -> Response:
        with self.lock:
            issue = self._card_or_404(card)
            with self._as_api():
                self.delete_issue(issue.number)
        return Response(200, {"limits": {}})

    def _set_change(self, card: str, field: str, name: str, add: bool) -> FakeIssue:
        with self.lock:
            issue = self._card_or_404(card)
            values = set(getattr(issue, field))
            if add and name in values:
                what = "label" if field == "labels" else "member"
                raise HttpError(HTTPStatus.BAD_REQUEST, f"that {what} is already on the card")
            if not add and name not in values:
                raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")
            values = values | {name} if add else values - {name}
            with self._as_api():
                change: dict[str, Any] = {field: sorted(values)}
                return self.edit_issue(issue.number, **change)

    def _add_label(self, record: RecordedRequest, data: Any, card: str) -> Response:
        value = str(self._params(record, data).get("value", ""))
        with self.lock:
            name = self._labels_from_ids([value])[0]
            issue = self._set_change(card, "labels", name, True)
            return Response(200, [self.label_id(n) for n in issue.labels])

    def _remove_label(self, record: RecordedRequest, data: Any, card: str, label: str) -> Response:
        with self.lock:
            names = {lid: n for n, lid in self.label_ids.items()}
            if label not in names:
                raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")
            self._set_change(card, "labels", names[label], False)
        return Response(200, {"_value": None})

    def _add_member(self, record: RecordedRequest, data: Any, card: str) -> Response:
        value = str(self._params(record, data).get("value", ""))
        with self.lock:
            name = self._members_from_ids([value])[0]
            issue = self._set_change(card, "assignees", name, True)
            return Response(
                200,
                [
                    {"id": self.member_id(u), "username": u, "fullName": u.title()}
                    for u in issue.assignees
                ],
            )

    def _remove_member(
        self, record: RecordedRequest, data: Any, card: str, member: str
    ) -> Response:
        with self.lock:
            names = {mid: n for n, mid in self.member_ids.items()}
            if member not in names:
                raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")
            issue = self._set_change(card, "assignees", names[member], False)
            return Response(200, [self.member_id(u) for u in issue.assignees])

    def _create_webhook(self, record: RecordedRequest, data: Any) -> Response:
        """Trello sends a HEAD to the callback first and creates nothing without a 200."""
        params = self._params(record, data)
        url, model = params.get("callbackURL"), params.get("idModel")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for callbackURL")
        if model not in (self.repository, self.repository[-8:]):
            raise HttpError(HTTPStatus.BAD_REQUEST, "invalid value for idModel")
        with self.lock:
            if any(h["callbackURL"] == url for h in self.webhooks.values()):
                raise HttpError(
                    HTTPStatus.BAD_REQUEST,
                    "A webhook with that callback, model, and token already exists",
                )
        try:
            status = requests.head(url, timeout=5, allow_redirects=False).status_code
        except requests.RequestException:
            status = 0
        if status != 200:
            raise HttpError(
                HTTPStatus.BAD_REQUEST,
                f"URL ({url}) did not return 200 status code, got {status or 'no answer'}",
            )
        with self.lock:
            hook_id = self._new_id()
            hook: dict[str, Any] = {
                "id": hook_id,
                "description": str(params.get("description") or ""),
                "idModel": self.repository,
                "callbackURL": url,
                "active": True,
            }
            self.webhooks[hook_id] = hook
        return Response(200, hook)

    def _get_webhook(self, record: RecordedRequest, data: Any, hook: str) -> Response:
        with self.lock:
            if hook not in self.webhooks:
                raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")
            return Response(200, dict(self.webhooks[hook]))

    def _update_webhook(self, record: RecordedRequest, data: Any, hook: str) -> Response:
        params = self._params(record, data)
        with self.lock:
            found = self.webhooks.get(hook)
            if found is None:
                raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")
            if "active" in params:
                found["active"] = params["active"] in (True, "true")
            if "callbackURL" in params:
                found["callbackURL"] = str(params["callbackURL"])
            return Response(200, dict(found))

    def _delete_webhook(self, record: RecordedRequest, data: Any, hook: str) -> Response:
        with self.lock:
            if self.webhooks.pop(hook, None) is None:
                raise HttpError(HTTPStatus.NOT_FOUND, "The requested resource was not found.")
        return Response(200, {"_value": None})


class _Actor:
    """Within the block, changes are made by the API user (who an action names)."""

    def __init__(self, local: threading.local, login: str) -> None:
        self._local, self._login = local, login

    def __enter__(self) -> None:
        self._previous = getattr(self._local, "login", None)
        self._local.login = self._login

    def __exit__(self, *exc: object) -> None:
        self._local.login = self._previous


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("Run a simulated Trello API on loopback.", secret_help="app secret")
    parser.add_argument("--api-key", default="test-key")
    args = parser.parse_args(argv)
    options = tracker_options(args)
    if options["repository"] == "acme/widgets":
        options["repository"] = DEFAULT_BOARD
    fake = FakeTrello(api_key=args.api_key, **options)
    for n in range(args.seed):
        fake.seed_issue(title=f"Seeded card {n + 1}", body=f"Card {n + 1}")
    return serve_cli(
        fake,
        lambda: [
            f"Fake Trello serving board {fake.repository} at {fake.url} (API root /1)",
            f"key: {fake.api_key}  token: {fake.token}",
        ],
        webhook_url=args.webhook_url,
    )


if __name__ == "__main__":
    sys.exit(main())
