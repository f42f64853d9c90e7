"""A fake Jira Cloud (REST API v3) for one project, on the shared fake-tracker server.

Shapes follow Atlassian's v3 description (`shared/specs/jira.json`) where it has the operation,
and the captured webhooks in `shared/fixtures/jira`: issues are `{id, key, fields}` with ADF
descriptions; `/search/jql` (newer than the spec) pages by an opaque `nextPageToken`; JQL
dates have minute precision and are read in the API user's time zone (`/myself`); edits are
one `PUT` (204) with `fields` and the `update` verbs for labels; open/closed is a small
workflow run by transitions, where "In Review" has no direct way to Done or To Do; errors
are `{"errorMessages": [...], "errors": {field: why}}`; authentication is basic auth with
the account's e-mail and an API token; webhooks carry the REST v2 representation (wiki
markup text) signed with `X-Hub-Signature: sha256=…`.

Issues are kept by their number `n` (the key is `<project>-<n>`), like the other fakes.
Run it alone: `python -m integrations.fake_trackers.jira --port 8081 --seed 20`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import re
import sys
from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

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

_API = r"/rest/api/3"
_KEY = r"(?P<key>[^/]+)"


@dataclasses.dataclass(frozen=True)
class Status:
    id: str
    name: str
    category: str  # "new" | "indeterminate" | "done"


STATUSES = {
    s.name: s
    for s in (
        Status("1", "To Do", "new"),
        Status("3", "In Progress", "indeterminate"),
        Status("4", "In Review", "indeterminate"),
        Status("5", "Done", "done"),
    )
}
_CATEGORY_IDS = {"new": 2, "indeterminate": 4, "done": 3}
_CATEGORY_NAMES = {"new": "To Do", "indeterminate": "In Progress", "done": "Done"}
# transition id → (name, from statuses, to status). "In Review" reaches neither Done nor To Do
# directly: closing or reopening from there must be refused, not walked.
WORKFLOW: dict[str, tuple[str, frozenset[str], str]] = {
    "11": ("Start progress", frozenset({"To Do"}), "In Progress"),
    "21": ("Request review", frozenset({"In Progress"}), "In Review"),
    "31": ("Back to work", frozenset({"In Review"}), "In Progress"),
    "41": ("Resolve", frozenset({"To Do", "In Progress"}), "Done"),
    "51": ("Stop progress", frozenset({"In Progress"}), "To Do"),
    "61": ("Reopen", frozenset({"Done"}), "To Do"),
}
_JQL = re.compile(
    r'project\s*=\s*"?(?P<project>[A-Za-z][A-Za-z0-9_]*)"?'
    r'(?:\s+AND\s+updated\s*>=\s*"(?P<since>\d{4}-\d{2}-\d{2} \d{2}:\d{2})")?'
    r"\s+ORDER\s+BY\s+updated\s+ASC",
    re.IGNORECASE,
)


class Refused(Exception):
    """A 400 in Jira's shape: `errors` names the Jira field."""

    def __init__(self, errors: dict[str, str] | None = None, messages: list[str] | None = None):
        super().__init__(str(errors or messages))
        self.errors = errors or {}
        self.messages = messages or []


def adf_text(document: Any) -> str:
    """The fake's own reading of an ADF description: paragraphs joined by a blank line,
    hardBreaks as newlines. Kept independent of the client's converter on purpose."""
    if document is None:
        return ""
    if (
        not isinstance(document, dict)
        or document.get("type") != "doc"
        or document.get("version") != 1
        or not isinstance(document.get("content"), list)
    ):
        raise Refused({"description": "Operation value must be an Atlassian Document."})
    blocks = []
    for block in document["content"]:
        if not isinstance(block, dict) or not isinstance(block.get("content", []), list):
            raise Refused({"description": "INVALID_INPUT"})
        parts = []
        for node in block.get("content", []):
            if not isinstance(node, dict):
                raise Refused({"description": "INVALID_INPUT"})
            if node.get("type") == "text":
                if not isinstance(node.get("text"), str) or not node["text"]:
                    raise Refused({"description": "INVALID_INPUT: empty text node"})
                parts.append(node["text"])
            elif node.get("type") == "hardBreak":
                parts.append("\n")
            else:
                parts.append(str(node.get("attrs", {}).get("text", "")))
        blocks.append("".join(parts))
    return "\n\n".join(blocks)


