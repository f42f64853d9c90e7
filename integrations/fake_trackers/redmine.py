"""FakeRedmine: a stateful fake of the Redmine 5.0 REST API (the routes issue sync uses).

Built from what a real Redmine 5.0.4 (Debian 12, thin) answered — `../shared/REDMINE.md` and
`tests/redmine/test_parity.py`, which runs one scenario against both and compares the answers:

- auth by `X-Redmine-API-Key` (or `?key=`) with login_required: a bad or missing key → 401
  with an empty body; unknown issue or project → 404 with an empty body; malformed JSON → 400;
- `GET /issues.json` lists open issues unless `status_id=*` / `closed` / an id; `updated_on=>=T`
  means "later than T minus 1 s" (timestamps are kept to the microsecond, shown to the second);
  `sort=updated_on,id`; `limit` capped at 100 (25 by default) with `total_count`/`offset`/`limit`;
- `POST /issues.json` → 201 with the issue and a `Location`; a given status is ignored;
- `PUT /issues/N.json` → 204 with no body, and it bumps `updated_on` even when nothing changes;
  an unknown or workflow-forbidden (`forbidden_status_ids`) `status_id` is silently ignored;
  a body without the `issue` wrapper changes nothing;
- `DELETE` → 204, then 404 (no tombstone); an assignee who is no project member → 422
  "Assignee is invalid"; a label the custom field does not define → 422
  "Labels is not included in the list"; validation errors come as `{"errors": [...]}`;
- descriptions are stored with CRLF line ends; weak ETags (`W/"…"`) with `If-None-Match` → 304;
  `include=journals` gives notes and per-field old/new values; no webhooks, no `Date` header.

Run it alone: `python -m integrations.fake_trackers.redmine --port 8082 --seed 20`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
import re
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from integrations.fake_trackers.base import (
    FakeIssue,
    FakeTracker,
    RecordedRequest,
    Response,
    Route,
    cli_parser,
    iso,
    serve_cli,
    tracker_options,
)

REDMINE_VERSION = "5.0.4.stable"
JSON_TYPE = "application/json; charset=utf-8"
# Redmine's default data (`rake redmine:load_default_data`, English).
DEFAULT_STATUSES: tuple[tuple[int, str, bool], ...] = (
    (1, "New", False),
    (2, "In Progress", False),
    (3, "Resolved", False),
    (4, "Feedback", False),
    (5, "Closed", True),
    (6, "Rejected", True),
)
DEFAULT_LABELS = ("bug", "feature", "docs", "question", "wontfix", "security", "good-first-issue")
_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:?\d{2})?")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISSUE = r"/issues/(?P<issue_id>\d+)\.json"


@dataclasses.dataclass
class Journal:
    id: int
    user: str
    notes: str
    created_on: datetime
    details: list[dict[str, Any]]


class FakeRedmine(FakeTracker):
    provider = "redmine"
    max_page_size = 100  # Redmine caps `limit` at 100
    default_page_size = 25
    sends_date = False  # thin sends no Date header (the parity test compares it)

    def __init__(
        self,
        *,
        api_user: str = "admin",
        labels_field: str = "Labels",
        labels_field_id: int = 1,
        members: tuple[str, ...] = ("alice", "bob", "carol"),
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("repository", "widgets")
        super().__init__(**kwargs)
        self.project_id = 1
        self.api_user = api_user
        self.labels_field = labels_field
        self.labels_field_id = labels_field_id
        self.known_labels = list(DEFAULT_LABELS)
        self.known_users = {"admin", "alice", "bob", "carol", "dave", "eve"}
        self.members = set(members)  # assignable in the project
        self.user_ids = {login: index for index, login in enumerate(sorted(self.known_users), 1)}
        self.user_ids["admin"] = 1
        self.version_ids: dict[str, int] = {}
        self.statuses = [
            {"id": sid, "name": name, "is_closed": closed} for sid, name, closed in DEFAULT_STATUSES
        ]
        self.status_of: dict[int, int] = {}  # issue id → status id
        # Statuses the API user's role may not set (Redmine's workflow): silently ignored.
        self.forbidden_status_ids: set[int] = set()
        self.updated_precise: dict[int, datetime] = {}  # issue id → updated_on to the µs
        self.closed_on: dict[int, datetime] = {}
        self.journals: dict[int, list[Journal]] = {}
        self.label_order: dict[int, list[str]] = {}  # values as Redmine lists them
        self.null_description: set[int] = set()  # issues whose description is null, not ""
        self._next_journal = 1
        self.next_number = 1
        for name in self.known_milestones:
            self.version_id(name)

    # --- clock and identity --------------------------------------------------------------

    def now(self) -> datetime:
        """Microsecond timestamps, strictly increasing: Redmine stores µs, shows seconds."""
        with self.lock:
            current = utcnow_us() + timedelta(seconds=self._clock_offset)
            if self._last_timestamp is not None and current <= self._last_timestamp:
                current = self._last_timestamp + timedelta(microseconds=1)
            self._last_timestamp = current
            return current

    def version_id(self, name: str) -> int:
        with self.lock:
            if name not in self.version_ids:
                self.version_ids[name] = len(self.version_ids) + 1
            if name not in self.known_milestones:
                self.known_milestones.append(name)
            return self.version_ids[name]

    def user_id(self, login: str) -> int:
        with self.lock:
            if login not in self.user_ids:
                self.user_ids[login] = max(self.user_ids.values()) + 1
                self.known_users.add(login)
            return self.user_ids[login]

    def _login_of(self, user_id: int) -> str | None:
        return next((login for login, uid in self.user_ids.items() if uid == user_id), None)

    def status(self, name_or_id: str | int) -> dict[str, Any]:
        return next(s for s in self.statuses if name_or_id in (s["id"], s["name"]))

    def status_name(self, number: int) -> str:
        """The tracker's own status of an issue (what `tracker_status` shows)."""
        with self.lock:
            return str(self.status(self.status_of[number])["name"])

    # --- state helpers (a human in Redmine's UI) -----------------------------------------

    def seed(self, count: int, *, seed: int = 7) -> list[FakeIssue]:
        rng = random.Random(seed)  # noqa: S311 - test data, not secrets
        return [
            self.seed_issue(
                title=f"Seeded issue {index + 1}",
                body=f"Body of seeded issue {index + 1}\r\nsecond line",
                labels=rng.sample(self.known_labels, rng.randint(0, 2)),
                assignees=rng.sample(sorted(self.members), rng.randint(0, 1)),
                milestone=rng.choice([None, *self.known_milestones]),
            )
            for index in range(count)
        ]

    def seed_issue(self, **kwargs: Any) -> FakeIssue:
        kwargs["body"] = crlf(kwargs.get("body") or "")
        status = kwargs.pop("status", None)
        issue = super().seed_issue(**kwargs)
        with self.lock:
            issue.id = issue.number  # Redmine: one global id, no per-project number
            status_id = self._status_for(issue.state, status)
            self.status_of[issue.number] = status_id
            self.updated_precise[issue.number] = issue.updated_at
            self.journals[issue.number] = []
            if issue.state == "closed":
                self.closed_on[issue.number] = issue.updated_at
            if issue.milestone:
                self.version_id(issue.milestone)
            self.members.update(issue.assignees)
        return issue

    def edit_issue(self, number: int, *, notify: bool = True, **changes: Any) -> FakeIssue:
        """Change an issue as a user in Redmine would (`status="In Progress"` sets a status)."""
        with self.lock:
            issue = self.issues[number]
            before = issue.copy()
            before_status = self.status_of[number]
            status = changes.pop("status", None)
            user = changes.pop("user", "alice")
            if "body" in changes:
                changes["body"] = crlf(changes["body"] or "")
            for key, value in changes.items():
                setattr(issue, key, sorted(set(value)) if key in ("labels", "assignees") else value)
            if status is not None or "state" in changes:
                self.status_of[number] = self._status_for(issue.state, status)
                issue.state = (
                    "closed" if self.status(self.status_of[number])["is_closed"] else "open"
                )
            self._touch(issue, before, before_status, user=user)
        return issue

    def delete_issue(self, number: int, *, notify: bool = True) -> None:
        with self.lock:
            self.issues.pop(number)
            self.status_of.pop(number, None)
            self.updated_precise.pop(number, None)
            self.closed_on.pop(number, None)
            self.journals.pop(number, None)

    def _status_for(self, state: str, status: str | int | None) -> int:
        if status is not None:
            return int(self.status(status)["id"])
        return 5 if state == "closed" else 1

    def _touch(
        self, issue: FakeIssue, before: FakeIssue, before_status: int, *, user: str, notes: str = ""
    ) -> None:
        """Bump updated_on (always, as every PUT does) and journal what changed."""
        stamp = self.now()
        issue.updated_at = stamp
        self.updated_precise[issue.number] = stamp
        status_id = self.status_of[issue.number]
        if status_id != before_status and self.status(status_id)["is_closed"]:
            self.closed_on[issue.number] = stamp
        details = self._details(before, issue, before_status, status_id)
        if details or notes:
            self.journals[issue.number].append(
                Journal(self._next_journal, user, notes, stamp, details)
            )
            self._next_journal += 1

    def _details(
        self, before: FakeIssue, after: FakeIssue, before_status: int, status_id: int
    ) -> list[dict[str, Any]]:
        details: list[dict[str, Any]] = []

        def attr(name: str, old: Any, new: Any) -> None:
            if old != new:
                details.append(
                    {
                        "property": "attr",
                        "name": name,
                        "old_value": None if old is None else str(old),
                        "new_value": None if new is None else str(new),
                    }
                )

        attr("subject", before.title, after.title)
        attr("description", before.body, after.body)
        attr("status_id", before_status, status_id)
        attr(
            "assigned_to_id",
            self.user_ids.get(before.assignees[0]) if before.assignees else None,
            self.user_ids.get(after.assignees[0]) if after.assignees else None,
        )
        attr(
            "fixed_version_id",
            self.version_ids.get(before.milestone) if before.milestone else None,
            self.version_ids.get(after.milestone) if after.milestone else None,
        )
        field = str(self.labels_field_id)
        for value in sorted(set(before.labels) - set(after.labels)):
            details.append({"property": "cf", "name": field, "old_value": value, "new_value": None})
        for value in sorted(set(after.labels) - set(before.labels)):
            details.append({"property": "cf", "name": field, "old_value": None, "new_value": value})
        return details

    # --- rendering -----------------------------------------------------------------------

    def render_user_ref(self, login: str) -> dict[str, Any]:
        name = "Redmine Admin" if login == "admin" else f"{login.capitalize()} Test"
        return {"id": self.user_id(login), "name": name}

    def render_issue(self, issue: FakeIssue, *, journals: bool = False) -> dict[str, Any]:
        status = self.status(self.status_of[issue.number])
        rendered: dict[str, Any] = {
            "id": issue.number,
            "project": {"id": self.project_id, "name": self.repository},
            "tracker": {"id": 1, "name": "Bug"},
            "status": dict(status),
            "priority": {"id": 2, "name": "Normal"},
            "author": self.render_user_ref(issue.author),
        }
        if issue.assignees:
            rendered["assigned_to"] = self.render_user_ref(issue.assignees[0])
        if issue.milestone:
            rendered["fixed_version"] = {
                "id": self.version_id(issue.milestone),
                "name": issue.milestone,
            }
        closed = self.closed_on.get(issue.number)
        rendered.update(
            {
                "subject": issue.title,
                "description": None if issue.number in self.null_description else issue.body,
                "start_date": issue.created_at.strftime("%Y-%m-%d"),
                "due_date": None,
                "done_ratio": 0,
                "is_private": False,
                "estimated_hours": None,
                "total_estimated_hours": None,
                "custom_fields": [
                    {
                        "id": self.labels_field_id,
                        "name": self.labels_field,
                        "multiple": True,
                        "value": self._labels_in_order(issue),
                    }
                ],
                "created_on": iso(issue.created_at),
                "updated_on": iso(self.updated_precise[issue.number]),
                "closed_on": iso(closed) if closed else None,
            }
        )
        if journals:
            rendered["journals"] = [
                {
                    "id": journal.id,
                    "user": self.render_user_ref(journal.user),
                    "notes": journal.notes,
                    "created_on": iso(journal.created_on),
                    "private_notes": False,
                    "details": journal.details,
                }
                for journal in self.journals.get(issue.number, [])
            ]
        return rendered

    def _labels_in_order(self, issue: FakeIssue) -> list[str]:
        """Redmine lists a multi-value field's values in the order their rows were stored:
        values kept by a write stay in place, added ones follow in the order sent."""
        stored = self.label_order.get(issue.number, [])
        kept = [value for value in stored if value in issue.labels]
        order = kept + [value for value in sorted(issue.labels) if value not in kept]
        self.label_order[issue.number] = order
        return order

    def _order_labels(self, number: int, sent: list[str]) -> None:
        stored = [value for value in self.label_order.get(number, []) if value in sent]
        self.label_order[number] = stored + [value for value in sent if value not in stored]

    def render_version(self, name: str) -> dict[str, Any]:
        return {
            "id": self.version_id(name),
            "project": {"id": self.project_id, "name": self.repository},
            "name": name,
            "description": "",
            "status": "open",
            "due_date": None,
            "sharing": "none",
            "wiki_page_title": None,
            "created_on": iso(self.now()),
            "updated_on": iso(self.now()),
        }

    # --- HTTP ----------------------------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        # The `?key=` form is checked in `_respond` (it is in the query, not the headers).
        value = next((v for k, v in headers.items() if k.lower() == "x-redmine-api-key"), "")
        return hmac.compare_digest(value.encode(), self.token.encode())

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        base = super()._handler_class()

        class Handler(base):  # type: ignore[valid-type,misc]
            # Redmine behind thin sends no `Date` header: a client must not need one.
            def send_response(self, code: int, message: str | None = None) -> None:
                self.log_request(code)
                self.send_response_only(code, message)
                self.send_header("Server", "thin")

        return Handler

    def etag_for(self, payload: bytes) -> str:
        return 'W/"' + hashlib.md5(payload).hexdigest() + '"'  # noqa: S324 - not security

    def _respond(self, record: RecordedRequest) -> Response:
        key = record.query.get("key", [""])[0]
        if key and hmac.compare_digest(key.encode(), self.token.encode()):
            record.headers = {**record.headers, "X-Redmine-API-Key": key}
        response = super()._respond(record)
        # Redmine answers 400/401/403/404 with an empty body; errors it explains are
        # `{"errors": [...]}` (422), built by the views below.
        if response.status in (400, 401, 403, 404):
            response.body = None
            response.headers["Content-Type"] = (
                "text/html; charset=utf-8" if response.status == 400 else "application/json"
            )
        elif response.body is not None:
            response.headers.setdefault("Content-Type", JSON_TYPE)
            if response.status == HTTPStatus.CREATED:  # Redmine tags a create's answer too
                payload = json.dumps(response.body, sort_keys=True).encode()
                response.headers.setdefault("ETag", self.etag_for(payload))
        response.headers.setdefault("Cache-Control", "max-age=0, private, must-revalidate")
        return response

    def routes(self) -> list[Route]:
        def route(method: str, pattern: str, view: Callable[..., Response]) -> Route:
            return method, re.compile(pattern), view

        return [
            route("GET", r"/issues\.json", self._list_issues),
            route("POST", r"/issues\.json", self._create_issue),
            route("GET", _ISSUE, self._get_issue),
            route("PUT", _ISSUE, self._update_issue),
            route("DELETE", _ISSUE, self._delete_issue),
            route("GET", r"/issue_statuses\.json", self._list_statuses),
            route("GET", r"/custom_fields\.json", self._list_custom_fields),
            route("GET", r"/users/current\.json", self._current_user),
            route("GET", r"/users/(?P<user_id>\d+)\.json", self._get_user),
            route("GET", r"/projects/(?P<project>[^/]+)\.json", self._get_project),
            route("GET", r"/projects/(?P<project>[^/]+)/versions\.json", self._list_versions),
            route("GET", r"/projects/(?P<project>[^/]+)/memberships\.json", self._list_memberships),
        ]

    @staticmethod
    def _query(record: RecordedRequest, name: str) -> str:
        values = record.query.get(name)
        return values[0] if values else ""

    def _is_project(self, value: Any) -> bool:
        return str(value) in (self.repository, str(self.project_id))

    # --- listing -------------------------------------------------------------------------

    def _list_issues(self, record: RecordedRequest, data: Any) -> Response:
        project = self._query(record, "project_id")
        if project and not self._is_project(project):
            return Response(HTTPStatus.NOT_FOUND)
        status_filter = self._query(record, "status_id") or "open"
        bounds: list[Callable[[datetime], bool]] = []
        raw = self._query(record, "updated_on")
        if raw:
            bound = _updated_on_filter(raw)
            if bound is None:
                return _errors("Updated is invalid")
            bounds.append(bound)
        with self.lock:
            selected = [
                issue
                for issue in self.issues.values()
                if self._status_matches(issue, status_filter)
                and all(test(self.updated_precise[issue.number]) for test in bounds)
            ]
            selected.sort(key=self._sort_key(self._query(record, "sort")))
            limit = _int_or(self._query(record, "limit"), self.default_page_size)
            limit = self.default_page_size if limit <= 0 else min(limit, self.max_page_size)
            offset = max(0, _int_or(self._query(record, "offset"), 0))
            page = [self.render_issue(i) for i in selected[offset : offset + limit]]
        return Response(
            HTTPStatus.OK,
            {"issues": page, "total_count": len(selected), "offset": offset, "limit": limit},
        )

    def _status_matches(self, issue: FakeIssue, wanted: str) -> bool:
        closed = bool(self.status(self.status_of[issue.number])["is_closed"])
        if wanted == "*":
            return True
        if wanted == "open":
            return not closed
        if wanted == "closed":
            return closed
        ids = {int(part) for part in wanted.split("|") if part.isdigit()}
        return self.status_of[issue.number] in ids  # unknown words match nothing, like Redmine

    def _sort_key(self, sort: str) -> Callable[[FakeIssue], Any]:
        columns: list[tuple[str, bool]] = []
        for part in (sort or "id:desc").split(","):
            name, _, direction = part.strip().partition(":")
            if name in ("id", "updated_on", "created_on"):
                columns.append((name, direction == "desc"))
        if not columns:
            columns = [("id", True)]
        if all(name != "id" for name, _ in columns):
            columns.append(("id", True))  # Redmine breaks ties by id, newest first

        def value(issue: FakeIssue, name: str) -> float:
            if name == "id":
                return float(issue.number)
            stamp = self.updated_precise[issue.number] if name == "updated_on" else issue.created_at
            return stamp.timestamp()

        return lambda issue: tuple(
            -value(issue, name) if desc else value(issue, name) for name, desc in columns
        )

    # --- single issues -------------------------------------------------------------------

    def _get_issue(self, record: RecordedRequest, data: Any, issue_id: str) -> Response:
        include = self._query(record, "include").split(",")
        with self.lock:
            issue = self.issues.get(int(issue_id))
            if issue is None:
                return Response(HTTPStatus.NOT_FOUND)
            return Response(
                HTTPStatus.OK, {"issue": self.render_issue(issue, journals="journals" in include)}
            )

    def _validate(
        self, form: dict[str, Any], issue: FakeIssue | None
    ) -> tuple[dict[str, Any], list[str]]:
        """The changes a form asks for, and Redmine's validation errors (in its order)."""
        changes: dict[str, Any] = {}
        errors: list[str] = []
        if "subject" in form:
            changes["title"] = "" if form["subject"] is None else str(form["subject"])
        if "description" in form:
            changes["body"] = (
                None if form["description"] is None else crlf(str(form["description"]))
            )
        title = changes.get("title", issue.title if issue else "")
        if not title:
            errors.append("Subject cannot be blank")
        if "custom_fields" in form:
            for field in form["custom_fields"] or []:
                if not isinstance(field, dict) or int(field.get("id") or 0) != self.labels_field_id:
                    continue
                value = field.get("value")
                values = [value] if isinstance(value, str) else list(value or [])
                values = list(dict.fromkeys(str(v) for v in values if str(v) != ""))
                if any(v not in self.known_labels for v in values):
                    errors.append(f"{self.labels_field} is not included in the list")
                else:
                    changes["labels"] = values
        if "fixed_version_id" in form:
            wanted = form["fixed_version_id"]
            if wanted in (None, ""):
                changes["milestone"] = None
            else:
                name = next(
                    (n for n, vid in self.version_ids.items() if str(vid) == str(wanted)), None
                )
                if name is None:
                    errors.append("Target version is not included in the list")
                else:
                    changes["milestone"] = name
        if "assigned_to_id" in form:
            wanted = form["assigned_to_id"]
            if wanted in (None, ""):
                changes["assignees"] = []
            else:
                login = self._login_of(_int_or(str(wanted), -1))
                if login is None or login not in self.members:
                    errors.append("Assignee is invalid")
                else:
                    changes["assignees"] = [login]
        return changes, errors

    def _create_issue(self, record: RecordedRequest, data: Any) -> Response:
        form = data.get("issue") if isinstance(data, dict) else None
        form = form if isinstance(form, dict) else {}
        if not self._is_project(form.get("project_id", "")):
            return _errors(
                "Project cannot be blank", "Tracker cannot be blank", "Status cannot be blank"
            )
        with self.lock:
            changes, errors = self._validate(form, None)
            if errors:
                return _errors(*errors)
            # A status given on create is ignored, even for an admin.
            sent_labels = changes.get("labels") or []
            issue = self.seed_issue(
                title=changes["title"],
                body=changes.get("body") or "",
                labels=changes.get("labels") or [],
                assignees=changes.get("assignees") or [],
                milestone=changes.get("milestone"),
            )
            if changes.get("body") is None:
                self.null_description.add(issue.number)  # Redmine keeps a missing one null
            self._order_labels(issue.number, sent_labels)
            issue.author = self.api_user
            rendered = self.render_issue(issue)
        return Response(
            HTTPStatus.CREATED,
            {"issue": rendered},
            {"Location": f"{self.url}/issues/{issue.number}"},
        )

    def _update_issue(self, record: RecordedRequest, data: Any, issue_id: str) -> Response:
        form = data.get("issue") if isinstance(data, dict) else None
        form = form if isinstance(form, dict) else {}  # no `issue` wrapper: nothing changes
        with self.lock:
            issue = self.issues.get(int(issue_id))
            if issue is None:
                return Response(HTTPStatus.NOT_FOUND)
            changes, errors = self._validate(form, issue)
            if errors:
                return _errors(*errors)
            before, before_status = issue.copy(), self.status_of[issue.number]
            if "body" in changes:
                if changes["body"] is None:
                    self.null_description.add(issue.number)
                    changes["body"] = ""
                else:
                    self.null_description.discard(issue.number)
            if "labels" in changes:
                self._order_labels(issue.number, changes["labels"])
                changes["labels"] = sorted(changes["labels"])
            for key, value in changes.items():
                setattr(issue, key, value)
            wanted = form.get("status_id")
            # An unknown (or workflow-forbidden) status is silently ignored.
            if (
                wanted is not None
                and any(str(s["id"]) == str(wanted) for s in self.statuses)
                and _int_or(str(wanted), -1) not in self.forbidden_status_ids
            ):
                self.status_of[issue.number] = int(wanted)
                closed = self.status(int(wanted))["is_closed"]
                issue.state = "closed" if closed else "open"
            notes = form.get("notes")
            self._touch(issue, before, before_status, user=self.api_user, notes=str(notes or ""))
        return Response(HTTPStatus.NO_CONTENT)

    def _delete_issue(self, record: RecordedRequest, data: Any, issue_id: str) -> Response:
        with self.lock:
            if int(issue_id) not in self.issues:
                return Response(HTTPStatus.NOT_FOUND)
            self.delete_issue(int(issue_id))
        return Response(HTTPStatus.NO_CONTENT)

    # --- project metadata ----------------------------------------------------------------

    def _list_statuses(self, record: RecordedRequest, data: Any) -> Response:
        return Response(HTTPStatus.OK, {"issue_statuses": [dict(s) for s in self.statuses]})

    def _list_custom_fields(self, record: RecordedRequest, data: Any) -> Response:
        if self.api_user != "admin":
            return Response(HTTPStatus.FORBIDDEN)  # an administrator's route
        with self.lock:
            values = [{"value": v, "label": v} for v in self.known_labels]
        field = {
            "id": self.labels_field_id,
            "name": self.labels_field,
            "customized_type": "issue",
            "field_format": "list",
            "regexp": "",
            "min_length": None,
            "max_length": None,
            "is_required": False,
            "is_filter": True,
            "searchable": False,
            "multiple": True,
            "default_value": None,
            "visible": True,
            "possible_values": values,
            "trackers": [{"id": 1, "name": "Bug"}],
            "roles": [],
        }
        return Response(HTTPStatus.OK, {"custom_fields": [field]})

    def _current_user(self, record: RecordedRequest, data: Any) -> Response:
        return Response(
            HTTPStatus.OK,
            {
                "user": {
                    "id": self.user_id(self.api_user),
                    "login": self.api_user,
                    "admin": self.api_user == "admin",
                    "firstname": "Redmine",
                    "lastname": "Admin",
                    "api_key": self.token,
                    "status": 1,
                }
            },
        )

    def _get_user(self, record: RecordedRequest, data: Any, user_id: str) -> Response:
        """A user as an administrator sees it (the login is shown to admins and the user)."""
        login = self._login_of(int(user_id))
        if login is None:
            return Response(HTTPStatus.NOT_FOUND)
        user: dict[str, Any] = {"id": int(user_id)}
        if self.api_user in ("admin", login):
            user["login"] = login
        first, last = self.render_user_ref(login)["name"].split(" ", 1)
        user.update({"firstname": first, "lastname": last, "status": 1})
        return Response(HTTPStatus.OK, {"user": user})

    def _get_project(self, record: RecordedRequest, data: Any, project: str) -> Response:
        if not self._is_project(project):
            return Response(HTTPStatus.NOT_FOUND)
        rendered: dict[str, Any] = {
            "id": self.project_id,
            "name": self.repository,
            "identifier": self.repository,
            "description": None,
            "homepage": "",
            "status": 1,
            "is_public": False,
            "inherit_members": False,
        }
        include = self._query(record, "include").split(",")
        if "trackers" in include:
            rendered["trackers"] = [{"id": 1, "name": "Bug"}]
        if "issue_custom_fields" in include:
            rendered["issue_custom_fields"] = [
                {"id": self.labels_field_id, "name": self.labels_field}
            ]
        return Response(HTTPStatus.OK, {"project": rendered})

    def _list_versions(self, record: RecordedRequest, data: Any, project: str) -> Response:
        if not self._is_project(project):
            return Response(HTTPStatus.NOT_FOUND)
        with self.lock:
            versions = [self.render_version(name) for name in self.version_ids]
        return Response(HTTPStatus.OK, {"versions": versions, "total_count": len(versions)})

    def _list_memberships(self, record: RecordedRequest, data: Any, project: str) -> Response:
        if not self._is_project(project):
            return Response(HTTPStatus.NOT_FOUND)
        with self.lock:
            rows = [
                {
                    "id": index,
                    "project": {"id": self.project_id, "name": self.repository},
                    "user": self.render_user_ref(login),
                    "roles": [{"id": 4, "name": "Developer"}],
                }
                for index, login in enumerate(sorted(self.members), 1)
            ]
        return Response(
            HTTPStatus.OK, {"memberships": rows, "total_count": len(rows), "offset": 0, "limit": 25}
        )


