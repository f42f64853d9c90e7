"""A fake GitLab on loopback: the REST API v4 routes issue sync uses, and project webhooks.

Shaped after GitLab's documented API (there is no GitLab OpenAPI document to validate
against): projects addressed by numeric id or URL-encoded path, issues by `iid`, offset
pagination with `x-*` headers and `Link` (totals left out when `omit_totals` is set, as
GitLab does above 10,000 rows), `RateLimit-*` headers on every answer, and one `Issue Hook`
per saved change — for changes made through the API too, since a real GitLab echoes our
own pushes back to us.

GitLab sends no webhook when an issue is deleted; `send_delete_webhooks=True` makes this
fake send an `Issue Hook` with action `delete`, for tests of that code path only.

Run it alone with `python -m integrations.fake_trackers.gitlab --port 8081 --seed 20`.
"""

from __future__ import annotations

import dataclasses
import email.utils
import hmac
import json
import re
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from integrations.fake_trackers.base import (
    FakeIssue,
    FakeTracker,
    HttpError,
    OutgoingWebhook,
    RecordedRequest,
    Response,
    Route,
    cli_parser,
    serve_until_interrupted,
    tracker_options,
    utcnow,
)
from integrations.fake_trackers.hooks import ProjectHooks
from integrations.providers.shapes import header

GITLAB_VERSION = "17.5.1"
DEFAULT_TOKEN = "test-token"
API = "/api/v4"
_PROJECT = API + r"/projects/(?P<project>[^/]+)"
_ISSUE = _PROJECT + r"/issues/(?P<iid>[0-9]+)"
# The fake's action names (shared by every fake) → GitLab's `object_attributes.action`.
_HOOK_ACTIONS = {"opened": "open", "closed": "close", "reopened": "reopen", "deleted": "delete"}
_TYPE_NAMES = {
    "issue": "Issue",
    "incident": "Incident",
    "requirement": "Requirement",
    "test_case": "Test Case",
    "task": "Task",
    "objective": "Objective",
    "key_result": "Key Result",
    "epic": "Epic",
}
_UPDATE_KEYS = frozenset(
    {
        "title",
        "description",
        "state_event",
        "labels",
        "add_labels",
        "remove_labels",
        "assignee_ids",
        "assignee_id",
        "milestone_id",
        "confidential",
        "discussion_locked",
        "due_date",
    }
)