def adf_document(text: str) -> dict[str, Any]:
    """A human's plain text in the fake's UI, stored as Jira stores it (ADF)."""
    content = []
    for block in text.split("\n\n") if text else []:
        nodes: list[dict[str, Any]] = []
        for index, line in enumerate(block.split("\n")):
            if index:
                nodes.append({"type": "hardBreak"})
            if line:
                nodes.append({"type": "text", "text": line})
        content.append({"type": "paragraph", "content": nodes})
    return {"type": "doc", "version": 1, "content": content}


class FakeJira(FakeTracker):
    provider = "jira"
    max_page_size = 100
    default_page_size = 50

    def __init__(
        self,
        *,
        repository: str = "PROJ",
        email: str = "sync-bot@example.com",
        time_zone: str = "America/New_York",
        **kwargs: Any,
    ) -> None:
        super().__init__(repository=repository, **kwargs)
        self.email = email
        # JQL dates are read in this zone (the API user's profile setting).
        self.time_zone = time_zone
        self.api_user = "sync-bot"
        self.known_users = {"alice", "bob", "carol", "dave", self.api_user}  # accountIds
        self.statuses: dict[int, str] = {}
        self.descriptions: dict[int, dict[str, Any]] = {}  # ADF as last written by the API
        self.properties: dict[int, dict[str, Any]] = {}
        self.project_id = "10000"

    @property
    def key(self) -> str:
        return self.repository

    def issue_key(self, issue: FakeIssue) -> str:
        return f"{self.key}-{issue.number}"

    def version_id(self, name: str) -> str:
        return str(10000 + self.known_milestones.index(name))

    # --- state -----------------------------------------------------------------------------

    def seed_issue(
        self, *, status: str | None = None, notify: bool = False, **kwargs: Any
    ) -> FakeIssue:
        with self.lock:
            issue = super().seed_issue(notify=False, **kwargs)
            self.statuses[issue.number] = status or ("Done" if issue.state == "closed" else "To Do")
            issue.state = self._state_of(self.statuses[issue.number])
        if notify:
            self.emit_issue_event(issue, "opened")
        return issue

    @staticmethod
    def _state_of(status: str) -> str:
        return "closed" if STATUSES[status].category == "done" else "open"

    def edit_issue(self, number: int, *, notify: bool = True, **changes: Any) -> FakeIssue:
        """A human edit in Jira's UI; `status=` moves the issue to that status directly (an
        administrator's bulk move), `state=` to Done / To Do."""
        with self.lock:
            issue = self.issues[number]
            before = issue.copy()
            status = changes.pop("status", None)
            state = changes.pop("state", None)
            if state is not None and state != issue.state:
                status = status or ("Done" if state == "closed" else "To Do")
            if status is not None:
                self.statuses[number] = status
                issue.state = self._state_of(status)
            if "body" in changes:
                self.descriptions.pop(number, None)
            for key, value in changes.items():
                setattr(issue, key, sorted(set(value)) if key in ("labels", "assignees") else value)
            issue.updated_at = self.now()
        if notify:
            self.emit_change_events(before, issue)
        return issue

    def delete_issue(self, number: int, *, notify: bool = True) -> None:
        with self.lock:
            issue = self.issues[number]
            hook = self.build_webhook(issue, "deleted")
            super().delete_issue(number, notify=False)
            self.statuses.pop(number, None)
            self.descriptions.pop(number, None)
            self.properties.pop(number, None)
        if notify and hook is not None:
            self.send_webhook(hook)

    def seed(self, count: int) -> list[FakeIssue]:
        return [self.seed_issue(title=f"Seeded issue {n + 1}") for n in range(count)]

    # --- rendering ---------------------------------------------------------------------------

    def render_user(self, account_id: str) -> dict[str, Any]:
        return {
            "self": f"{self.url}/rest/api/3/user?accountId={account_id}",
            "accountId": account_id,
            "displayName": account_id.title(),
            "active": True,
            "timeZone": self.time_zone,
            "accountType": "atlassian",
        }

    def render_status(self, name: str) -> dict[str, Any]:
        status = STATUSES[name]
        return {
            "self": f"{self.url}/rest/api/3/status/{status.id}",
            "id": status.id,
            "name": status.name,
            "description": "",
            "iconUrl": f"{self.url}/images/icons/status.png",
            "statusCategory": {
                "self": f"{self.url}/rest/api/3/statuscategory/{_CATEGORY_IDS[status.category]}",
                "id": _CATEGORY_IDS[status.category],
                "key": status.category,
                "colorName": "blue-gray",
                "name": _CATEGORY_NAMES[status.category],
            },
        }

    def render_version(self, name: str) -> dict[str, Any]:
        return {
            "self": f"{self.url}/rest/api/3/version/{self.version_id(name)}",
            "id": self.version_id(name),
            "name": name,
            "archived": False,
            "released": False,
            "projectId": int(self.project_id),
        }

    def _fields(self, issue: FakeIssue, *, v2: bool) -> dict[str, Any]:
        description: Any
        if v2:  # webhooks: REST v2, the description as (wiki markup) text
            description = issue.body or None
        else:
            description = self.descriptions.get(issue.number) or (
                adf_document(issue.body) if issue.body else None
            )
        return {
            "summary": issue.title,
            "description": description,
            "status": self.render_status(self.statuses[issue.number]),
            "labels": list(issue.labels),
            "assignee": self.render_user(issue.assignees[0]) if issue.assignees else None,
            "fixVersions": [self.render_version(issue.milestone)] if issue.milestone else [],
            "project": {
                "self": f"{self.url}/rest/api/3/project/{self.project_id}",
                "id": self.project_id,
                "key": self.key,
                "name": f"Project {self.key}",
            },
            "issuetype": {"id": "10001", "name": "Task", "subtask": False},
            "created": self._stamp(issue.created_at),
            "updated": self._stamp(issue.updated_at),
        }

    @staticmethod
    def _stamp(value: datetime) -> str:
        # Jira's format: milliseconds and a numeric offset without a colon.
        return value.strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def render_issue(
        self, issue: FakeIssue, *, properties: list[str] | None = None, v2: bool = False
    ) -> dict[str, Any]:
        rendered: dict[str, Any] = {
            "expand": "renderedFields,names,schema,operations",
            "id": str(issue.id),
            "self": f"{self.url}/rest/api/{2 if v2 else 3}/issue/{issue.id}",
            "key": self.issue_key(issue),
            "fields": self._fields(issue, v2=v2),
        }
        if properties:
            held = self.properties.get(issue.number, {})
            rendered["properties"] = {k: held[k] for k in properties if k in held}
        return rendered

    def render_project(self) -> dict[str, Any]:
        return {
            "self": f"{self.url}/rest/api/3/project/{self.project_id}",
            "id": self.project_id,
            "key": self.key,
            "name": f"Project {self.key}",
            "projectTypeKey": "software",
            "simplified": False,
            "style": "classic",
            "isPrivate": False,
            "versions": [self.render_version(name) for name in self.known_milestones],
        }

    # --- webhooks ----------------------------------------------------------------------------

    def emit_change_events(self, before: FakeIssue, after: FakeIssue) -> None:
        """Jira sends one `jira:issue_updated` per edit, whatever it changed."""
        if before.snapshot() != after.snapshot() or before.updated_at != after.updated_at:
            self.emit_issue_event(after, "updated", before=before)

    def build_webhook(self, issue: FakeIssue, action: str, **extra: Any) -> OutgoingWebhook | None:
        event = {
            "opened": "jira:issue_created",
            "deleted": "jira:issue_deleted",
        }.get(action, "jira:issue_updated")
        type_name = {
            "jira:issue_created": "issue_created",
            "jira:issue_deleted": "issue_deleted",
        }.get(event, "issue_updated")
        with self.lock:
            payload = {
                "timestamp": int(self.now().timestamp() * 1000),
                "webhookEvent": event,
                "issue_event_type_name": type_name,
                "user": self.render_user(self.api_user),
                "issue": self.render_issue(issue, v2=True),
            }
        body = json.dumps(payload).encode()
        delivery = self.new_delivery_id()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Atlassian-Webhook-Identifier": delivery,
        }
        if self.webhook_secret:
            digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha256).hexdigest()
            headers["X-Hub-Signature"] = f"sha256={digest}"
        return OutgoingWebhook(event=event, headers=headers, body=body, delivery_id=delivery)

    # --- HTTP ---------------------------------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, credential = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        expected = base64.b64encode(f"{self.email}:{self.token}".encode()).decode()
        return hmac.compare_digest(credential.strip().encode(), expected.encode())

    def routes(self) -> list[Route]:
        def route(method: str, pattern: str, view: Callable[..., Response]) -> Route:
            return method, re.compile(_API + pattern), self._jira_errors(view)

        return [
            route("GET", r"/myself", self._myself),
            route("GET", r"/project/(?P<project>[^/]+)", self._get_project),
            route("GET", r"/search/jql", self._search),
            route("POST", r"/issue", self._create_issue),
            route("GET", r"/issue/" + _KEY, self._get_issue),
            route("PUT", r"/issue/" + _KEY, self._edit_issue),
            route("GET", r"/issue/" + _KEY + r"/transitions", self._get_transitions),
            route("POST", r"/issue/" + _KEY + r"/transitions", self._do_transition),
        ]

    @staticmethod
    def _jira_errors(view: Callable[..., Response]) -> Callable[..., Response]:
        """Jira's error body instead of the shared fake's `{"message": …}`."""

        def wrapped(record: RecordedRequest, data: Any, **params: str) -> Response:
            try:
                return view(record, data, **params)
            except Refused as exc:
                return Response(
                    HTTPStatus.BAD_REQUEST, {"errorMessages": exc.messages, "errors": exc.errors}
                )
            except HttpError as exc:
                return Response(exc.status, {"errorMessages": [exc.message], "errors": {}})

        return wrapped

    @staticmethod
    def _query(record: RecordedRequest, name: str) -> str:
        values = record.query.get(name)
        return values[0] if values else ""

    def _issue_or_404(self, key: str) -> FakeIssue:
        prefix, _, number = key.upper().rpartition("-")
        issue = self.issues.get(int(number)) if number.isdigit() and prefix == self.key else None
        if issue is None:
            raise HttpError(
                HTTPStatus.NOT_FOUND,
                "Issue does not exist or you do not have permission to see it.",
            )
        return issue

    def _properties_asked(self, record: RecordedRequest) -> list[str]:
        return [p for p in self._query(record, "properties").split(",") if p]

    def _myself(self, record: RecordedRequest, data: Any) -> Response:
        user = self.render_user(self.api_user)
        user["emailAddress"] = self.email
        return Response(HTTPStatus.OK, user)

    def _get_project(self, record: RecordedRequest, data: Any, project: str) -> Response:
        if project.upper() not in (self.key, self.project_id):
            raise HttpError(
                HTTPStatus.NOT_FOUND, f"No project could be found with key '{project}'."
            )
        with self.lock:
            return Response(HTTPStatus.OK, self.render_project())

    def _search(self, record: RecordedRequest, data: Any) -> Response:
        jql = self._query(record, "jql")
        match = _JQL.fullmatch(jql.strip())
        if match is None:
            raise Refused(messages=[f"The fake understands only this project's JQL: {jql!r}"])
        if match["project"].upper() != self.key:
            raise Refused(
                messages=[f"The value '{match['project']}' does not exist for 'project'."]
            )
        since = None
        if match["since"]:
            local = datetime.strptime(match["since"], "%Y-%m-%d %H:%M")
            since = local.replace(tzinfo=ZoneInfo(self.time_zone))
        try:
            size = int(self._query(record, "maxResults") or self.default_page_size)
        except ValueError:
            raise Refused(messages=["maxResults must be a number"]) from None
        size = max(1, min(size, self.max_page_size))
        token = self._query(record, "nextPageToken")
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode()) if token else 0
        except ValueError:
            raise Refused(messages=["Invalid nextPageToken"]) from None
        properties = self._properties_asked(record)
        with self.lock:
            selected = sorted(
                (i for i in self.issues.values() if since is None or i.updated_at >= since),
                key=lambda i: (i.updated_at, i.id),
            )
            page = [
                self.render_issue(i, properties=properties) for i in selected[start : start + size]
            ]
        answer: dict[str, Any] = {"issues": page, "isLast": start + size >= len(selected)}
        if not answer["isLast"]:
            answer["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return Response(HTTPStatus.OK, answer)

    def _get_issue(self, record: RecordedRequest, data: Any, key: str) -> Response:
        with self.lock:
            issue = self._issue_or_404(key)
            return Response(
                HTTPStatus.OK,
                self.render_issue(issue, properties=self._properties_asked(record)),
            )

    # --- writes -------------------------------------------------------------------------------

    def _assignee(self, value: Any) -> list[str]:
        if value is None:
            return []
        account = value.get("accountId") if isinstance(value, dict) else None
        if not isinstance(account, str) or account not in self.known_users:
            raise Refused({"assignee": f"User '{account}' cannot be assigned issues."})
        return [account]

    def _fix_versions(self, value: Any) -> str | None:
        if not isinstance(value, list) or len(value) > 1:
            raise Refused({"fixVersions": "The fake holds at most one fix version."})
        if not value:
            return None
        wanted = value[0] if isinstance(value[0], dict) else {}
        for name in self.known_milestones:
            if wanted.get("id") == self.version_id(name) or wanted.get("name") == name:
                return name
        raise Refused({"fixVersions": f"Version {wanted!r} is not valid"})

    @staticmethod
    def _label_value(value: Any) -> str:
        if not isinstance(value, str) or not value or any(c.isspace() for c in value):
            raise Refused({"labels": f"The label '{value}' contains spaces which is invalid."})
        return value

    def _apply_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Jira `fields` → FakeIssue changes (and the raw ADF under `_adf`)."""
        changes: dict[str, Any] = {}
        for name, value in fields.items():
            if name == "summary":
                if not isinstance(value, str) or not value.strip():
                    raise Refused({"summary": "You must specify a summary of the issue."})
                changes["title"] = value
            elif name == "description":
                changes["body"] = adf_text(value)
                changes["_adf"] = value
            elif name == "labels":
                if not isinstance(value, list):
                    raise Refused({"labels": "labels must be a list"})
                changes["labels"] = [self._label_value(v) for v in value]
            elif name == "assignee":
                changes["assignees"] = self._assignee(value)
            elif name == "fixVersions":
                changes["milestone"] = self._fix_versions(value)
            elif name not in ("project", "issuetype"):
                raise Refused({name: f"Field '{name}' cannot be set. It is not on the screen."})
        return changes

    def _create_issue(self, record: RecordedRequest, data: Any) -> Response:
        if not isinstance(data, dict) or not isinstance(data.get("fields"), dict):
            raise Refused(messages=["fields are required"])
        fields = data["fields"]
        project = fields.get("project") if isinstance(fields.get("project"), dict) else {}
        if str(project.get("key", project.get("id", ""))).upper() not in (
            self.key,
            self.project_id,
        ):
            raise Refused({"project": "Specify a valid project ID or key"})
        if "summary" not in fields:
            raise Refused({"summary": "You must specify a summary of the issue."})
        properties = data.get("properties") or []
        if not isinstance(properties, list) or not all(
            isinstance(p, dict) and isinstance(p.get("key"), str) for p in properties
        ):
            raise Refused(messages=["properties must be a list of {key, value}"])
        with self.lock:
            changes = self._apply_fields(fields)
            adf = changes.pop("_adf", None)
            issue = self.seed_issue(
                title=changes["title"],
                body=changes.get("body", ""),
                labels=changes.get("labels"),
                assignees=changes.get("assignees"),
                milestone=changes.get("milestone"),
            )
            issue.author = self.api_user
            if isinstance(adf, dict):
                self.descriptions[issue.number] = adf
            self.properties[issue.number] = {p["key"]: p.get("value") for p in properties}
            self.emit_issue_event(issue, "opened")
            key = self.issue_key(issue)
            return Response(
                HTTPStatus.CREATED,
                {
                    "id": str(issue.id),
                    "key": key,
                    "self": f"{self.url}/rest/api/3/issue/{issue.id}",
                },
            )

    def _edit_issue(self, record: RecordedRequest, data: Any, key: str) -> Response:
        if not isinstance(data, dict):
            raise Refused(messages=["the body must be a JSON object"])
        fields = data.get("fields") or {}
        update = data.get("update") or {}
        if not isinstance(fields, dict) or not isinstance(update, dict):
            raise Refused(messages=["fields and update must be objects"])
        both = set(fields) & set(update)
        if both:
            raise Refused({name: "Field specified in both 'fields' and 'update'." for name in both})
        with self.lock:
            issue = self._issue_or_404(key)
            changes = self._apply_fields(fields)
            adf = changes.pop("_adf", None)
            for name, operations in update.items():
                if name != "labels" or not isinstance(operations, list):
                    raise Refused({name: "The fake supports the update verbs for labels only."})
                labels = set(changes.get("labels", issue.labels))
                for operation in operations:
                    if not isinstance(operation, dict) or len(operation) != 1:
                        raise Refused({"labels": "one verb per operation"})
                    verb, value = next(iter(operation.items()))
                    if verb == "add":
                        labels.add(self._label_value(value))
                    elif verb == "remove":
                        labels.discard(value)
                    elif verb == "set":
                        labels = {self._label_value(v) for v in value}
                    else:
                        raise Refused({"labels": f"unknown verb {verb!r}"})
                changes["labels"] = sorted(labels)
            changed = {
                k: v
                for k, v in changes.items()
                if (sorted(set(v)) if k in ("labels", "assignees") else v) != getattr(issue, k)
            }
            if changed:
                self.edit_issue(issue.number, **changed)
            if isinstance(adf, dict):
                self.descriptions[issue.number] = adf
            elif "body" in changes:
                self.descriptions.pop(issue.number, None)
        return Response(HTTPStatus.NO_CONTENT, None)

    def _available(self, issue: FakeIssue) -> list[tuple[str, str, str]]:
        status = self.statuses[issue.number]
        return [
            (tid, name, target)
            for tid, (name, sources, target) in WORKFLOW.items()
            if status in sources
        ]

    def _get_transitions(self, record: RecordedRequest, data: Any, key: str) -> Response:
        with self.lock:
            issue = self._issue_or_404(key)
            transitions = [
                {
                    "id": tid,
                    "name": name,
                    "to": self.render_status(target),
                    "hasScreen": False,
                    "isGlobal": False,
                    "isInitial": False,
                    "isAvailable": True,
                    "isConditional": False,
                    "isLooped": False,
                }
                for tid, name, target in self._available(issue)
            ]
        return Response(HTTPStatus.OK, {"expand": "transitions", "transitions": transitions})

    def _do_transition(self, record: RecordedRequest, data: Any, key: str) -> Response:
        wanted = data.get("transition") if isinstance(data, dict) else None
        tid = wanted.get("id") if isinstance(wanted, dict) else None
        with self.lock:
            issue = self._issue_or_404(key)
            for available, _, target in self._available(issue):
                if available == tid:
                    self.edit_issue(issue.number, status=target)
                    return Response(HTTPStatus.NO_CONTENT, None)
        raise Refused(
            messages=[f"Transition id '{tid}' is not valid for this issue."],
        )


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("Run a fake Jira Cloud (REST v3) on loopback.")
    parser.add_argument("--email", default="sync-bot@example.com")
    parser.set_defaults(repository="PROJ")
    args = parser.parse_args(argv)
    fake = FakeJira(email=args.email, **tracker_options(args))
    fake.seed(args.seed)
    return serve_cli(
        fake,
        lambda: [
            f"Fake Jira serving project {fake.key} at {fake.url}",
            f"e-mail: {fake.email}  API token: {fake.token}",
        ],
        webhook_url=args.webhook_url,
    )


if __name__ == "__main__":
    sys.exit(main())
