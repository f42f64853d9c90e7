"""Jira Cloud (REST API v3): the ADF converter, the issue client and the webhook verifier/parser.

`base_url` is the site's web root (`https://acme.atlassian.net`); the API lives under
`/rest/api/3`. `repository` is the project key. Authentication is basic auth with the
account's e-mail (`config_json.email`) and an API token.

Jira differs from the markdown trackers in four ways this module absorbs:
- descriptions are Atlassian Document Format (ADF), converted to and from plain text so that
  our own text survives a round trip exactly (else every echo would look like an edit);
- open/closed is a workflow: close and reopen run a transition whose target status category
  is `done` / `new`, found on the issue's transition list (one read, one write, never a walk);
- listing is JQL on `/search/jql`, paged by `nextPageToken`, with minute-precision dates in
  the API user's own time zone;
- webhooks carry the REST v2 representation (wiki markup, not ADF), so an issue event names
  the issue and the worker re-reads it through v3 instead of trusting a second text format.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import requests

from integrations.providers.base import (
    AuthenticationError,
    Capabilities,
    ConfigOption,
    EventKind,
    IssueFields,
    IssueState,
    MalformedAnswerError,
    NotFoundError,
    ProviderError,
    RemoteIssue,
    ValidationFailedError,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerifier,
    born_closed,
    set_delta,
    unsent_on_failure,
)
from integrations.providers.core import NameCache, RestClient
from integrations.providers.http import parse_timestamp
from integrations.providers.shapes import (
    ShapeError,
    describe,
    header,
    optional_list,
    optional_str,
    require_mapping,
    require_str,
    signature_matches,
)

API_PREFIX = "/rest/api/3"

# --- Atlassian Document Format ↔ plain text ---------------------------------------------------
#
# Our text → ADF: paragraphs are separated by a blank line ("\n\n"); a single "\n" inside a
# paragraph is a hardBreak. `adf_to_text` reads that back exactly, for any string: the split
# on "\n\n" is undone by the join, and runs of newlines become empty paragraphs or leading
# hardBreaks. ADF written by people (lists, code, mentions, headings, tables) is read as
# readable text; it is not meant to survive a round trip, and does not need to: we only write
# back what a user changed.

ADF_EMPTY: dict[str, Any] = {"type": "doc", "version": 1, "content": []}


def text_to_adf(text: str) -> dict[str, Any]:
    """Plain text → an ADF document whose `adf_to_text` is `text` itself."""
    if not text:
        return {"type": "doc", "version": 1, "content": []}
    paragraphs = []
    for block in text.split("\n\n"):
        content: list[dict[str, Any]] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                content.append({"type": "hardBreak"})
            if line:  # ADF forbids empty text nodes
                content.append({"type": "text", "text": line})
        paragraphs.append({"type": "paragraph", "content": content})
    return {"type": "doc", "version": 1, "content": paragraphs}


def _inline(node: Mapping[str, Any]) -> str:
    kind = node.get("type")
    attrs = node.get("attrs") if isinstance(node.get("attrs"), Mapping) else {}
    assert isinstance(attrs, Mapping)
    if kind == "text":
        text = node.get("text")
        return text if isinstance(text, str) else ""
    if kind == "hardBreak":
        return "\n"
    if kind == "mention":
        shown = attrs.get("text")
        if isinstance(shown, str) and shown:
            return shown if shown.startswith("@") else f"@{shown}"
        return f"@{attrs.get('id', '')}"
    if kind == "emoji":
        return str(attrs.get("text") or attrs.get("shortName") or "")
    if kind in ("inlineCard", "blockCard", "embedCard"):
        return str(attrs.get("url") or "")
    if kind == "status":
        return str(attrs.get("text") or "")
    if kind == "date":
        stamp = attrs.get("timestamp")
        try:
            return datetime.fromtimestamp(int(str(stamp)) / 1000, UTC).date().isoformat()
        except (TypeError, ValueError, OverflowError, OSError):
            return ""
    return _children_inline(node)


def _children(node: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    content = node.get("content")
    if not isinstance(content, list):
        return []
    return [child for child in content if isinstance(child, Mapping)]


def _children_inline(node: Mapping[str, Any]) -> str:
    return "".join(_inline(child) for child in _children(node))


def _indent(text: str, prefix: str, rest: str) -> str:
    lines = text.split("\n")
    return "\n".join([prefix + lines[0], *(rest + line for line in lines[1:])])


def _block(node: Mapping[str, Any], depth: int) -> str:
    if depth > 50:
        return ""  # a forged document nested without end is cut, not followed
    kind = node.get("type")
    if kind in ("paragraph", "heading"):
        return _children_inline(node)
    if kind == "codeBlock":
        attrs = node.get("attrs") if isinstance(node.get("attrs"), Mapping) else {}
        language = attrs.get("language") if isinstance(attrs, Mapping) else None
        fence = "```" + (language if isinstance(language, str) else "")
        return f"{fence}\n{_children_inline(node)}\n```"
    if kind in ("bulletList", "orderedList"):
        lines = []
        start = 1
        attrs = node.get("attrs")
        if isinstance(attrs, Mapping) and isinstance(attrs.get("order"), int):
            start = attrs["order"]
        for index, item in enumerate(_children(node)):
            bullet = "- " if kind == "bulletList" else f"{start + index}. "
            text = "\n".join(_block(child, depth + 1) for child in _children(item))
            lines.append(_indent(text, bullet, " " * len(bullet)))
        return "\n".join(lines)
    if kind == "blockquote":
        return _indent(_blocks(_children(node), depth + 1), "> ", "> ")
    if kind == "rule":
        return "---"
    if kind == "table":
        rows = []
        for row in _children(node):
            cells = [_blocks(_children(cell), depth + 1) for cell in _children(row)]
            rows.append(" | ".join(cell.replace("\n", " ") for cell in cells))
        return "\n".join(rows)
    if kind in ("mediaSingle", "mediaGroup", "media"):
        return "[attachment]"
    if kind in ("text", "hardBreak", "mention", "emoji", "inlineCard", "status", "date"):
        return _inline(node)
    # panel, expand, layouts, unknown future nodes: their content, read as blocks.
    return _blocks(_children(node), depth + 1)


def _blocks(nodes: list[Mapping[str, Any]], depth: int) -> str:
    return "\n\n".join(_block(node, depth) for node in nodes)


def adf_to_text(document: Any) -> str:
    """An ADF document (or None) → plain text: paragraphs kept, lists, code and mentions
    readable. Exact inverse of `text_to_adf`."""
    if document is None:
        return ""
    if isinstance(document, str):
        return document  # REST v2 representations (webhooks) send wiki markup as a string
    if not isinstance(document, Mapping):
        raise ShapeError(f"description is not an ADF document (got {describe(document)})")
    return _blocks(_children(document), 0)


# --- JSON → canonical -------------------------------------------------------------------------

# The fields every read asks for: fewer fields, larger pages, smaller answers.
ISSUE_FIELDS = "summary,description,status,labels,assignee,fixVersions,created,updated,project"
# Where the create marker lives: an issue property (kept by Jira, never shown to users).
MARKER_PROPERTY = "syndarix"
_KEY_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]*-[1-9][0-9]{0,17}", re.ASCII)


def web_root(base_url: str) -> str:
    root = base_url.strip().rstrip("/")
    if root.endswith(API_PREFIX):
        root = root[: -len(API_PREFIX)]
    return root


def browse_url(base_url: str, key: str) -> str:
    return f"{web_root(base_url)}/browse/{quote(key, safe='-')}"


def _marker(data: Mapping[str, Any]) -> str | None:
    properties = data.get("properties")
    if not isinstance(properties, Mapping):
        return None
    value = properties.get(MARKER_PROPERTY)
    if isinstance(value, Mapping) and isinstance(value.get("create"), str):
        return str(value["create"])
    return None


def project_key(data: Mapping[str, Any]) -> str | None:
    """The issue's project key: `fields.project.key`, else the key's prefix."""
    fields = data.get("fields")
    if isinstance(fields, Mapping) and isinstance(fields.get("project"), Mapping):
        key = fields["project"].get("key")
        if isinstance(key, str) and key:
            return key
    issue_key = data.get("key")
    if isinstance(issue_key, str) and "-" in issue_key:
        return issue_key.rsplit("-", 1)[0]
    return None


def parse_issue(data: Any, *, base_url: str, where: str = "issue") -> RemoteIssue:
    """A REST v3 issue (`fields` as asked by ISSUE_FIELDS) → RemoteIssue (SPEC §3)."""
    issue = require_mapping(data, where)
    external_id = require_str(issue, "id", where)
    key = require_str(issue, "key", where)
    if not external_id or not _KEY_RE.fullmatch(key):
        raise ShapeError(f"{where}.key {key!r} is not an issue key")
    fields = require_mapping(issue.get("fields"), f"{where}.fields")
    status = require_mapping(fields.get("status"), f"{where}.fields.status")
    category = require_mapping(
        status.get("statusCategory"), f"{where}.fields.status.statusCategory"
    )
    labels = optional_list(fields, "labels", f"{where}.fields") or []
    if not all(isinstance(label, str) for label in labels):
        raise ShapeError(f"{where}.fields.labels holds a value that is not a string")
    assignee = fields.get("assignee")
    assignees: frozenset[str] = frozenset()
    if assignee is not None:
        account = optional_str(
            require_mapping(assignee, f"{where}.fields.assignee"),
            "accountId",
            f"{where}.fields.assignee",
        )
        assignees = frozenset({account}) if account else frozenset()
    versions = optional_list(fields, "fixVersions", f"{where}.fields") or []
    milestone = None
    if versions:
        milestone = require_str(
            require_mapping(versions[0], f"{where}.fields.fixVersions[0]"),
            "name",
            f"{where}.fields.fixVersions[0]",
        )
    return RemoteIssue(
        external_id=external_id,
        number=key,
        title=require_str(fields, "summary", f"{where}.fields"),
        body=adf_to_text(fields.get("description")),
        state=IssueState.CLOSED if category.get("key") == "done" else IssueState.OPEN,
        labels=frozenset(labels),
        assignees=assignees,
        milestone=milestone,
        remote_url=browse_url(base_url, key),
        created_at=parse_timestamp(fields.get("created")),
        updated_at=parse_timestamp(fields.get("updated")),
        marker=_marker(issue),
        tracker_status=require_str(status, "name", f"{where}.fields.status"),
    )


# Jira's error body is `{"errorMessages": [...], "errors": {"<jira field>": "<why>"}}`.
_JIRA_FIELD_TO_CANONICAL = {
    "summary": "title",
    "description": "body",
    "labels": "labels",
    "assignee": "assignees",
    "fixVersions": "milestone",
}


def refused_field(response: requests.Response | None) -> str | None:
    if response is None:
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    errors = data.get("errors") if isinstance(data, Mapping) else None
    if not isinstance(errors, Mapping):
        return None
    named = {_JIRA_FIELD_TO_CANONICAL[k] for k in errors if k in _JIRA_FIELD_TO_CANONICAL}
    return named.pop() if len(named) == 1 else None


# --- the client ---------------------------------------------------------------------------------

# JQL has minute precision: a cursor is floored to the minute and moved back by more than one.
JQL_OVERLAP = timedelta(minutes=2)


class JiraClient(RestClient):
    """One Jira Cloud project, over one HTTP session with basic auth (e-mail + API token)."""

    provider: ClassVar[str] = "jira"
    capabilities: ClassVar[Capabilities] = Capabilities(
        webhooks=True,
        deletion_in_webhooks=True,  # jira:issue_deleted
        max_assignees=1,
        max_labels=None,
        milestones=True,  # fix versions, predefined per project
        labels_predefined=False,  # Jira creates a label on first use
        conditional_writes=False,
        set_delta_writes=True,  # PUT {"update": {"labels": [{"add"}, {"remove"}]}}
        label_case_insensitive=False,
        assignee_case_insensitive=False,
        body_crlf_to_lf=False,
        written_apart=frozenset({"state"}),  # a transition, after the edit's PUT
    )
    # config_json (SPEC §3, §6): the e-mail of basic auth; transition names for workflows
    # with several done / to-do statuses; the issue type of created issues.
    config_options: ClassVar[tuple[ConfigOption, ...]] = (
        ConfigOption(
            "email",
            "Account e-mail",
            required=True,
            help_text="The Atlassian account of the API token (basic auth: e-mail + token).",
        ),
        ConfigOption(
            "close_transition",
            "Close transition",
            help_text="Transition name that closes; default: the one to a Done-category status.",
        ),
        ConfigOption(
            "reopen_transition",
            "Reopen transition",
            help_text="Transition name that reopens; default: the one to a To Do-category status.",
        ),
        ConfigOption("issue_type", "Issue type", help_text="Of created issues; default Task."),
    )
    # `/search/jql` returns at most 100 issues a page when fields are asked (5,000 for ids only).
    max_page_size: ClassVar[int] = 100
    tracker_name = "Jira"
    repository_noun = "project"

    def _setup(self) -> None:
        self.base_url = web_root(self.base_url)
        self.repository = self.repository.strip()
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", self.repository, re.ASCII):
            raise ValidationFailedError(f"{self.repository!r} is not a Jira project key")
        email = self.config.get("email")
        # Refused at the first call rather than here: every caller (poll, outbox, refresh)
        # already turns a ProviderError from a call into a failed run or a clear answer.
        self._config_error: str | None = None
        if not isinstance(email, str) or not email.strip():
            self._config_error = "a Jira connection needs config_json.email (basic auth)"
            email = ""
        self.email = email.strip()
        self.close_transition = str(self.config.get("close_transition") or "").strip()
        self.reopen_transition = str(self.config.get("reopen_transition") or "").strip()
        self.issue_type = str(self.config.get("issue_type") or "Task").strip()
        self.versions: NameCache[str] = NameCache(self._load_versions)
        self._zone: ZoneInfo | None = None
        # Jira explains a 400 in its body; the transport raises before we see the response,
        # so the last one is kept to name the refused field.
        self._last_response: requests.Response | None = None

    def api_root(self) -> str:
        return self.base_url + API_PREFIX

    def auth_headers(self, token: str) -> dict[str, str]:
        basic = base64.b64encode(f"{self.email}:{token}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}", "Accept": "application/json"}

    def access_path(self) -> str:
        return f"project/{quote(self.repository, safe='')}"

    def is_repository(self, data: Any) -> bool:
        return isinstance(data, Mapping) and isinstance(data.get("key"), str)

    def check_access(self) -> None:
        if self._config_error is not None:
            raise AuthenticationError(f"Jira at {self.base_url}: {self._config_error}")
        super().check_access()

    # --- helpers -----------------------------------------------------------------------------

    def _what(self, action: str) -> str:
        return f"Jira {self.base_url}: {action} in {self.repository}"

    def _keep_response(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last_response = response

    def _request(self, method: str, path: str, *, what: str, **options: Any) -> requests.Response:
        if self._config_error is not None:
            raise AuthenticationError(f"{what}: {self._config_error}")
        hooks = self.transport.session.hooks["response"]
        if self._keep_response not in hooks:
            hooks.append(self._keep_response)
        try:
            return self.transport.request(method, path, what=what, **options)
        except ValidationFailedError as exc:
            field = exc.field or refused_field(self._last_response)
            raise ValidationFailedError(str(exc), status=exc.status, field=field) from exc

    def _json(self, method: str, path: str, *, what: str, **options: Any) -> Any:
        return self.transport.json(self._request(method, path, what=what, **options), what=what)

    def _issue(self, data: Any, what: str) -> RemoteIssue:
        return self.parse_answer(lambda d: parse_issue(d, base_url=self.base_url), data, what=what)

    @staticmethod
    def _key(number: str | int) -> str:
        text = str(number).strip()
        if not _KEY_RE.fullmatch(text):
            # Like every provider: a number that cannot name an issue names no issue.
            raise NotFoundError(f"a Jira issue key looks like PROJ-12, got {number!r}")
        return text.upper()

    def _time_zone(self) -> ZoneInfo:
        """JQL dates are read in the API user's profile time zone: ask for it once."""
        if self._zone is None:
            what = self._what("read the API user's time zone")
            data = self._json("GET", "myself", what=what)
            name = data.get("timeZone") if isinstance(data, Mapping) else None
            try:
                self._zone = ZoneInfo(name) if isinstance(name, str) and name else ZoneInfo("UTC")
            except (ZoneInfoNotFoundError, ValueError):
                self._zone = ZoneInfo("UTC")
        return self._zone

    def jql(self, since: datetime | None) -> str:
        project = f'project = "{self.repository}"'
        if since is None:
            return f"{project} ORDER BY updated ASC"
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
        local = (since - JQL_OVERLAP).astimezone(self._time_zone())
        return f'{project} AND updated >= "{local:%Y-%m-%d %H:%M}" ORDER BY updated ASC'

    # --- listing: the core's list_issues over Jira's token paging ------------------------------

    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        params = {"jql": self.jql(since), "fields": ISSUE_FIELDS, "properties": MARKER_PROPERTY}
        return "search/jql", params, self._what("search issues")

    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        return [self._issue(item, what) for item in items]

    def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        what: str,
        etag: str | None = None,
    ) -> Iterator[tuple[requests.Response, list[Any]]]:
        """`/search/jql` pages by an opaque `nextPageToken` in the body (absent, or `isLast`,
        on the last page). Jira answers no conditional requests: `etag` is not sent."""
        token: str | None = None
        seen_tokens: set[str] = set()
        page = 1
        while True:
            page_what = f"{what} (page {page})"
            query = {**params, "maxResults": self.max_page_size}
            if token:
                query["nextPageToken"] = token
            response = self._request("GET", path, what=page_what, params=query)
            data = self.transport.json(response, what=page_what)
            if not isinstance(data, Mapping) or not isinstance(data.get("issues"), list):
                raise MalformedAnswerError(f"{page_what}: unexpected answer: no issues list")
            yield response, data["issues"]
            token = data.get("nextPageToken")
            if not isinstance(token, str) or not token or data.get("isLast") is True:
                return
            if token in seen_tokens:  # the same token twice would page forever
                raise MalformedAnswerError(f"{page_what}: nextPageToken repeats")
            seen_tokens.add(token)
            page += 1

    def single_page_etag(
        self, response: requests.Response | None, pages: int, first_size: int
    ) -> str | None:
        return None  # no conditional search in Jira: nothing to store

    # --- single issues -----------------------------------------------------------------------

    def _fetch(self, key: str) -> RemoteIssue:
        what = self._what(f"get issue {key}")
        params = {"fields": ISSUE_FIELDS, "properties": MARKER_PROPERTY}
        return self._issue(self._json("GET", f"issue/{key}", what=what, params=params), what)

    def get_issue(self, number: str) -> RemoteIssue:
        return self._fetch(self._key(number))

    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        with unsent_on_failure(fields) as sent:
            return self._create_issue(fields, marker=marker, sent=sent)

    def _create_issue(
        self, fields: IssueFields, *, marker: str | None, sent: set[str]
    ) -> RemoteIssue:
        if not fields.title:
            raise ValidationFailedError("Jira needs a summary to create an issue", field="title")
        what = self._what("create issue")
        body: dict[str, Any] = {
            "fields": {
                "project": {"key": self.repository},
                "issuetype": {"name": self.issue_type},
                "summary": fields.title,
                **self._scalar_fields(fields, current=None),
            }
        }
        if fields.labels:
            self._check_labels(fields.labels)
            body["fields"]["labels"] = sorted(fields.labels)
        if marker:
            # An issue property: kept by Jira, returned on request, never shown to users.
            body["properties"] = [{"key": MARKER_PROPERTY, "value": {"create": marker}}]
        sent.update(fields.names() - born_closed(fields))  # closed by a transition after
        try:
            created = self._json("POST", "issue", what=what, json=body)
        except ProviderError:
            self.versions.forget()
            raise
        key = created.get("key") if isinstance(created, Mapping) else None
        if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
            raise MalformedAnswerError(f"{what}: the answer names no issue key")
        if fields.state == IssueState.CLOSED:
            sent.add("state")
            self._transition(key, IssueState.CLOSED, status="(new)")
        return self._fetch(key)

    @staticmethod
    def _check_labels(labels: frozenset[str]) -> None:
        bad = sorted(name for name in labels if not name or any(c.isspace() for c in name))
        if bad:
            raise ValidationFailedError(
                f"Jira labels cannot be empty or contain spaces: {bad}", field="labels"
            )

    def _scalar_fields(self, fields: IssueFields, *, current: RemoteIssue | None) -> dict[str, Any]:
        """The `fields` part of a create or edit: what differs from `current`."""
        out: dict[str, Any] = {}
        if fields.title is not None and (current is None or fields.title != current.title):
            if not fields.title:
                raise ValidationFailedError("Jira cannot hold an empty summary", field="title")
            out["summary"] = fields.title
        if fields.body is not None and (current is None or fields.body != current.body):
            out["description"] = text_to_adf(fields.body) if fields.body else None
        if fields.assignees is not None and (
            current is None or fields.assignees != current.assignees
        ):
            if len(fields.assignees) > 1:
                raise ValidationFailedError("Jira holds one assignee per issue", field="assignees")
            account = next(iter(fields.assignees), None)
            if account or current is not None:  # a create leaves Jira's default assignee alone
                out["assignee"] = {"accountId": account} if account else None
        milestone = fields.milestone
        # UNSET leaves the fix versions alone; None clears them; a name sets that one.
        changed = current is None or milestone != current.milestone
        if isinstance(milestone, str) and changed:
            out["fixVersions"] = [{"id": self._version_id(milestone)}]
        elif milestone is None and current is not None and changed:
            out["fixVersions"] = []
        return out

    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        """One PUT for summary, description, assignee, fix version and label additions and
        removals against `current`; then, if the state changes, one transition. Jira answers
        both with 204, so the state after them is one GET."""
        key = self._key(number)
        with unsent_on_failure(fields) as sent:
            return self._update_issue(key, fields, current=current, sent=sent)

    def _update_issue(
        self,
        key: str,
        fields: IssueFields,
        *,
        current: RemoteIssue | None,
        sent: set[str],
    ) -> RemoteIssue:
        if current is None:
            current = self._fetch(key)
        try:
            edit: dict[str, Any] = {}
            scalars = self._scalar_fields(fields, current=current)
            if scalars:
                edit["fields"] = scalars
            if fields.labels is not None:
                add, remove = set_delta(current.labels, fields.labels)
                self._check_labels(add)
                changes = [{"add": n} for n in sorted(add)]
                changes += [{"remove": n} for n in sorted(remove)]
                if changes:
                    edit["update"] = {"labels": changes}
            wrote = False
            if edit:
                sent.update(fields.names() - {"state"})
                self._request(
                    "PUT", f"issue/{key}", what=self._what(f"update issue {key}"), json=edit
                )
                wrote = True
            if fields.state is not None and fields.state != current.state:
                sent.add("state")
                self._transition(key, fields.state, status=current.tracker_status)
                wrote = True
        except ProviderError:
            self.versions.forget()
            raise
        return self._fetch(key) if wrote else current

    # --- transitions ---------------------------------------------------------------------------

    def _transition(self, key: str, state: IssueState, *, status: str) -> None:
        """Run the one transition that leads from the issue's status to a status of category
        done (close) or new (reopen), or the transition named in config_json. A workflow with
        no such direct transition is refused: we never walk a workflow, so we never loop."""
        what = self._what(f"{'close' if state == IssueState.CLOSED else 'reopen'} issue {key}")
        data = self._json("GET", f"issue/{key}/transitions", what=what)
        transitions = data.get("transitions") if isinstance(data, Mapping) else None
        if not isinstance(transitions, list):
            raise MalformedAnswerError(f"{what}: unexpected answer: no transitions list")
        closing = state == IssueState.CLOSED
        wanted_name = self.close_transition if closing else self.reopen_transition
        wanted_category = "done" if closing else "new"
        chosen = next((t for t in transitions if _leads_to(t, wanted_name, wanted_category)), None)
        if chosen is None:
            rule = (
                f"named {wanted_name!r}"
                if wanted_name
                else f"to a status of category {wanted_category!r}"
            )
            config_key = "close_transition" if closing else "reopen_transition"
            raise ValidationFailedError(
                f"{what}: the workflow has no transition {rule} from status {status!r}; move"
                f" the issue in Jira, or name the transition in config_json.{config_key}",
                field="state",
            )
        self._request(
            "POST", f"issue/{key}/transitions", what=what, json={"transition": {"id": chosen["id"]}}
        )

    # --- fix versions --------------------------------------------------------------------------

    def _load_versions(self) -> dict[str, str]:
        what = self._what("list fix versions")
        project = self._json("GET", self.access_path(), what=what)
        versions = project.get("versions") if isinstance(project, Mapping) else None
        if not isinstance(versions, list):
            raise MalformedAnswerError(f"{what}: unexpected answer: no versions list")
        return {
            v["name"]: str(v["id"])
            for v in versions
            if isinstance(v, Mapping) and isinstance(v.get("name"), str) and "id" in v
        }

    def _version_id(self, name: str) -> str:
        found, missing = self.versions.resolve([name])
        if missing:
            raise ValidationFailedError(
                f"Jira project {self.repository} has no fix version {name!r}", field="milestone"
            )
        return found[name]