def utcnow_us() -> datetime:
    return datetime.now(UTC)


def crlf(text: str) -> str:
    """Redmine stores every description with CRLF line ends, whatever was sent."""
    return re.sub(r"\r\n|\r|\n", "\r\n", text)


def _int_or(raw: str, default: int) -> int:
    try:
        return int(raw)
    except ValueError:
        return default


def _errors(*messages: str) -> Response:
    return Response(HTTPStatus.UNPROCESSABLE_ENTITY, {"errors": list(messages)})


def _updated_on_filter(raw: str) -> Callable[[datetime], bool] | None:
    """Redmine's `updated_on` filter: `>=T` is "later than T minus 1 s", `<=T` is "not after T";
    a date alone means the whole day (UTC, the admin's zone). None: not a filter it accepts."""
    operator, value = raw[:2], raw[2:]
    if operator not in (">=", "<="):
        return None
    moment: datetime
    if _TIMESTAMP.fullmatch(value):
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if operator == ">=":
            start = moment - timedelta(seconds=1)
            return lambda stamp: stamp > start
        return lambda stamp: stamp <= moment
    if _DATE.fullmatch(value):
        try:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
        except ValueError:
            return None
        if operator == ">=":
            return lambda stamp: stamp >= day
        end = day + timedelta(days=1)
        return lambda stamp: stamp < end
    return None


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("Run a fake Redmine 5.0 API on loopback.")
    parser.set_defaults(repository="widgets", port=8082)
    args = parser.parse_args(argv)
    fake = FakeRedmine(**tracker_options(args))
    fake.seed(args.seed)

    def describe() -> list[str]:
        url = f"http://{args.host}:{fake.port}"
        return [
            f"Fake Redmine {REDMINE_VERSION} serving project {fake.repository} at {url}",
            f"API key (X-Redmine-API-Key): {fake.token}",
            f"labels field: {fake.labels_field} (id {fake.labels_field_id})",
        ]

    return serve_cli(fake, describe)


if __name__ == "__main__":
    sys.exit(main())
