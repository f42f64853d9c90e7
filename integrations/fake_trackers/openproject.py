"""FakeOpenProject: a stateful fake of the OpenProject API v3 routes issue sync uses.

HAL+JSON answers shaped like OpenProject's (the captured webhook payloads in
`../shared/fixtures/openproject/` and the API v3 documentation): work packages with
`lockVersion`, embedded status (`isClosed`), project, category, version and assignee; offset
paging where `offset` is the 1-based page number and `pageSize` is capped by the server; the
`filters` / `sortBy` JSON query parameters; a PATCH with a stale `lockVersion` answers 409
UpdateConflict. Without a status filter the listing shows open work packages only, as
OpenProject's default query does. Basic auth `apikey:<token>`; webhooks are signed
`X-OP-Signature: sha1=<hex>` and carry the action in the body, one per save.

Run it alone: `python -m integrations.fake_trackers.openproject --port 8086 --seed 20`.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import operator
import random
import re
import sys
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from integrations.fake_trackers.base import (
    FakeIssue,
    FakeTracker,
    HttpError,
    OutgoingWebhook,
    RecordedRequest,
    Response,
    Route,
    cli_parser,
    iso,
    serve_cli,
    tracker_options,
)
from integrations.providers.http import parse_timestamp

_API = "/api/v3"
_PROJECT = _API + r"/projects/(?P<ident>[^/]+)"
_ERROR = "urn:openproject-org:api:v3:errors:"


@dataclasses.dataclass(frozen=True)
class FakeStatus:
    id: int
    name: str
    is_closed: bool
    is_default: bool = False


DEFAULT_STATUSES = (
    FakeStatus(1, "New", False, is_default=True),
    FakeStatus(7, "In progress", False),
    FakeStatus(12, "Closed", True),
    FakeStatus(14, "Rejected", True),
)


class OpError(HttpError):
    """An OpenProject error document: `_type: Error` with an errorIdentifier (and details)."""

    def __init__(self, status: int, identifier: str, message: str, attribute: str = "") -> None:
        super().__init__(status, message)
        self.identifier = identifier
        self.attribute = attribute


class FakeOpenProject(FakeTracker):
    provider = "openproject"
    # OpenProject's default `apiv3_max_page_size`; tests lower it to exercise paging.
    max_page_size = 1000
    default_page_size = 20

    def __init__(self, *, repository: str = "demo-project", **kwargs: Any) -> None:
        super().__init__(repository=repository, **kwargs)
        self.project_id = 1
        self.statuses: list[FakeStatus] = list(DEFAULT_STATUSES)
        self.status_of: dict[int, int] = {}  # work package id → status id
        self.lock_versions: dict[int, int] = {}
        self.user_ids: dict[str, int] = {}
        self.api_user = "sync-bot"
        # Render work packages with links only (titles, no `_embedded`), as lean collection
        # elements come: a client must resolve the status and the assignee's login itself.
        self.lean = False
        # Work packages of a subproject (id → its identifier): listed with the project's, as
        # OpenProject does by default.
        self.subproject_of: dict[int, str] = {}
        # Called (with the work package id) before a PATCH is applied: a test's concurrent edit.
        self.before_update: Callable[[int], None] | None = None

    # --- state helpers -------------------------------------------------------------------

    def _closed_status(self) -> FakeStatus:
        return next(s for s in self.statuses if s.is_closed)

    def _default_status(self) -> FakeStatus:
        return next(s for s in self.statuses if s.is_default)

    def status(self, number: int) -> FakeStatus:
        wanted = self.status_of.get(number)
        return next((s for s in self.statuses if s.id == wanted), self._default_status())

    def user_id(self, login: str) -> int:
        with self.lock:
            for known in sorted(self.known_users | {self.api_user}):
                self.user_ids.setdefault(known, 4 + len(self.user_ids))
            return self.user_ids[login]

    def seed(self, count: int, *, seed: int = 7) -> list[FakeIssue]:
        rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        users = sorted(self.known_users)
        return [
            self.seed_issue(
                title=f"Seeded work package {n + 1}",
                body=f"Description of seeded work package {n + 1}",
                state="closed" if rng.random() < 0.2 else "open",
                labels=rng.sample(self.known_labels[:3], rng.randint(0, 1)),
                assignees=rng.sample(users, rng.randint(0, 1)),
                milestone=rng.choice([None, *self.known_milestones]),
            )
            for n in range(count)
        ]

    @staticmethod
    def _one_at_most(values: dict[str, Any]) -> None:
        """A work package has one category and one assignee: a test asking for two is wrong
        about OpenProject, and a fake that stored them would render only the first."""
        for key in ("labels", "assignees"):
            if len(set(values.get(key) or ())) > 1:
                raise ValueError(f"an OpenProject work package holds at most one of {key}")

    def seed_issue(self, **kwargs: Any) -> FakeIssue:
        self._one_at_most(kwargs)
        issue = super().seed_issue(**kwargs)
        with self.lock:
            # OpenProject has one id: the number is the id.
            issue.id = issue.number
            status = self._closed_status() if issue.state == "closed" else self._default_status()
            self.status_of[issue.number] = status.id
            self.lock_versions[issue.number] = 0
            for login in issue.assignees:
                self.known_users.add(login)
        return issue

    def edit_issue(
        self, number: int, *, notify: bool = True, status: str | None = None, **changes: Any
    ) -> FakeIssue:
        """A human saves the work package: one change, one lockVersion, one webhook.
        `status` names a status (its isClosed sets the state); `state` picks a default one."""
        self._one_at_most(changes)
        with self.lock:
            issue = self.issues[number]
            for key, value in changes.items():
                setattr(issue, key, sorted(set(value)) if key in ("labels", "assignees") else value)
            if status is not None:
                chosen = next(s for s in self.statuses if s.name == status)
                self.status_of[number] = chosen.id
                issue.state = "closed" if chosen.is_closed else "open"
            elif "state" in changes and self.status(number).is_closed != (issue.state == "closed"):
                chosen = (
                    self._closed_status() if issue.state == "closed" else self._default_status()
                )
                self.status_of[number] = chosen.id
            issue.updated_at = self.now()
            self.lock_versions[number] = self.lock_versions.get(number, 0) + 1
        if notify:
            self.emit_issue_event(issue, "updated")
        return issue

    def emit_change_events(self, before: FakeIssue, after: FakeIssue) -> None:
        self.emit_issue_event(after, "updated")

    # --- HAL rendering -----------------------------------------------------------------------

    def render_status(self, status: FakeStatus) -> dict[str, Any]:
        return {
            "_type": "Status",
            "id": status.id,
            "name": status.name,
            "isClosed": status.is_closed,
            "isDefault": status.is_default,
            "isReadonly": False,
            "_links": {"self": {"href": f"{_API}/statuses/{status.id}", "title": status.name}},
        }

    def render_project(self) -> dict[str, Any]:
        return {
            "_type": "Project",
            "id": self.project_id,
            "identifier": self.repository,
            "name": self.repository.replace("-", " ").title(),
            "active": True,
            "_links": {
                "self": {"href": f"{_API}/projects/{self.project_id}"},
                "workPackages": {"href": f"{_API}/projects/{self.project_id}/work_packages"},
            },
        }

    def render_user(self, login: str) -> dict[str, Any]:
        uid = self.user_id(login)
        return {
            "_type": "User",
            "id": uid,
            "name": login.title(),
            "login": login,
            "_links": {"self": {"href": f"{_API}/users/{uid}", "title": login.title()}},
        }

    def _named(self, kind: str, path: str, names: list[str], base: int) -> list[dict[str, Any]]:
        return [
            {
                "_type": kind,
                "id": base + position,
                "name": name,
                "_links": {"self": {"href": f"{_API}/{path}/{base + position}", "title": name}},
            }
            for position, name in enumerate(names)
        ]

    def categories(self) -> list[dict[str, Any]]:
        return self._named("Category", "categories", self.known_labels, 1)

    def versions(self) -> list[dict[str, Any]]:
        return self._named("Version", "versions", self.known_milestones, 1)

    def render_work_package(self, issue: FakeIssue) -> dict[str, Any]:
        status = self.status(issue.number)
        project = self.render_project()
        if issue.number in self.subproject_of:
            project = {**project, "id": 2, "identifier": self.subproject_of[issue.number]}
            project["_links"] = {"self": {"href": f"{_API}/projects/2"}}
        embedded: dict[str, Any] = {"status": self.render_status(status), "project": project}
        links: dict[str, Any] = {
            "self": {"href": f"{_API}/work_packages/{issue.number}", "title": issue.title},
            "status": embedded["status"]["_links"]["self"],
            "project": {"href": project["_links"]["self"]["href"], "title": project["name"]},
            "type": {"href": f"{_API}/types/1", "title": "Task"},
            "category": {"href": None},
            "version": {"href": None},
            "assignee": {"href": None},
            "updateImmediately": {
                "href": f"{_API}/work_packages/{issue.number}",
                "method": "patch",
            },
        }
        if issue.labels:
            category = next(c for c in self.categories() if c["name"] == issue.labels[0])
            embedded["category"] = category
            links["category"] = category["_links"]["self"]
        if issue.milestone:
            version = next(v for v in self.versions() if v["name"] == issue.milestone)
            embedded["version"] = version
            links["version"] = version["_links"]["self"]
        if issue.assignees:
            user = self.render_user(issue.assignees[0])
            embedded["assignee"] = user
            links["assignee"] = user["_links"]["self"]
        if self.lean:
            for name in ("status", "category", "version", "assignee"):
                link = links[name]
                if name in embedded and "title" not in link:
                    links[name] = {**link, "title": embedded[name]["name"]}
            embedded = {"project": project}
        return {
            "_type": "WorkPackage",
            "id": issue.number,
            "lockVersion": self.lock_versions.get(issue.number, 0),
            "subject": issue.title,
            "description": {"format": "markdown", "raw": issue.body, "html": ""},
            "createdAt": iso(issue.created_at),
            "updatedAt": iso(issue.updated_at),
            "_embedded": embedded,
            "_links": links,
        }

    def collection(
        self, record: RecordedRequest, elements: list[Any], *, paged: bool = True
    ) -> dict[str, Any]:
        if not paged:
            return {
                "_type": "Collection",
                "total": len(elements),
                "count": len(elements),
                "_embedded": {"elements": elements},
                "_links": {"self": {"href": record.path}},
            }
        page, offset, size = self._page(record, elements)
        links: dict[str, Any] = {"self": {"href": record.path}}
        body: dict[str, Any] = {
            "_type": "Collection",
            "total": len(elements),
            "count": len(page),
            "pageSize": size,
            "offset": offset,
            "_embedded": {"elements": page},
            "_links": links,
        }
        if offset * size < len(elements):
            links["nextByOffset"] = {"href": f"{record.path}?offset={offset + 1}&pageSize={size}"}
        return body

    def _page(self, record: RecordedRequest, items: list[Any]) -> tuple[list[Any], int, int]:
        def number(name: str, default: int) -> int:
            raw = record.query.get(name, [str(default)])[0]
            if not raw.isdigit():
                raise OpError(
                    HTTPStatus.BAD_REQUEST, "InvalidQuery", f"{name} must be a positive integer"
                )
            return int(raw)

        offset = max(1, number("offset", 1))
        size = max(1, min(number("pageSize", self.default_page_size), self.max_page_size))
        start = (offset - 1) * size
        return items[start : start + size], offset, size

    # --- webhooks ----------------------------------------------------------------------------

    def build_webhook(self, issue: FakeIssue, action: str, **extra: Any) -> OutgoingWebhook | None:
        name = {"opened": "created", "created": "created", "updated": "updated"}.get(action)
        if name is None:
            return None  # OpenProject sends no deletion webhook
        with self.lock:
            payload = {
                "action": f"work_package:{name}",
                "work_package": self.render_work_package(issue),
            }
        body = json.dumps(payload).encode()
        headers = {"Content-Type": "application/json"}
        if self.webhook_secret:
            digest = hmac.new(self.webhook_secret.encode(), body, hashlib.sha1).hexdigest()
            headers["X-OP-Signature"] = f"sha1={digest}"
        return OutgoingWebhook(
            event=f"work_package:{name}",
            headers=headers,
            body=body,
            delivery_id=self.new_delivery_id(),
        )

    # --- HTTP --------------------------------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, credential = value.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            decoded = base64.b64decode(credential.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(decoded.encode(), f"apikey:{self.token}".encode())

    @staticmethod
    def _error(exc: OpError) -> Response:
        body: dict[str, Any] = {
            "_type": "Error",
            "errorIdentifier": _ERROR + exc.identifier,
            "message": exc.message,
        }
        if exc.attribute:
            body["_embedded"] = {"details": {"attribute": exc.attribute}}
        return Response(exc.status, body)

    def routes(self) -> list[Route]:
        def route(method: str, pattern: str, view: Callable[..., Response]) -> Route:
            def guarded(record: RecordedRequest, data: Any, **kwargs: Any) -> Response:
                try:
                    return view(record, data, **kwargs)
                except OpError as exc:
                    return self._error(exc)

            return method, re.compile(pattern), guarded

        return [
            route("GET", _PROJECT, self._get_project),
            route("GET", _PROJECT + r"/work_packages", self._list),
            route("POST", _PROJECT + r"/work_packages", self._create),
            route("GET", _PROJECT + r"/categories", self._categories),
            route("GET", _PROJECT + r"/versions", self._versions),
            route("GET", _PROJECT + r"/available_assignees", self._assignees),
            route("GET", _API + r"/statuses", self._statuses),
            route("GET", _API + r"/users/(?P<uid>\d+)", self._user),
            route("GET", _API + r"/work_packages/(?P<wp>\d+)", self._get),
            route("PATCH", _API + r"/work_packages/(?P<wp>\d+)", self._update),
        ]

    def _project_guard(self, ident: str) -> None:
        if ident not in (self.repository, str(self.project_id)):
            raise OpError(
                HTTPStatus.NOT_FOUND, "NotFound", "The requested resource could not be found."
            )

    def _wp_or_404(self, wp: str) -> FakeIssue:
        issue = self.issues.get(int(wp))
        if issue is None or issue.is_pull_request:
            raise OpError(
                HTTPStatus.NOT_FOUND, "NotFound", "The requested resource could not be found."
            )
        return issue

    def _get_project(self, record: RecordedRequest, data: Any, ident: str) -> Response:
        self._project_guard(ident)
        return Response(HTTPStatus.OK, self.render_project())

    def _statuses(self, record: RecordedRequest, data: Any) -> Response:
        elements = [self.render_status(s) for s in self.statuses]
        return Response(HTTPStatus.OK, self.collection(record, elements, paged=False))

    def _categories(self, record: RecordedRequest, data: Any, ident: str) -> Response:
        self._project_guard(ident)
        return Response(HTTPStatus.OK, self.collection(record, self.categories(), paged=False))

    def _versions(self, record: RecordedRequest, data: Any, ident: str) -> Response:
        self._project_guard(ident)
        return Response(HTTPStatus.OK, self.collection(record, self.versions(), paged=False))

    def _assignees(self, record: RecordedRequest, data: Any, ident: str) -> Response:
        self._project_guard(ident)
        users = [self.render_user(login) for login in sorted(self.known_users | {self.api_user})]
        return Response(HTTPStatus.OK, self.collection(record, users))

    @staticmethod
    def _json_param(record: RecordedRequest, name: str, default: Any) -> Any:
        raw = record.query.get(name)
        if not raw:
            return default
        try:
            return json.loads(raw[0])
        except ValueError:
            raise OpError(
                HTTPStatus.BAD_REQUEST, "InvalidQuery", f"{name} is not valid JSON"
            ) from None

    def _matches(self, issue: FakeIssue, filters: list[Any]) -> bool:
        status_seen = False
        for item in filters:
            if not isinstance(item, dict) or len(item) != 1:
                raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", "a filter is one object")
            ((name, spec),) = item.items()
            if not isinstance(spec, dict):
                raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", f"filter {name} is an object")
            op, values = spec.get("operator"), spec.get("values")
            if name == "status":
                status_seen = True
                closed = self.status(issue.number).is_closed
                if (op == "o" and closed) or (op == "c" and not closed):
                    return False
                if op not in ("*", "o", "c"):
                    raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", "status operator")
            elif name == "updatedAt" and op == "<>d":
                if not isinstance(values, list) or len(values) != 2:
                    raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", "<>d takes two values")
                low, high = (parse_timestamp(v) if v else None for v in values)
                if (values[0] and low is None) or (values[1] and high is None):
                    raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", "not a date time")
                if low is not None and issue.updated_at < low:
                    return False
                if high is not None and issue.updated_at > high:
                    return False
            else:
                raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", f"unknown filter {name}")
        # OpenProject's default query lists open work packages only.
        return status_seen or not self.status(issue.number).is_closed

    def _list(self, record: RecordedRequest, data: Any, ident: str) -> Response:
        self._project_guard(ident)
        filters = self._json_param(record, "filters", [])
        sort_by = self._json_param(record, "sortBy", [["id", "asc"]])
        if not isinstance(filters, list) or not isinstance(sort_by, list):
            raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", "filters/sortBy are lists")
        with self.lock:
            found = [
                i for i in self.issue_list(include_pull_requests=False) if self._matches(i, filters)
            ]
            for pair in reversed(sort_by):
                if not isinstance(pair, list) or len(pair) != 2:
                    raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", "sortBy pairs")
                key = {"updatedAt": "updated_at", "id": "number", "createdAt": "created_at"}.get(
                    pair[0]
                )
                if key is None or pair[1] not in ("asc", "desc"):
                    raise OpError(HTTPStatus.BAD_REQUEST, "InvalidQuery", f"sortBy {pair}")
                found.sort(key=operator.attrgetter(key), reverse=pair[1] == "desc")
            elements = [self.render_work_package(i) for i in found]
        return Response(HTTPStatus.OK, self.collection(record, elements))

    def _user(self, record: RecordedRequest, data: Any, uid: str) -> Response:
        with self.lock:
            self.user_id(self.api_user)
            login = next((k for k, v in self.user_ids.items() if v == int(uid)), None)
        if login is None:
            raise OpError(
                HTTPStatus.NOT_FOUND, "NotFound", "The requested resource could not be found."
            )
        return Response(HTTPStatus.OK, self.render_user(login))

    def _get(self, record: RecordedRequest, data: Any, wp: str) -> Response:
        with self.lock:
            return Response(HTTPStatus.OK, self.render_work_package(self._wp_or_404(wp)))

    # --- writes ------------------------------------------------------------------------------

    @staticmethod
    def _form(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise OpError(HTTPStatus.BAD_REQUEST, "InvalidRequestBody", "a JSON object")
        return data

    def _href_id(self, links: dict[str, Any], name: str, prefix: str) -> int | None:
        link = links.get(name)
        if not isinstance(link, dict):
            raise OpError(
                HTTPStatus.UNPROCESSABLE_ENTITY, "PropertyConstraintViolation", name, name
            )
        href = link.get("href")
        if href is None:
            return None
        if not isinstance(href, str) or not href.startswith(f"{_API}/{prefix}/"):
            raise OpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "PropertyConstraintViolation",
                f"{name} is not a {prefix} link",
                name,
            )
        tail = href.rsplit("/", 1)[1]
        return int(tail) if tail.isdigit() else -1

    def _changes(self, form: dict[str, Any]) -> dict[str, Any]:
        """The FakeIssue changes (plus `status`, a status name) a create/PATCH body asks for."""
        changes: dict[str, Any] = {}
        if "subject" in form:
            if not isinstance(form["subject"], str) or not form["subject"].strip():
                raise OpError(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    "PropertyConstraintViolation",
                    "Subject can't be blank.",
                    "subject",
                )
            changes["title"] = form["subject"]
        if "description" in form:
            description = form["description"]
            raw = description.get("raw") if isinstance(description, dict) else None
            if description is not None and not isinstance(raw, str | None):
                raise OpError(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    "PropertyConstraintViolation",
                    "description.raw must be a string",
                    "description",
                )
            changes["body"] = raw or ""
        links = form.get("_links") or {}
        if not isinstance(links, dict):
            raise OpError(HTTPStatus.BAD_REQUEST, "InvalidRequestBody", "_links is an object")

        def refuse(attribute: str) -> OpError:
            return OpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "PropertyConstraintViolation",
                f"{attribute.title()} is not set to one of the allowed values.",
                attribute,
            )

        if "status" in links:
            sid = self._href_id(links, "status", "statuses")
            status = next((s for s in self.statuses if s.id == sid), None)
            if status is None:
                raise refuse("status")
            changes["status"] = status.name
        if "category" in links:
            cid = self._href_id(links, "category", "categories")
            if cid is None:
                changes["labels"] = []
            else:
                match = [c["name"] for c in self.categories() if c["id"] == cid]
                if not match:
                    raise refuse("category")
                changes["labels"] = match
        if "version" in links:
            vid = self._href_id(links, "version", "versions")
            if vid is None:
                changes["milestone"] = None
            else:
                names = [v["name"] for v in self.versions() if v["id"] == vid]
                if not names:
                    raise refuse("version")
                changes["milestone"] = names[0]
        if "assignee" in links:
            uid = self._href_id(links, "assignee", "users")
            if uid is None:
                changes["assignees"] = []
            else:
                self.user_id(self.api_user)
                logins = [login for login, known in self.user_ids.items() if known == uid]
                if not logins:
                    raise refuse("assignee")
                changes["assignees"] = logins
        return changes

    def _create(self, record: RecordedRequest, data: Any, ident: str) -> Response:
        self._project_guard(ident)
        form = self._form(data)
        if "subject" not in form:
            raise OpError(
                HTTPStatus.UNPROCESSABLE_ENTITY,
                "PropertyConstraintViolation",
                "Subject can't be blank.",
                "subject",
            )
        with self.lock:
            changes = self._changes(form)
            status = changes.pop("status", None)
            issue = self.seed_issue(
                title=changes.pop("title"),
                body=changes.pop("body", ""),
                labels=changes.pop("labels", None),
                assignees=changes.pop("assignees", None),
                milestone=changes.pop("milestone", None),
            )
            issue.author = self.api_user
            if status is not None:
                chosen = next(s for s in self.statuses if s.name == status)
                self.status_of[issue.number] = chosen.id
                issue.state = "closed" if chosen.is_closed else "open"
            rendered = self.render_work_package(issue)
        self.emit_issue_event(issue, "created")
        return Response(HTTPStatus.CREATED, rendered)

    def _update(self, record: RecordedRequest, data: Any, wp: str) -> Response:
        form = self._form(data)
        hook = self.before_update
        if hook is not None:
            hook(int(wp))
        with self.lock:
            issue = self._wp_or_404(wp)
            current = self.lock_versions.get(issue.number, 0)
            sent = form.get("lockVersion")
            if not isinstance(sent, int) or isinstance(sent, bool) or sent != current:
                raise OpError(
                    HTTPStatus.CONFLICT,
                    "UpdateConflict",
                    "Your changes could not be saved, because the resource was changed"
                    " by someone else in the meantime.",
                )
            changes = self._changes(form)
            status = changes.pop("status", None)
            changed = {k: v for k, v in changes.items() if getattr(issue, k) != v}
            if status is not None and status != self.status(issue.number).name:
                changed["status"] = status
            if changed:
                self.edit_issue(issue.number, notify=False, **changed)
            rendered = self.render_work_package(issue)
        if changed:
            self.emit_issue_event(issue, "updated")
        return Response(HTTPStatus.OK, rendered)


def main(argv: list[str] | None = None) -> int:
    parser = cli_parser("Run a fake OpenProject API v3 on loopback.")
    parser.set_defaults(repository="demo-project", port=8086)
    args = parser.parse_args(argv)
    fake = FakeOpenProject(**tracker_options(args))
    fake.seed(args.seed)

    def describe() -> list[str]:
        url = f"http://{args.host}:{fake.port}"
        return [
            f"Fake OpenProject serving project {args.repository} at {url}",
            f"API root: {url}{_API}  (basic auth apikey:{fake.token})",
        ]

    return serve_cli(fake, describe, webhook_url=args.webhook_url)


if __name__ == "__main__":
    sys.exit(main())
