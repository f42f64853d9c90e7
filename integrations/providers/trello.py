"""Trello (REST API 1): a board's cards as issues, and the signed card webhooks.

SPEC §3: `repository` is the board id; a card is an issue (`name` / `desc`); `closed` ⇔ the
card is archived, or sits in the list named by `config_json.done_list` when that is set;
labels are the board's label names, assignees the members' usernames, milestone always None;
`number` is the card's `idShort`, `remote_url` its `shortUrl`, `tracker_status` its list's
name.

Credentials: `config_json.api_key` (the key) and `api_token` (the token), sent in
`Authorization: OAuth oauth_consumer_key="…", oauth_token="…"` rather than in the query
string, so neither lands in a log line or a proxy's access log. `base_url` is the API root
(`https://api.trello.com`); the client appends `/1`.

Trello has no `since` on cards: an incremental poll reads the board's actions since the
cursor and fetches the cards they touch; a full pass lists every card, archived included.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from integrations.providers.base import (
    SET_FIELDS,
    Capabilities,
    ConfigOption,
    EventKind,
    IssueFields,
    IssueState,
    ListResult,
    MalformedAnswerError,
    NotFoundError,
    RemoteIssue,
    ValidationFailedError,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerifier,
    body_with_marker,
    born_closed,
    set_delta,
    unsent_on_failure,
    validate_config,
)
from integrations.providers.core import NameCache, RestClient, positive_number
from integrations.providers.hooks import SECRET_NOTE, HookOutcome, HookResult
from integrations.providers.http import format_timestamp, parse_timestamp
from integrations.providers.shapes import (
    ShapeError,
    header,
    is_int,
    optional_str,
    require_int,
    require_mapping,
    require_str,
    signature_matches,
)

API_PREFIX = "/1"
DEFAULT_BASE_URL = "https://api.trello.com"
# Colour given to labels this client creates (Trello labels may also be colourless: null).
NEW_LABEL_COLOR = None
# Trello ids are MongoDB ObjectIds: 24 hex digits, the first 8 the creation time in seconds.
_OBJECT_ID = re.compile(r"[0-9a-fA-F]{24}")

# --- config_json (SPEC §3/§6) -----------------------------------------------------------------

CONFIG_OPTIONS = (
    ConfigOption("api_key", "API key", required=True, help_text="The Trello API key."),
    ConfigOption(
        "done_list",
        "Done list",
        help_text="A card in this list counts as closed; closing moves it there.",
    ),
    ConfigOption(
        "new_list", "New-card list", help_text="Where new cards go (default: the first list)."
    ),
)


@dataclasses.dataclass(frozen=True, slots=True)
class TrelloConfig:
    api_key: str
    done_list: str | None = None
    new_list: str | None = None


def trello_config(config: Mapping[str, Any] | None) -> TrelloConfig:
    """`config_json` → TrelloConfig; ValueError naming every bad key."""
    values = validate_config(CONFIG_OPTIONS, config)
    api_key = str(values["api_key"]).strip()
    if not api_key:
        raise ValueError("api_key: required")

    def name(key: str) -> str | None:
        return str(values[key]).strip() or None if key in values else None

    return TrelloConfig(api_key=api_key, done_list=name("done_list"), new_list=name("new_list"))


def oauth_header(api_key: str, token: str) -> str:
    return f'OAuth oauth_consumer_key="{api_key}", oauth_token="{token}"'


# --- JSON → canonical values --------------------------------------------------------------


def _created_at(card_id: str) -> datetime | None:
    if not _OBJECT_ID.fullmatch(card_id):
        return None
    return datetime.fromtimestamp(int(card_id[:8], 16), tz=UTC)


def _label_names(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ShapeError(f"{where} is not a list")
    names: set[str] = set()
    for position, raw in enumerate(value):
        label = require_mapping(raw, f"{where}[{position}]")
        name = optional_str(label, "name", f"{where}[{position}]")
        if name:  # a colour-only label has no name: nothing to mirror
            names.add(name)
    return frozenset(names)


def _string_list(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ShapeError(f"{where} is not a list of strings")
    return list(value)


@dataclasses.dataclass(slots=True)
class BoardNames:
    """What a card names by id and the canonical issue names by name: lists and members."""

    lists: dict[str, str] = dataclasses.field(default_factory=dict)  # list id → name
    members: dict[str, str] = dataclasses.field(default_factory=dict)  # member id → username


def parse_card(
    data: Any,
    *,
    names: BoardNames,
    done_list: str | None = None,
    where: str = "card",
) -> RemoteIssue:
    """A card (API answer with `members=true`) → RemoteIssue; ShapeError if malformed.

    Members come from the card's `members` objects when present, else from `idMembers`
    through `names.members` (a PUT answers ids only); an id no one has named is kept as the
    id rather than dropped (never clear what you cannot map)."""
    data = require_mapping(data, where)
    card_id = require_str(data, "id", where)
    number = require_int(data, "idShort", where)
    if number <= 0:
        raise ShapeError(f"{where}.idShort must be positive")
    closed = data.get("closed", False)
    if not isinstance(closed, bool):
        raise ShapeError(f"{where}.closed is not a boolean")
    list_id = optional_str(data, "idList", where) or ""
    list_name = names.lists.get(list_id, "")
    members = data.get("members")
    if isinstance(members, list):
        assignees = set()
        for position, raw in enumerate(members):
            member = require_mapping(raw, f"{where}.members[{position}]")
            username = require_str(member, "username", f"{where}.members[{position}]")
            member_id = optional_str(member, "id", f"{where}.members[{position}]")
            if member_id:
                names.members[member_id] = username
            assignees.add(username)
    else:
        ids = _string_list(data.get("idMembers"), f"{where}.idMembers")
        assignees = {names.members.get(member_id, member_id) for member_id in ids}
    in_done = done_list is not None and list_name == done_list
    return RemoteIssue(
        external_id=card_id,
        number=str(number),
        title=require_str(data, "name", where),
        body=optional_str(data, "desc", where) or "",
        state=IssueState.CLOSED if closed or in_done else IssueState.OPEN,
        labels=_label_names(data.get("labels"), f"{where}.labels"),
        assignees=frozenset(assignees),
        milestone=None,
        remote_url=optional_str(data, "shortUrl", where) or optional_str(data, "url", where) or "",
        created_at=_created_at(card_id),
        updated_at=parse_timestamp(data.get("dateLastActivity")),
        tracker_status=list_name,
    )


def _sort_key(issue: RemoteIssue) -> tuple[datetime, int]:
    return issue.updated_at or datetime.min.replace(tzinfo=UTC), int(issue.number)


# Card fields a client read asks for (the marker lives in `desc`).
CARD_FIELDS = (
    "id,idShort,name,desc,closed,idList,idBoard,idLabels,labels,idMembers,shortUrl,url,"
    "dateLastActivity"
)
# Actions that change what we mirror of a card.
CARD_ACTIONS = (
    "createCard",
    "updateCard",
    "addLabelToCard",
    "removeLabelFromCard",
    "addMemberToCard",
    "removeMemberFromCard",
    "deleteCard",
    "copyCard",
    "moveCardToBoard",
    "moveCardFromBoard",
    "convertToCardFromCheckItem",
)


# --- the API client -------------------------------------------------------------------------


class TrelloClient(RestClient):
    """One Trello board over one HTTP session with the OAuth header."""

    provider: ClassVar[str] = "trello"
    capabilities: ClassVar[Capabilities] = Capabilities(
        webhooks=True,
        deletion_in_webhooks=True,  # deleteCard
        max_assignees=None,
        max_labels=None,
        milestones=False,  # SPEC §3: none (always null); a local milestone edit is a 400
        labels_predefined=True,  # board labels; created when the connection allows
        conditional_writes=False,
        set_delta_writes=True,  # POST/DELETE /cards/{id}/idLabels, /idMembers
        label_case_insensitive=False,
        assignee_case_insensitive=True,  # Trello usernames are lower case
        webhook_registration=True,
        body_crlf_to_lf=False,
    )
    config_options: ClassVar[tuple[ConfigOption, ...]] = CONFIG_OPTIONS
    # /boards/{id}/cards takes `limit` up to 1000 and pages backwards with `before`.
    max_page_size: ClassVar[int] = 1000
    tracker_name = "Trello"
    repository_noun = "board"

    def _setup(self) -> None:
        root = (self.base_url or DEFAULT_BASE_URL).strip().rstrip("/")
        self.base_url = root[: -len(API_PREFIX)] if root.endswith(API_PREFIX) else root
        self.repository = self.repository.strip()
        try:
            self.options = trello_config(self.config)
        except ValueError as exc:
            raise ValidationFailedError(f"Trello connection config_json: {exc}") from exc
        if not re.fullmatch(r"[A-Za-z0-9]{1,64}", self.repository):
            raise ValidationFailedError(
                f"a Trello board id is letters and digits, got {self.repository!r}"
            )
        self._board = f"boards/{quote(self.repository, safe='')}"
        self._names = BoardNames()
        self._lists_loaded = False
        self._list_order: list[tuple[str, str]] = []  # (id, name), board order
        # The core's name caches: loaded on first use, reloaded once on a miss.
        self._labels: NameCache[str] = NameCache(self._fetch_labels)
        self._members: NameCache[str] = NameCache(self._fetch_members, fold=True)

    def api_root(self) -> str:
        return self.base_url + API_PREFIX

    def auth_headers(self, token: str) -> dict[str, str]:
        # In a header, not the query string: no credential in a log line or a proxy's log.
        return {
            "Authorization": oauth_header(self.options.api_key, token),
            "Accept": "application/json",
        }

    def access_path(self) -> str:
        return self._board

    # --- helpers -----------------------------------------------------------------------

    def _what(self, action: str) -> str:
        return f"Trello: {action} on board {self.repository}"

    def _json(self, response: requests.Response, what: str) -> Any:
        return self.transport.json(response, what=what)

    def _card(self, data: Any, what: str) -> RemoteIssue:
        self._load_lists()
        return self.parse_answer(
            lambda d: parse_card(d, names=self._names, done_list=self.options.done_list),
            data,
            what=what,
        )

    @staticmethod
    def _short_id(number: str | int) -> str:
        return str(positive_number(number, what="a card number"))

    def _load_lists(self) -> None:
        if self._lists_loaded:
            return
        what = self._what("list the lists")
        response = self.transport.request(
            "GET", f"{self._board}/lists", what=what, params={"filter": "all", "fields": "id,name"}
        )
        items = self._json(response, what)
        if not isinstance(items, list):
            raise MalformedAnswerError(f"{what}: unexpected answer: not a list")
        order = []
        for raw in items:
            try:
                item = require_mapping(raw, "list")
                order.append((require_str(item, "id", "list"), require_str(item, "name", "list")))
            except ShapeError as exc:
                raise MalformedAnswerError(f"{what}: unexpected answer: {exc}") from exc
        self._list_order = order
        self._names.lists.update(dict(order))
        self._lists_loaded = True

    def _list_id(self, name: str, *, purpose: str) -> str:
        self._load_lists()
        for list_id, list_name in self._list_order:
            if list_name == name:
                return list_id
        raise ValidationFailedError(
            self._what(f"no list named {name!r} ({purpose})"), field="state"
        )

    def _open_list_id(self) -> str:
        """Where a new or reopened card goes: `new_list`, else the first list not `done_list`."""
        if self.options.new_list:
            return self._list_id(self.options.new_list, purpose="config_json.new_list")
        self._load_lists()
        for list_id, name in self._list_order:
            if name != self.options.done_list:
                return list_id
        raise ValidationFailedError(self._what("the board has no open list"), field="state")

    # --- listing ---------------------------------------------------------------------------

    def _card_params(self) -> dict[str, Any]:
        return {"fields": CARD_FIELDS, "members": "true", "member_fields": "username"}

    def _card_pages(self) -> Iterator[list[Any]]:
        """Every card of the board (archived too), newest first, `limit` per request, paging
        backwards with `before=<oldest id seen>` until a page comes back short (Trello's own
        paging: none of the core's page-number or link styles)."""
        path, listing, what = self.issue_listing(None)
        before: str | None = None
        while True:
            params = {**listing, "limit": self.max_page_size}
            if before is not None:
                params["before"] = before
            response = self.transport.request("GET", path, what=what, params=params)
            items = self._json(response, what)
            if not isinstance(items, list):
                raise MalformedAnswerError(f"{what}: unexpected answer: not a list")
            yield items
            ids: list[str] = [
                i["id"] for i in items if isinstance(i, Mapping) and isinstance(i.get("id"), str)
            ]
            if len(items) < self.max_page_size or not ids:
                return
            oldest = min(ids)
            if before is not None and oldest >= before:
                return  # the tracker ignored `before`: never loop
            before = oldest

    def _touched_cards(self, since: datetime, what: str) -> tuple[list[str], set[str]]:
        """(card ids touched by actions since `since`, newest first; ids deleted meanwhile)."""
        touched: list[str] = []
        deleted: set[str] = set()
        before: str | None = None
        while True:
            params: dict[str, Any] = {
                "since": format_timestamp(since),
                "filter": ",".join(CARD_ACTIONS),
                "limit": 1000,
            }
            if before is not None:
                params["before"] = before
            response = self.transport.request(
                "GET", f"{self._board}/actions", what=what, params=params
            )
            items = self._json(response, what)
            if not isinstance(items, list):
                raise MalformedAnswerError(f"{what}: unexpected answer: not a list")
            for action in items:
                card = _action_card(action)
                if card is None:
                    continue
                if action.get("type") == "deleteCard":
                    deleted.add(card)
                if card not in touched:
                    touched.append(card)
            ids = [
                a["id"] for a in items if isinstance(a, Mapping) and isinstance(a.get("id"), str)
            ]
            if len(items) < 1000 or not ids:
                return touched, deleted
            before = min(ids)

    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        """The full listing (every card, archived too); a poll with `since` reads actions."""
        params = {**self._card_params(), "filter": "all"}
        return f"{self._board}/cards", params, self._what("list cards")

    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        return sorted((self._card(i, what) for i in items), key=_sort_key)

    def fetch_issue_pages(self, *, since: datetime | None = None) -> Iterator[list[RemoteIssue]]:
        what = self._what("list cards")
        if since is None:
            for items in self._card_pages():
                yield self.page_issues(items, what=what)
            return
        touched, deleted = self._touched_cards(since, self._what("read actions"))
        page: list[RemoteIssue] = []
        for card_id in touched:
            if card_id in deleted:
                continue
            try:
                page.append(self._get_card(card_id))
            except NotFoundError:
                continue  # deleted since: the full pass confirms absences
            if len(page) >= self.max_page_size:
                yield sorted(page, key=_sort_key)
                page = []
        if page:
            yield sorted(page, key=_sort_key)

    def list_issues(self, *, since: datetime | None = None, etag: str | None = None) -> ListResult:
        """Trello answers no conditional request: `etag` is ignored and none is returned."""
        before = self.transport.requests_made
        by_id: dict[str, RemoteIssue] = {}
        for page in self.fetch_issue_pages(since=since):
            for issue in page:
                by_id[issue.external_id] = issue
        return ListResult(
            issues=sorted(by_id.values(), key=_sort_key),
            not_modified=False,
            etag=None,
            requests=self.transport.requests_made - before,
            server_time=self.last_server_time,
        )

    # --- single cards ----------------------------------------------------------------------

    def _get_card(self, card_id: str) -> RemoteIssue:
        what = self._what(f"get card {card_id}")
        response = self.transport.request(
            "GET", f"cards/{quote(card_id, safe='')}", what=what, params=self._card_params()
        )
        data = self._json(response, what)
        board = data.get("idBoard") if isinstance(data, Mapping) else None
        if (
            isinstance(board, str)
            and _OBJECT_ID.fullmatch(self.repository)
            and board != self.repository
        ):
            # Moved to another board: it lives on there, but it is no issue of this one.
            raise NotFoundError(f"{what}: the card is now on board {board}", status=404)
        return self._card(data, what)

    def get_issue(self, number: str) -> RemoteIssue:
        """A card by its `idShort`, through the board (the id alone is board-scoped)."""
        short = self._short_id(number)
        what = self._what(f"get card #{short}")
        response = self.transport.request(
            "GET", f"{self._board}/cards/{short}", what=what, params=self._card_params()
        )
        card = self._card(self._json(response, what), what)
        if card.number != short:
            raise MalformedAnswerError(f"{what}: the answer is card #{card.number}")
        return card

    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        with unsent_on_failure(fields) as sent:
            return self._create_issue(fields, marker=marker, sent=sent)

    def _create_issue(
        self, fields: IssueFields, *, marker: str | None, sent: set[str]
    ) -> RemoteIssue:
        if not fields.title:
            raise ValidationFailedError("Trello needs a card name", field="title")
        self._refuse_milestone(fields)
        what = self._what("create card")
        closed_in_done = fields.state == IssueState.CLOSED and self.options.done_list
        body: dict[str, Any] = {
            "name": fields.title,
            "desc": body_with_marker(fields.body, marker),
            "idList": (
                self._list_id(self.options.done_list or "", purpose="config_json.done_list")
                if closed_in_done
                else self._open_list_id()
            ),
            "pos": "bottom",
        }
        if fields.labels:
            body["idLabels"] = ",".join(self._resolve_labels(fields.labels))
        if fields.assignees:
            body["idMembers"] = ",".join(self._resolve_members(fields.assignees))
        # Archived by a second call (a card is created in a list, open).
        sent.update(fields.names() - (set() if closed_in_done else born_closed(fields)))
        response = self.transport.request("POST", "cards", what=what, json=body)
        created = self._card(self._json(response, what), what)
        if fields.state == IssueState.CLOSED and not closed_in_done:
            sent.add("state")
            created = self._put(created, {"closed": True})
        return created

    @staticmethod
    def _refuse_milestone(fields: IssueFields) -> None:
        if isinstance(fields.milestone, str):
            raise ValidationFailedError("Trello cards have no milestone", field="milestone")

    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        """Labels and members as additions and removals against `current` (a label someone
        added meanwhile survives), then name/desc/archive/list in one PUT, whose answer is
        the card's state after our last call."""
        short = self._short_id(number)
        if fields.title is not None and not fields.title:
            raise ValidationFailedError("Trello cannot set an empty card name", field="title")
        self._refuse_milestone(fields)
        with unsent_on_failure(fields) as sent:
            return self._update_card(short, fields, current=current, sent=sent)

    def _update_card(
        self,
        short: str,
        fields: IssueFields,
        *,
        current: RemoteIssue | None,
        sent: set[str],
    ) -> RemoteIssue:
        if current is None:
            current = self.get_issue(short)
        card = current.external_id
        result = current
        changed_sets = False
        if fields.labels is not None:
            add, remove = set_delta(current.labels, fields.labels)
            if add or remove:
                sent.add("labels")
                self._change_labels(card, add, remove)
                result = dataclasses.replace(result, labels=(result.labels - remove) | add)
                changed_sets = True
        if fields.assignees is not None:
            add, remove = set_delta(current.assignees, fields.assignees, fold=True)
            if add or remove:
                sent.add("assignees")
                self._change_members(card, add, remove)
                changed_sets = True
        put = self._put_body(current, fields)
        if put:
            sent.update(fields.names() - SET_FIELDS)
            return self._put(current, put)
        if changed_sets:
            # The add/remove answers are id lists, not the card: one read gives its state
            # with everything a human added meanwhile.
            return self._get_card(card)
        return result

    def _put_body(self, current: RemoteIssue, fields: IssueFields) -> dict[str, Any]:
        put: dict[str, Any] = {}
        if fields.title is not None and fields.title != current.title:
            put["name"] = fields.title
        if fields.body is not None and fields.body != current.body:
            # Keep our create marker: it is how a lost create is found again.
            put["desc"] = body_with_marker(fields.body, current.marker)
        if fields.state is not None and fields.state != current.state:
            done = self.options.done_list
            if fields.state == IssueState.CLOSED:
                if done:
                    put["idList"] = self._list_id(done, purpose="config_json.done_list")
                else:
                    put["closed"] = True
            else:
                put["closed"] = False
                if done and current.tracker_status == done:
                    put["idList"] = self._open_list_id()
        return put

    def _put(self, current: RemoteIssue, body: dict[str, Any]) -> RemoteIssue:
        what = self._what(f"update card #{current.number}")
        response = self.transport.request(
            "PUT", f"cards/{quote(current.external_id, safe='')}", what=what, json=body
        )
        return self._card(self._json(response, what), what)

    def _change_labels(self, card: str, add: frozenset[str], remove: frozenset[str]) -> None:
        what = self._what(f"change labels of card {card}")
        # A label gone from the board is on no card: nothing to remove.
        held, _ = self._labels.resolve(sorted(remove))
        for name in sorted(held):
            try:
                self.transport.request("DELETE", f"cards/{card}/idLabels/{held[name]}", what=what)
            except NotFoundError:
                continue  # already off the card
        for label_id in self._resolve_labels(add):
            try:
                self.transport.request(
                    "POST", f"cards/{card}/idLabels", what=what, json={"value": label_id}
                )
            except ValidationFailedError as exc:
                if "already" not in str(exc).lower():
                    self._labels.forget()
                    raise ValidationFailedError(
                        str(exc), status=exc.status, field="labels"
                    ) from exc

    def _change_members(self, card: str, add: frozenset[str], remove: frozenset[str]) -> None:
        what = self._what(f"change members of card {card}")
        held, unknown = self._members.resolve(sorted(remove))
        # parse_card keeps a member no one named as its id: that id is what to remove.
        ids = [*held.values(), *(u for u in unknown if _OBJECT_ID.fullmatch(u))]
        for member_id in sorted(ids):
            try:
                self.transport.request("DELETE", f"cards/{card}/idMembers/{member_id}", what=what)
            except NotFoundError:
                continue
        for member_id in self._resolve_members(add):
            try:
                self.transport.request(
                    "POST", f"cards/{card}/idMembers", what=what, json={"value": member_id}
                )
            except ValidationFailedError as exc:
                if "already" not in str(exc).lower():
                    self._members.forget()
                    raise ValidationFailedError(
                        str(exc), status=exc.status, field="assignees"
                    ) from exc

    def _named(self, path: str, fields: str, what: str) -> list[Mapping[str, Any]]:
        """A board's labels or members: one list (Trello does not page them)."""
        response = self.transport.request(
            "GET", f"{self._board}/{path}", what=what, params={"fields": fields}
        )
        items = self._json(response, what)
        if not isinstance(items, list):
            raise MalformedAnswerError(f"{what}: unexpected answer: not a list")
        return [i for i in items if isinstance(i, Mapping) and isinstance(i.get("id"), str)]

    def _fetch_labels(self) -> dict[str, str]:
        labels: dict[str, str] = {}
        for item in self._named("labels", "id,name", self._what("list labels")):
            name = item.get("name")
            if isinstance(name, str) and name:  # a colour-only label has no name
                labels.setdefault(name, item["id"])
        return labels

    def _fetch_members(self) -> dict[str, str]:
        members: dict[str, str] = {}
        for item in self._named("members", "id,username", self._what("list members")):
            username = item.get("username")
            if isinstance(username, str):
                members[username] = item["id"]
                self._names.members[item["id"]] = username
        return members

    def _resolve_labels(self, names: frozenset[str]) -> list[str]:
        found, missing = self._labels.resolve(sorted(names))
        if missing and not self.allow_create_labels:
            raise ValidationFailedError(
                self._what(f"no label named {', '.join(missing)} on the board"), field="labels"
            )
        for name in missing:
            what = self._what(f"create label {name!r}")
            response = self.transport.request(
                "POST",
                f"{self._board}/labels",
                what=what,
                json={"name": name, "color": NEW_LABEL_COLOR},
            )
            data = self._json(response, what)
            if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
                raise MalformedAnswerError(f"{what}: unexpected answer")
            found[name] = data["id"]
            self._labels.add(name, data["id"])
        return [found[n] for n in sorted(names)]

    def _resolve_members(self, usernames: frozenset[str]) -> list[str]:
        found, missing = self._members.resolve(sorted(usernames))
        if missing:
            raise ValidationFailedError(
                self._what(f"{', '.join(missing)} is not a member of the board"),
                field="assignees",
            )
        return [found[u] for u in sorted(usernames)]

    def check_access(self) -> None:
        """The shared ladder on the board, then the lists config_json names must exist."""
        super().check_access()
        self._load_lists()
        for option, name in (
            ("done_list", self.options.done_list),
            ("new_list", self.options.new_list),
        ):
            if name is not None:
                self._list_id(name, purpose=f"config_json.{option}")

    # --- webhook registration (integrations/providers/hooks.py) ------------------------------

    # Trello signs with the Power-Up's secret: the connection must hold that one.
    sets_webhook_secret: ClassVar[bool] = False

    def ensure_webhook(self, *, url: str, secret: str) -> HookOutcome:
        """`POST /1/webhooks` with the board as `idModel`; Trello first sends a HEAD to the
        callback (our intake answers 200). Trello's only hook listing,
        `GET /1/tokens/{token}/webhooks`, carries the token in its path, which the request log
        would keep: not used. So a hook Trello already holds for this callback (its 400
        "already exists") is "unchanged" without seeing whether it is active; Trello deletes a
        hook after 30 days of failed deliveries, and the next call creates it again. Trello
        signs with the Power-Up's secret (the connection's webhook secret): nothing to set."""
        what = self._what("register the webhook")
        body = {
            "idModel": self.repository,
            "callbackURL": url,
            "description": "Syndarix Sync",
            "active": True,
        }
        try:
            response = self.transport.request("POST", "webhooks", what=what, json=body)
        except ValidationFailedError as exc:
            if "already exists" not in str(exc):
                raise
            note = "Trello does not show whether an existing hook is active"
            return HookOutcome(HookResult.UNCHANGED, "", (note, SECRET_NOTE))
        data = self._json(response, what)
        if not isinstance(data, Mapping) or "id" not in data:
            raise MalformedAnswerError(f"{what}: the answer has no webhook id")
        return HookOutcome(HookResult.CREATED, str(data["id"]))


def _action_card(action: Any) -> str | None:
    if not isinstance(action, Mapping):
        return None
    data = action.get("data")
    card = data.get("card") if isinstance(data, Mapping) else None
    card_id = card.get("id") if isinstance(card, Mapping) else None
    return card_id if isinstance(card_id, str) else None


# --- webhooks --------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Trello-Webhook"
# updateCard keys that change something we mirror; an update of only other keys (`pos` within
# a list, `due`, a cover) changes nothing here.
MIRRORED_CARD_KEYS = frozenset({"name", "desc", "closed", "idList"})
REREAD_ACTIONS = frozenset(
    {
        "createCard",
        "updateCard",
        "addLabelToCard",
        "removeLabelFromCard",
        "addMemberToCard",
        "removeMemberFromCard",
        "copyCard",
        "moveCardToBoard",
        "convertToCardFromCheckItem",
    }
)
DELETE_ACTIONS = frozenset({"deleteCard", "moveCardFromBoard"})
_ACTION_TYPE = re.compile(r"[A-Za-z]{1,64}")


class TrelloWebhooks(WebhookVerifier):
    """`X-Trello-Webhook` = base64 HMAC-SHA1(app secret, raw body + callback URL).

    The callback URL is the one Trello was given, byte for byte: the intake passes the public
    URL of the request (PUBLIC_URL + path and query), not the address a proxy forwarded to.
    """

    provider: ClassVar[str] = "trello"

    def verify(self, *, secret: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        return signature_matches(
            secret=secret,
            message=body + url.encode("utf-8"),
            provided=header(headers, SIGNATURE_HEADER),
            algorithm="sha1",
            base64_digest=True,
        )

    def event_name(self, *, headers: Mapping[str, str], payload: Mapping[str, Any] | None) -> str:
        if not isinstance(payload, Mapping):
            return ""
        action = payload.get("action")
        kind = action.get("type") if isinstance(action, Mapping) else None
        return kind if isinstance(kind, str) else ""

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str:
        # One action reaches one webhook once (Trello retries it with the same action id).
        # Two connections on one board have two webhooks, each sent the same action: the
        # webhook's id (when the payload names it) keeps their deliveries apart.
        try:
            payload = json.loads(body)
            action = payload.get("action")
            webhook = payload.get("webhook")
        except (ValueError, AttributeError, RecursionError):
            action = webhook = None
        action_id = action.get("id") if isinstance(action, Mapping) else None
        hook_id = webhook.get("id") if isinstance(webhook, Mapping) else None
        if isinstance(action_id, str) and _OBJECT_ID.fullmatch(action_id):
            if isinstance(hook_id, str) and _OBJECT_ID.fullmatch(hook_id):
                return f"trello-{hook_id.lower()}-{action_id.lower()}"
            return f"trello-{action_id.lower()}"
        return hashlib.sha256(body).hexdigest()

    def is_known_event(self, event: str) -> bool:
        # Trello has ~150 action types: any well-formed one is parsed, and parse() says
        # which it ignores (answered 204).
        return bool(_ACTION_TYPE.fullmatch(event or ""))

    def parse(self, *, event: str, payload: Any, base_url: str) -> WebhookEvent:
        if not isinstance(payload, Mapping):
            raise WebhookPayloadError(
                f"a Trello payload is a JSON object, not {type(payload).__name__}"
            )
        try:
            return self._parse(payload)
        except ShapeError as exc:
            raise WebhookPayloadError(f"Trello {event or 'webhook'} payload: {exc}") from exc

    def _parse(self, payload: Mapping[str, Any]) -> WebhookEvent:
        action = require_mapping(payload.get("action"), "action")
        kind = require_str(action, "type", "action")
        data = require_mapping(action.get("data"), "action.data")
        board = data.get("board")
        if board is not None:
            board_id: str | None = require_str(
                require_mapping(board, "action.data.board"), "id", "action.data.board"
            )
        else:
            model = payload.get("model")
            board_id = model.get("id") if isinstance(model, Mapping) else None
            board_id = board_id if isinstance(board_id, str) else None

        def ignored(reason: str) -> WebhookEvent:
            return WebhookEvent(
                kind=EventKind.IGNORED, event=kind, action=kind, repository=board_id, reason=reason
            )

        if kind not in REREAD_ACTIONS and kind not in DELETE_ACTIONS:
            return ignored(f"action {kind!r} changes nothing a card issue mirrors")
        card = require_mapping(data.get("card"), "action.data.card")
        card_id = require_str(card, "id", "action.data.card")
        short = card.get("idShort")
        if short is not None and (not is_int(short) or short <= 0):
            raise ShapeError("action.data.card.idShort is not a positive integer")
        number = str(short) if short is not None else None
        if board_id is None:
            raise ShapeError("the payload names no board")
        if kind in DELETE_ACTIONS:
            return WebhookEvent(
                kind=EventKind.ISSUE_DELETED,
                event=kind,
                action=kind,
                repository=board_id,
                issue_external_id=card_id,
                issue_number=number,
            )
        if kind == "updateCard":
            old = require_mapping(data.get("old"), "action.data.old")
            if not set(old) & MIRRORED_CARD_KEYS:
                return ignored(f"updateCard of {', '.join(sorted(old)) or 'nothing'} only")
        if number is None:
            raise ShapeError("action.data.card.idShort is missing")
        # An action carries a partial card (no labels, members or list names): the worker
        # re-reads the whole card rather than apply a delta (LESSONS: full state).
        return WebhookEvent(
            kind=EventKind.ISSUE,
            event=kind,
            action=kind,
            repository=board_id,
            issue=None,
            issue_external_id=card_id,
            issue_number=number,
        )