def _leads_to(transition: Any, name: str, category: str) -> bool:
    """Whether `transition` is the one named `name` (when a name is configured), else one to a
    status of `category`."""
    if not isinstance(transition, Mapping) or not isinstance(transition.get("id"), str):
        return False
    if name:
        given = transition.get("name")
        return isinstance(given, str) and given.casefold() == name.casefold()
    target = transition.get("to")
    status_category = target.get("statusCategory") if isinstance(target, Mapping) else None
    return isinstance(status_category, Mapping) and status_category.get("key") == category


# --- webhooks ---------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Hub-Signature"
ISSUE_EVENTS = frozenset({"jira:issue_created", "jira:issue_updated"})
COMMENT_EVENTS = frozenset({"comment_created", "comment_updated", "comment_deleted"})
# Legacy deliveries of a comment change: `jira:issue_updated` with one of these type names.
LEGACY_COMMENT_TYPES = frozenset(
    {"issue_commented", "issue_comment_edited", "issue_comment_deleted"}
)
KNOWN_EVENTS = frozenset(
    {
        "jira:issue_created",
        "jira:issue_updated",
        "jira:issue_deleted",
        "comment_created",
        "comment_updated",
        "comment_deleted",
        "jira:worklog_updated",
        "worklog_created",
        "worklog_updated",
        "worklog_deleted",
        "issuelink_created",
        "issuelink_deleted",
        "attachment_created",
        "attachment_deleted",
        "issue_property_set",
        "issue_property_deleted",
        "jira:version_created",
        "jira:version_updated",
        "jira:version_released",
        "jira:version_unreleased",
        "jira:version_deleted",
        "jira:version_moved",
        "project_created",
        "project_updated",
        "project_deleted",
        "sprint_created",
        "sprint_started",
        "sprint_closed",
        "sprint_updated",
        "sprint_deleted",
        "board_created",
        "board_updated",
        "board_deleted",
        "board_configuration_changed",
        "user_created",
        "user_updated",
        "user_deleted",
    }
)
_DELIVERY_RE = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class JiraWebhooks(WebhookVerifier):
    provider: ClassVar[str] = "jira"

    def verify(self, *, secret: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        return signature_matches(
            secret=secret,
            message=body,
            provided=header(headers, SIGNATURE_HEADER),
            prefix="sha256=",
        )

    def event_name(self, *, headers: Mapping[str, str], payload: Mapping[str, Any] | None) -> str:
        # Jira names the event only in the body.
        if isinstance(payload, Mapping) and isinstance(payload.get("webhookEvent"), str):
            return str(payload["webhookEvent"]).strip()
        return ""

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str:
        # Jira Cloud keeps one identifier across the retries of a delivery.
        value = (header(headers, "X-Atlassian-Webhook-Identifier") or "").strip()
        if _DELIVERY_RE.fullmatch(value):
            return value
        return hashlib.sha256(body).hexdigest()

    def is_known_event(self, event: str) -> bool:
        # "" (a decoded body without `webhookEvent`) goes on to `parse`, which refuses it: a
        # body that is no Jira delivery is a 400, not an event we ignore.
        return event == "" or event in KNOWN_EVENTS

    def parse(self, *, event: str, payload: Any, base_url: str) -> WebhookEvent:
        if not isinstance(payload, Mapping):
            raise WebhookPayloadError(f"a Jira payload is a JSON object, not {describe(payload)}")
        named = payload.get("webhookEvent")
        if not isinstance(named, str) or not named:
            raise WebhookPayloadError("not a Jira webhook: the body has no webhookEvent")
        try:
            return self._parse(named, payload)
        except ShapeError as exc:
            raise WebhookPayloadError(f"Jira {named} payload: {exc}") from exc

    def _parse(self, event: str, payload: Mapping[str, Any]) -> WebhookEvent:
        type_name = payload.get("issue_event_type_name")
        action = type_name if isinstance(type_name, str) else ""
        issue = payload.get("issue")
        repository = project_key(issue) if isinstance(issue, Mapping) else None

        def ignored(reason: str) -> WebhookEvent:
            return WebhookEvent(
                kind=EventKind.IGNORED,
                event=event,
                action=action,
                repository=repository,
                reason=reason,
            )

        if event in COMMENT_EVENTS or (event in ISSUE_EVENTS and action in LEGACY_COMMENT_TYPES):
            key, external_id = self._names(issue) if isinstance(issue, Mapping) else (None, None)
            return WebhookEvent(
                kind=EventKind.COMMENT,
                event=event,
                action=action or event,
                repository=repository,
                issue_number=key,
                issue_external_id=external_id,
            )
        if event in ISSUE_EVENTS or event == "jira:issue_deleted":
            key, external_id = self._names(require_mapping(issue, "issue"))
            if repository is None:
                raise ShapeError("issue names no project")
            return WebhookEvent(
                # The payload is REST v2 (wiki markup): the worker re-reads the issue through
                # v3 (ADF), so the body we store always comes from one format.
                kind=EventKind.ISSUE if event in ISSUE_EVENTS else EventKind.ISSUE_DELETED,
                event=event,
                action=action,
                repository=repository,
                issue=None,
                issue_number=key,
                issue_external_id=external_id,
            )
        if event in KNOWN_EVENTS:
            return ignored(f"event {event!r} does not concern issues")
        return ignored(f"unknown Jira event {event!r}")

    @staticmethod
    def _names(issue: Mapping[str, Any]) -> tuple[str, str]:
        key = require_str(issue, "key", "issue")
        external_id = require_str(issue, "id", "issue")
        if not _KEY_RE.fullmatch(key) or not external_id:
            raise ShapeError(f"issue.key {key!r} is not an issue key")
        return key, external_id