def ts(value: datetime) -> str:
    """GitLab's timestamp format: `2026-05-28T06:17:50.385Z`."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{value.microsecond // 1000:03d}Z"
    )


def _parse_time(value: str) -> datetime | None:
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


class _Keep:
    """Marks a request argument that was not sent (distinct from an explicit null)."""


_KEEP = _Keep()


class FakeGitLab(FakeTracker, ProjectHooks):
    provider = "gitlab"
    max_page_size = 100
    default_page_size = 20
    poll_interval = 0.02

    def __init__(
        self,
        *,
        repository: str = "acme/widgets",
        token: str = DEFAULT_TOKEN,
        webhook_url: str | None = None,
        webhook_secret: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        project_id: int = 4242,
        api_user: str = "sync-bot",
        send_delete_webhooks: bool = False,
    ) -> None:
        super().__init__(
            repository=repository,
            token=token,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            host=host,
            port=port,
        )
        self.project_id = project_id
        # The user the token belongs to: the actor of every change made through the API.
        self.api_user = api_user
        self.known_users.add(api_user)
        self.send_delete_webhooks = send_delete_webhooks
        # Behave like a listing of more than 10,000 rows: no x-total, x-total-pages, rel=last.
        self.omit_totals = False
        self.issues_enabled = True
        self.rate_limit = 2000  # requests per minute, GitLab.com's authenticated API limit
        self.enforce_rate_limit = False
        self.webhook_uuid = str(uuid.uuid4())
        self.issue_types: dict[int, str] = {}  # number → key of _TYPE_NAMES; default "issue"
        self.confidential: set[int] = set()
        self.closed_milestones: set[str] = set()
        self.created = utcnow().replace(microsecond=0)
        self._user_ids: dict[str, int] = {"root": 1}
        self._label_ids: dict[str, int] = {}
        self._milestone_ids: dict[str, int] = {}
        self._rate_window = 0
        self._rate_count = 0

    # --- ids for names the neutral state keeps as strings --------------------------------

    def user_id(self, username: str) -> int:
        with self.lock:
            return self._user_ids.setdefault(username, 100 + len(self._user_ids))

    def label_id(self, name: str) -> int:
        with self.lock:
            return self._label_ids.setdefault(name, 10 + len(self._label_ids))

    def milestone_id(self, title: str) -> int:
        with self.lock:
            return self._milestone_ids.setdefault(title, 300 + len(self._milestone_ids))

    def add_user(self, username: str) -> int:
        with self.lock:
            self.known_users.add(username)
            return self.user_id(username)

    def _users(self) -> list[str]:
        with self.lock:
            names = set(self.known_users)
            for issue in self.issues.values():
                names.update(issue.assignees)
                names.add(issue.author)
            return sorted(names)

    # --- a human in GitLab's UI ----------------------------------------------------------

    # GitLab stores every description's CRLF as LF, whether the API or its UI wrote it.
    def seed_issue(self, *, title: str, body: str = "", **kwargs: Any) -> FakeIssue:
        return super().seed_issue(title=title, body=_lf(body), **kwargs)

    def edit_issue(self, number: int, *, notify: bool = True, **changes: Any) -> FakeIssue:
        if isinstance(changes.get("body"), str):
            changes["body"] = _lf(changes["body"])
        return super().edit_issue(number, notify=notify, **changes)

    # --- JSON renderings -----------------------------------------------------------------

    @property
    def namespace(self) -> str:
        return self.repository.rpartition("/")[0]

    def web_url(self, issue: FakeIssue) -> str:
        return f"{self.url}/{self.repository}/-/issues/{issue.number}"

    def user_json(self, username: str) -> dict[str, Any]:
        return {
            "id": self.user_id(username),
            "username": username,
            "name": username.replace("-", " ").title(),
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.url}/{username}",
        }

    def milestone_json(self, title: str) -> dict[str, Any]:
        number = self.milestone_id(title) - 299
        return {
            "id": self.milestone_id(title),
            "iid": number,
            "project_id": self.project_id,
            "title": title,
            "description": None,
            "state": "closed" if title in self.closed_milestones else "active",
            "created_at": ts(self.created),
            "updated_at": ts(self.created),
            "due_date": None,
            "start_date": None,
            "expired": False,
            "web_url": f"{self.url}/{self.repository}/-/milestones/{number}",
        }

    def label_json(self, name: str) -> dict[str, Any]:
        with self.lock:
            open_count = sum(
                1 for i in self.issues.values() if name in i.labels and i.state == "open"
            )
            closed_count = sum(
                1 for i in self.issues.values() if name in i.labels and i.state == "closed"
            )
        return {
            "id": self.label_id(name),
            "name": name,
            "description": None,
            "description_html": "",
            "text_color": "#FFFFFF",
            "color": "#6699cc",
            "open_issues_count": open_count,
            "closed_issues_count": closed_count,
            "open_merge_requests_count": 0,
            "subscribed": False,
            "priority": None,
            "is_project_label": True,
            "archived": False,
        }

    def issue_json(self, issue: FakeIssue) -> dict[str, Any]:
        """An issue as `GET /projects/:id/issues/:iid` returns it."""
        kind = self.issue_types.get(issue.number, "issue")
        closed = issue.state == "closed"
        assignees = [self.user_json(name) for name in issue.assignees]
        number = issue.number
        project_api = f"{self.url}{API}/projects/{self.project_id}"
        return {
            "id": issue.id,
            "iid": number,
            "project_id": self.project_id,
            "title": issue.title,
            # GitLab answers null for an issue created without a description.
            "description": issue.body or None,
            "state": "closed" if closed else "opened",
            "created_at": ts(issue.created_at),
            "updated_at": ts(issue.updated_at),
            "closed_at": ts(issue.updated_at) if closed else None,
            "closed_by": self.user_json(self.api_user) if closed else None,
            "labels": sorted(issue.labels),
            "milestone": self.milestone_json(issue.milestone) if issue.milestone else None,
            "assignees": assignees,
            "assignee": assignees[0] if assignees else None,
            "author": self.user_json(issue.author),
            "type": kind.upper(),
            "issue_type": kind,
            "user_notes_count": 0,
            "merge_requests_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "due_date": None,
            "confidential": number in self.confidential,
            "discussion_locked": None,
            "web_url": self.web_url(issue),
            "time_stats": {
                "time_estimate": 0,
                "total_time_spent": 0,
                "human_time_estimate": None,
                "human_total_time_spent": None,
            },
            "task_completion_status": {"count": 0, "completed_count": 0},
            "has_tasks": False,
            "references": {
                "short": f"#{number}",
                "relative": f"#{number}",
                "full": f"{self.repository}#{number}",
            },
            "severity": "UNKNOWN",
            "moved_to_id": None,
            "service_desk_reply_to": None,
            "_links": {
                "self": f"{project_api}/issues/{number}",
                "notes": f"{project_api}/issues/{number}/notes",
                "award_emoji": f"{project_api}/issues/{number}/award_emoji",
                "project": project_api,
            },
        }

    def project_json(self) -> dict[str, Any]:
        name = self.repository.rpartition("/")[2]
        namespace = self.namespace
        with self.lock:
            open_issues = sum(
                1 for i in self.issues.values() if i.state == "open" and not i.is_pull_request
            )
        return {
            "id": self.project_id,
            "description": None,
            "name": name,
            "name_with_namespace": " / ".join(self.repository.split("/")),
            "path": name,
            "path_with_namespace": self.repository,
            "created_at": ts(self.created),
            "default_branch": "main",
            "tag_list": [],
            "topics": [],
            "ssh_url_to_repo": f"git@127.0.0.1:{self.repository}.git",
            "http_url_to_repo": f"{self.url}/{self.repository}.git",
            "web_url": f"{self.url}/{self.repository}",
            "avatar_url": None,
            "last_activity_at": ts(self.created),
            "namespace": {
                "id": 7,
                "name": namespace.rpartition("/")[2],
                "path": namespace.rpartition("/")[2],
                "kind": "group",
                "full_path": namespace,
                "parent_id": None,
                "web_url": f"{self.url}/groups/{namespace}",
            },
            "issues_enabled": self.issues_enabled,
            "open_issues_count": open_issues,
            "visibility": "private",
            "permissions": {
                "project_access": {"access_level": 30, "notification_level": 3},
                "group_access": None,
            },
        }

    # --- HTTP: auth, rate limits ---------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        token = header(headers, "PRIVATE-TOKEN")
        if token is None:
            auth = header(headers, "Authorization") or ""
            if auth.startswith("Bearer "):
                token = auth[len("Bearer ") :]
        if token is None:
            return False
        return hmac.compare_digest(token.encode(), self.token.encode())

    def rate_limit_headers(self) -> dict[str, str]:
        with self.lock:
            observed, window = self._rate_count, self._rate_window
        reset = window + 60
        return {
            "RateLimit-Limit": str(self.rate_limit),
            "RateLimit-Observed": str(observed),
            "RateLimit-Remaining": str(max(0, self.rate_limit - observed)),
            "RateLimit-Reset": str(reset),
            "RateLimit-ResetTime": email.utils.formatdate(reset, usegmt=True),
        }

    def _respond(self, record: RecordedRequest) -> Response:
        now = time.time()
        with self.lock:
            window = int(now // 60) * 60
            if window != self._rate_window:
                self._rate_window, self._rate_count = window, 0
            self._rate_count += 1
            throttled = self.enforce_rate_limit and self._rate_count > self.rate_limit
        if throttled:
            wait = max(1, int(window + 60 - now))
            response = Response(
                HTTPStatus.TOO_MANY_REQUESTS, {"message": "Retry later"}, {"Retry-After": str(wait)}
            )
        else:
            response = super()._respond(record)
        if response.status == HTTPStatus.UNAUTHORIZED:
            response.body = {"message": "401 Unauthorized"}
        # Every answer carries them, errors included (the base adds them to routed ones only).
        for name, value in self.rate_limit_headers().items():
            response.headers.setdefault(name, value)
        return response

    # --- routes --------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        table: list[tuple[str, str, Any]] = [
            ("GET", _PROJECT, self._get_project),
            ("GET", _PROJECT + "/issues", self._list_issues),
            ("POST", _PROJECT + "/issues", self._create_issue),
            ("GET", _ISSUE, self._get_issue),
            ("PUT", _ISSUE, self._update_issue),
            ("DELETE", _ISSUE, self._delete_issue),
            ("GET", _PROJECT + "/labels", self._list_labels),
            ("POST", _PROJECT + "/labels", self._create_label),
            ("GET", _PROJECT + "/milestones", self._list_milestones),
            ("POST", _PROJECT + "/milestones", self._create_milestone),
            ("GET", _PROJECT + "/members/all", self._list_members),
            ("GET", _PROJECT + "/hooks", self._hooks_list),
            ("POST", _PROJECT + "/hooks", self._hooks_create),
            ("GET", _PROJECT + r"/hooks/(?P<hook_id>\d+)", self._hooks_get),
            ("PUT", _PROJECT + r"/hooks/(?P<hook_id>\d+)", self._hooks_update),
            ("DELETE", _PROJECT + r"/hooks/(?P<hook_id>\d+)", self._hooks_delete),
            ("GET", API + "/users", self._list_users),
        ]
        return [(method, re.compile(pattern), view) for method, pattern, view in table]

    # --- project hooks (integrations/fake_trackers/hooks.py) ---------------------------------

    def _hooks_list(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        return self.list_hooks_view()

    def _hooks_create(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        return self.create_hook_view(data)

    def _hooks_get(
        self, record: RecordedRequest, data: Any, project: str, hook_id: str
    ) -> Response:
        self._check_project(project)
        return self.get_hook_view(hook_id)

    def _hooks_update(
        self, record: RecordedRequest, data: Any, project: str, hook_id: str
    ) -> Response:
        self._check_project(project)
        return self.update_hook_view(data, hook_id)

    def _hooks_delete(
        self, record: RecordedRequest, data: Any, project: str, hook_id: str
    ) -> Response:
        self._check_project(project)
        return self.delete_hook_view(hook_id)

    def _check_project(self, project: str) -> None:
        wanted = unquote(project).casefold()
        if wanted not in (self.repository.casefold(), str(self.project_id)):
            raise HttpError(HTTPStatus.NOT_FOUND, "404 Project Not Found")

    def _find_issue(self, project: str, iid: str) -> FakeIssue:
        self._check_project(project)
        with self.lock:
            issue = self.issues.get(int(iid))
        # Merge requests live at another endpoint: they are not issues here.
        if issue is None or issue.is_pull_request:
            raise HttpError(HTTPStatus.NOT_FOUND, "404 Not found")
        return issue

    @staticmethod
    def _query(record: RecordedRequest, name: str) -> str | None:
        values = record.query.get(name)
        return values[0] if values else None

    @staticmethod
    def _body(data: Any) -> dict[str, Any]:
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise HttpError(HTTPStatus.BAD_REQUEST, "400 Bad request - the body is not an object")
        return data

    def _paged(self, record: RecordedRequest, items: list[Any], render: Any) -> Response:
        page_items, page, size, pages = self.paginate(
            record, items, page_param="page", size_param="per_page"
        )
        headers = {
            "X-Page": str(page),
            "X-Per-Page": str(size),
            "X-Next-Page": str(page + 1) if page < pages else "",
            "X-Prev-Page": str(page - 1) if 1 < page <= pages + 1 else "",
        }
        links = []
        if page > 1:
            links.append(f'<{self.page_url(record, min(page - 1, pages))}>; rel="prev"')
        if page < pages:
            links.append(f'<{self.page_url(record, page + 1)}>; rel="next"')
        links.append(f'<{self.page_url(record, 1)}>; rel="first"')
        if not self.omit_totals:
            headers["X-Total"] = str(len(items))
            headers["X-Total-Pages"] = str(pages)
            links.append(f'<{self.page_url(record, pages)}>; rel="last"')
        headers["Link"] = ", ".join(links)
        return Response(HTTPStatus.OK, [render(item) for item in page_items], headers)

    def _get_project(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        return Response(HTTPStatus.OK, self.project_json())

    def _list_issues(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        state = self._query(record, "state") or "all"
        if state not in ("opened", "closed", "all"):
            raise HttpError(HTTPStatus.BAD_REQUEST, "state does not have a valid value")
        order_by = self._query(record, "order_by") or "created_at"
        if order_by not in ("created_at", "updated_at"):
            raise HttpError(HTTPStatus.BAD_REQUEST, "order_by does not have a valid value")
        sort = self._query(record, "sort") or "desc"
        if sort not in ("asc", "desc"):
            raise HttpError(HTTPStatus.BAD_REQUEST, "sort does not have a valid value")
        bounds: dict[str, datetime] = {}
        for name in ("updated_after", "updated_before", "created_after", "created_before"):
            raw = self._query(record, name)
            if raw is not None:
                parsed = _parse_time(raw)
                if parsed is None:
                    raise HttpError(HTTPStatus.BAD_REQUEST, f"{name} is invalid")
                bounds[name] = parsed
        wanted_labels = {n for n in (self._query(record, "labels") or "").split(",") if n}
        with self.lock:
            items = [i for i in self.issues.values() if not i.is_pull_request]
        if state != "all":
            items = [i for i in items if i.state == ("open" if state == "opened" else "closed")]
        if "updated_after" in bounds:
            items = [i for i in items if i.updated_at >= bounds["updated_after"]]
        if "updated_before" in bounds:
            items = [i for i in items if i.updated_at <= bounds["updated_before"]]
        if "created_after" in bounds:
            items = [i for i in items if i.created_at >= bounds["created_after"]]
        if "created_before" in bounds:
            items = [i for i in items if i.created_at <= bounds["created_before"]]
        if wanted_labels:
            items = [i for i in items if wanted_labels <= set(i.labels)]
        items.sort(key=lambda i: (getattr(i, order_by), i.id), reverse=sort == "desc")
        return self._paged(record, items, self.issue_json)

    def _get_issue(self, record: RecordedRequest, data: Any, project: str, iid: str) -> Response:
        return Response(HTTPStatus.OK, self.issue_json(self._find_issue(project, iid)))

    def _create_issue(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        body = self._body(data)
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise HttpError(HTTPStatus.BAD_REQUEST, "title is missing")
        description = body.get("description")
        if description is not None and not isinstance(description, str):
            raise HttpError(HTTPStatus.BAD_REQUEST, "description is invalid")
        labels = self._labels_arg(body.get("labels")) if "labels" in body else []
        assignees = self._assignees_arg(body)
        milestone = self._milestone_arg(body)
        issue = self.seed_issue(
            title=title,
            body=_lf(description or ""),
            labels=labels,
            assignees=[] if assignees is None else assignees,
            milestone=None if isinstance(milestone, _Keep) else milestone,
        )
        with self.lock:
            issue.author = self.api_user
            if body.get("confidential") is True:
                self.confidential.add(issue.number)
        self.emit_issue_event(issue, "opened", actor=self.api_user)
        return Response(HTTPStatus.CREATED, self.issue_json(issue))

    def _update_issue(self, record: RecordedRequest, data: Any, project: str, iid: str) -> Response:
        issue = self._find_issue(project, iid)
        body = self._body(data)
        if not _UPDATE_KEYS & body.keys():
            raise HttpError(HTTPStatus.BAD_REQUEST, "at least one parameter must be provided")
        # Validate everything before changing anything, as one database save would.
        changes: dict[str, Any] = {}
        if "title" in body:
            if not isinstance(body["title"], str) or not body["title"].strip():
                raise HttpError(HTTPStatus.BAD_REQUEST, "title is empty")
            changes["title"] = body["title"]
        if "description" in body:
            if body["description"] is not None and not isinstance(body["description"], str):
                raise HttpError(HTTPStatus.BAD_REQUEST, "description is invalid")
            changes["body"] = _lf(body["description"] or "")
        event = body.get("state_event")
        if event is not None:
            if event not in ("close", "reopen"):
                raise HttpError(HTTPStatus.BAD_REQUEST, "state_event does not have a valid value")
            changes["state"] = "closed" if event == "close" else "open"
        with self.lock:
            labels = set(issue.labels)
        if "labels" in body:
            labels = set(self._labels_arg(body["labels"]))
        if "add_labels" in body:
            labels |= set(self._labels_arg(body["add_labels"]))
        if "remove_labels" in body:
            labels -= set(self._labels_arg(body["remove_labels"]))
        if labels != set(issue.labels):
            changes["labels"] = sorted(labels)
        assignees = self._assignees_arg(body)
        if assignees is not None:
            changes["assignees"] = sorted(set(assignees))
        milestone = self._milestone_arg(body)
        if not isinstance(milestone, _Keep):
            changes["milestone"] = milestone
        with self.lock:
            before = issue.copy()
            for key, value in changes.items():
                setattr(issue, key, value)
            for label in issue.labels:
                if label not in self.known_labels:
                    self.known_labels.append(label)  # GitLab creates unknown labels on use
            changed = _state_of(before) != _state_of(issue)
            if changed:
                issue.updated_at = self.now()
        if changed:
            self.emit_change_events(before, issue, actor=self.api_user)
        return Response(HTTPStatus.OK, self.issue_json(issue))

    def _delete_issue(self, record: RecordedRequest, data: Any, project: str, iid: str) -> Response:
        issue = self._find_issue(project, iid)
        self.delete_issue(issue.number)
        return Response(HTTPStatus.NO_CONTENT)

    def _labels_arg(self, value: Any) -> list[str]:
        if isinstance(value, str):
            names = value.split(",")
        elif isinstance(value, list) and all(isinstance(v, str) for v in value):
            names = list(value)
        else:
            raise HttpError(HTTPStatus.BAD_REQUEST, "labels is invalid")
        return sorted({name.strip() for name in names if name.strip()})

    def _assignees_arg(self, body: Mapping[str, Any]) -> list[str] | None:
        """Usernames for `assignee_ids` (or `assignee_id`); None when neither was sent."""
        if "assignee_ids" in body:
            raw = body["assignee_ids"]
            if raw is None:
                raw = []
            elif isinstance(raw, int) and not isinstance(raw, bool):
                raw = [raw]
        elif "assignee_id" in body:
            raw = [] if body["assignee_id"] is None else [body["assignee_id"]]
        else:
            return None
        if not isinstance(raw, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in raw
        ):
            raise HttpError(HTTPStatus.BAD_REQUEST, "assignee_ids is invalid")
        with self.lock:
            by_id = {self.user_id(name): name for name in self._users()}
        # GitLab drops ids of users who cannot be assigned; 0 means "nobody".
        return sorted({by_id[v] for v in raw if v in by_id})

    def _milestone_arg(self, body: Mapping[str, Any]) -> str | _Keep | None:
        if "milestone_id" not in body:
            return _KEEP
        raw = body["milestone_id"]
        if raw is None:
            return None
        if not isinstance(raw, int) or isinstance(raw, bool):
            raise HttpError(HTTPStatus.BAD_REQUEST, "milestone_id is invalid")
        if raw == 0:
            return None
        with self.lock:
            by_id = {self.milestone_id(title): title for title in self.known_milestones}
        if raw not in by_id:
            raise HttpError(HTTPStatus.NOT_FOUND, "404 Milestone Not Found")
        return by_id[raw]

    def _list_labels(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        search = (self._query(record, "search") or "").casefold()
        with self.lock:
            names = sorted(n for n in self.known_labels if search in n.casefold())
        return self._paged(record, names, self.label_json)

    def _create_label(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        body = self._body(data)
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise HttpError(HTTPStatus.BAD_REQUEST, "name is missing")
        if not isinstance(body.get("color"), str):
            raise HttpError(HTTPStatus.BAD_REQUEST, "color is missing")
        with self.lock:
            if name in self.known_labels:
                raise HttpError(HTTPStatus.CONFLICT, "Label already exists")
            self.known_labels.append(name)
        return Response(HTTPStatus.CREATED, self.label_json(name))

    def _list_milestones(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        title = self._query(record, "title")
        search = (self._query(record, "search") or "").casefold()
        state = self._query(record, "state")
        with self.lock:
            titles = list(self.known_milestones)
        if title is not None:
            titles = [t for t in titles if t == title]
        titles = [t for t in titles if search in t.casefold()]
        if state == "active":
            titles = [t for t in titles if t not in self.closed_milestones]
        elif state == "closed":
            titles = [t for t in titles if t in self.closed_milestones]
        titles.sort(key=self.milestone_id, reverse=True)  # newest first, as GitLab lists them
        return self._paged(record, titles, self.milestone_json)

    def _create_milestone(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        title = self._body(data).get("title")
        if not isinstance(title, str) or not title.strip():
            raise HttpError(HTTPStatus.BAD_REQUEST, "title is missing")
        with self.lock:
            if title in self.known_milestones:
                raise HttpError(HTTPStatus.BAD_REQUEST, "Milestone already exists")
            self.known_milestones.append(title)
        return Response(HTTPStatus.CREATED, self.milestone_json(title))

    def _member_json(self, username: str) -> dict[str, Any]:
        return {
            **self.user_json(username),
            "access_level": 30,
            "created_at": ts(self.created),
            "expires_at": None,
            "membership_state": "active",
        }

    def _list_members(self, record: RecordedRequest, data: Any, project: str) -> Response:
        self._check_project(project)
        query = (self._query(record, "query") or "").casefold()
        names = [
            n
            for n in self._users()
            if query in n.casefold() or query in self.user_json(n)["name"].casefold()
        ]
        return self._paged(record, names, self._member_json)

    def _list_users(self, record: RecordedRequest, data: Any) -> Response:
        username = self._query(record, "username")
        names = self._users()
        if username is not None:
            names = [n for n in names if n.casefold() == username.casefold()]
        return self._paged(record, names, self.user_json)

    # --- webhooks ------------------------------------------------------------------------

    def emit_change_events(
        self, before: FakeIssue, after: FakeIssue, *, actor: str | None = None
    ) -> None:
        """GitLab sends one Issue Hook per save, whatever changed, with a `changes` block."""
        if _state_of(before) == _state_of(after):
            return
        if before.state != after.state:
            action = "closed" if after.state == "closed" else "reopened"
        else:
            action = "edited"
        self.emit_issue_event(after, action, before=before, actor=actor or after.author)

    def build_webhook(self, issue: FakeIssue, action: str, **extra: Any) -> OutgoingWebhook | None:
        hook_action = _HOOK_ACTIONS.get(action, "update")
        if hook_action == "delete" and not self.send_delete_webhooks:
            return None
        if issue.is_pull_request:
            return None  # a merge request: its hooks are Merge Request Hooks, not modelled here
        before = extra.get("before")
        actor = extra.get("actor") or issue.author
        with self.lock:
            payload = self.issue_hook_payload(issue, hook_action, before=before, actor=actor)
            confidential = issue.number in self.confidential
        event = "Confidential Issue Hook" if confidential else "Issue Hook"
        idempotency_key = self.new_delivery_id()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"GitLab/{GITLAB_VERSION}",
            "X-Gitlab-Event": event,
            "X-Gitlab-Webhook-UUID": self.webhook_uuid,
            "X-Gitlab-Event-UUID": str(uuid.uuid4()),
            "X-Gitlab-Instance": self.url,
            "Idempotency-Key": idempotency_key,
        }
        if self.webhook_secret:
            headers["X-Gitlab-Token"] = self.webhook_secret
        return OutgoingWebhook(
            event=event,
            headers=headers,
            body=json.dumps(payload).encode(),
            delivery_id=idempotency_key,
        )

    def hook_user(self, username: str) -> dict[str, Any]:
        return {
            "id": self.user_id(username),
            "name": username.replace("-", " ").title(),
            "username": username,
            "avatar_url": None,
            "email": "[REDACTED]",
        }

    def hook_label(self, name: str) -> dict[str, Any]:
        return {
            "id": self.label_id(name),
            "title": name,
            "color": "#6699cc",
            "project_id": self.project_id,
            "created_at": ts(self.created),
            "updated_at": ts(self.created),
            "template": False,
            "description": None,
            "type": "ProjectLabel",
            "group_id": None,
        }

    def hook_project(self) -> dict[str, Any]:
        web_url = f"{self.url}/{self.repository}"
        ssh_url = f"git@127.0.0.1:{self.repository}.git"
        return {
            "id": self.project_id,
            "name": self.repository.rpartition("/")[2],
            "description": None,
            "web_url": web_url,
            "avatar_url": None,
            "git_ssh_url": ssh_url,
            "git_http_url": f"{web_url}.git",
            "namespace": self.namespace,
            "visibility_level": 0,
            "path_with_namespace": self.repository,
            "default_branch": "main",
            "ci_config_path": "",
            "homepage": web_url,
            "url": ssh_url,
            "ssh_url": ssh_url,
            "http_url": f"{web_url}.git",
        }

    def issue_hook_payload(
        self, issue: FakeIssue, action: str, *, before: FakeIssue | None, actor: str
    ) -> dict[str, Any]:
        kind = self.issue_types.get(issue.number, "issue")
        # Issues and requirements come as `issue`; incidents, tasks, OKRs as `work_item`.
        object_kind = "issue" if kind in ("issue", "requirement") else "work_item"
        confidential = issue.number in self.confidential
        labels = [self.hook_label(name) for name in issue.labels]
        assignee_ids = [self.user_id(name) for name in issue.assignees]
        closed = issue.state == "closed"
        attributes = {
            "author_id": self.user_id(issue.author),
            "closed_at": ts(issue.updated_at) if closed else None,
            "confidential": confidential,
            "created_at": ts(issue.created_at),
            "description": issue.body,
            "discussion_locked": None,
            "due_date": None,
            "id": issue.id,
            "iid": issue.number,
            "last_edited_at": None,
            "last_edited_by_id": None,
            "milestone_id": self.milestone_id(issue.milestone) if issue.milestone else None,
            "moved_to_id": None,
            "duplicated_to_id": None,
            "project_id": self.project_id,
            "relative_position": issue.id * 513,
            "state_id": 2 if closed else 1,
            "time_estimate": 0,
            "title": issue.title,
            "updated_at": ts(issue.updated_at),
            "updated_by_id": self.user_id(actor),
            "weight": None,
            "health_status": None,
            "type": _TYPE_NAMES.get(kind, "Issue"),
            "url": self.web_url(issue),
            "total_time_spent": 0,
            "time_change": 0,
            "human_total_time_spent": None,
            "human_time_change": None,
            "human_time_estimate": None,
            "assignee_ids": assignee_ids,
            "assignee_id": assignee_ids[0] if assignee_ids else None,
            "labels": labels,
            "state": "closed" if closed else "opened",
            "severity": "unknown",
            "customer_relations_contacts": [],
            "action": action,
        }
        payload: dict[str, Any] = {
            "object_kind": object_kind,
            "event_type": ("confidential_" if confidential else "") + object_kind,
            "user": self.hook_user(actor),
            "project": self.hook_project(),
            "object_attributes": attributes,
            "labels": labels,
            "changes": self._hook_changes(issue, action, before),
            "repository": {
                "name": self.repository.rpartition("/")[2],
                "url": f"git@127.0.0.1:{self.repository}.git",
                "description": None,
                "homepage": f"{self.url}/{self.repository}",
            },
        }
        if issue.assignees:
            # GitLab leaves the key out when nobody is assigned.
            payload["assignees"] = [self.hook_user(name) for name in issue.assignees]
        return payload

    def _hook_changes(
        self, issue: FakeIssue, action: str, before: FakeIssue | None
    ) -> dict[str, Any]:
        def change(previous: Any, current: Any) -> dict[str, Any]:
            return {"previous": previous, "current": current}

        changes: dict[str, Any] = {}
        if action == "open":
            for key, value in (
                ("author_id", self.user_id(issue.author)),
                ("created_at", ts(issue.created_at)),
                ("description", issue.body),
                ("id", issue.id),
                ("iid", issue.number),
                ("project_id", self.project_id),
                ("title", issue.title),
                ("updated_at", ts(issue.updated_at)),
            ):
                changes[key] = change(None, value)
            before = dataclasses.replace(issue, labels=[], assignees=[], milestone=None)
        elif before is None:
            return changes
        else:
            if before.title != issue.title:
                changes["title"] = change(before.title, issue.title)
            if before.body != issue.body:
                changes["description"] = change(before.body, issue.body)
            if before.state != issue.state:
                closed = issue.state == "closed"
                changes["closed_at"] = change(
                    None if closed else ts(before.updated_at),
                    ts(issue.updated_at) if closed else None,
                )
                changes["state_id"] = change(1 if closed else 2, 2 if closed else 1)
            changes["updated_at"] = change(ts(before.updated_at), ts(issue.updated_at))
        if before.labels != issue.labels:
            changes["labels"] = change(
                [self.hook_label(n) for n in before.labels],
                [self.hook_label(n) for n in issue.labels],
            )
        if before.assignees != issue.assignees:
            changes["assignees"] = change(
                [self.hook_user(n) for n in before.assignees],
                [self.hook_user(n) for n in issue.assignees],
            )
        if before.milestone != issue.milestone:
            changes["milestone_id"] = change(
                self.milestone_id(before.milestone) if before.milestone else None,
                self.milestone_id(issue.milestone) if issue.milestone else None,
            )
        return changes


def _state_of(issue: FakeIssue) -> tuple[Any, ...]:
    """What a save compares: GitLab sends no hook and keeps `updated_at` when nothing changed."""
    return (
        issue.title,
        issue.body,
        issue.state,
        sorted(issue.labels),
        sorted(issue.assignees),
        issue.milestone,
    )


def seed_demo_issues(fake: FakeGitLab, count: int) -> None:
    """A varied, deterministic set of issues: some labelled, assigned, milestoned, closed."""
    labels = list(fake.known_labels)
    users = sorted(fake.known_users - {fake.api_user})
    milestones = list(fake.known_milestones)
    for n in range(count):
        fake.seed_issue(
            title=f"Demo issue {n + 1}",
            body=f"Seeded by the fake GitLab — issue {n + 1} of {count}.",
            state="closed" if n % 5 == 4 else "open",
            labels=[labels[n % len(labels)]] if n % 2 == 0 else [],
            assignees=[users[n % len(users)]] if n % 3 == 0 else [],
            milestone=milestones[n % len(milestones)] if n % 4 == 0 else None,
        )


def _lf(text: str) -> str:
    """GitLab stores a description's CRLF line endings as LF (what its API then answers)."""
    return text.replace("\r\n", "\n")


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser(
        "A fake GitLab REST API v4 on 127.0.0.1.",
        default_token=DEFAULT_TOKEN,
        secret_help="sent as X-Gitlab-Token",
    )
    parser.add_argument("--project-id", type=int, default=4242)
    args = parser.parse_args(argv)
    fake = FakeGitLab(**tracker_options(args), project_id=args.project_id)
    fake.start()
    seed_demo_issues(fake, args.seed)
    print(f"fake GitLab at {fake.url} (API {fake.url}{API})", flush=True)
    print(f"project {fake.repository} (id {fake.project_id}), {args.seed} issues", flush=True)
    print(f"token {fake.token}", flush=True)
    serve_until_interrupted(fake)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
