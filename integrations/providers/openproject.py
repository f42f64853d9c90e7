"""OpenProject (API v3, HAL+JSON): the work-package client and the webhook verifier/parser.

`base_url` is the web root; the API lives under `/api/v3`. A connection's `repository` is the
project identifier. A work package maps onto the canonical issue as SPEC §3 says: subject /
description.raw, `closed` ⇔ its status `isClosed`, the category as the one label, the assignee's
login as the one assignee, the version name as the milestone, the id as the number.

Links are written by href (`{"_links": {"status": {"href": "/api/v3/statuses/12"}}}`), so names
are resolved through per-client caches of the statuses, categories, versions and assignable
users. Every PATCH carries the work package's `lockVersion`: OpenProject refuses a stale one with
409, the one conditional write among our trackers — it becomes `ConflictingWriteError`, which
makes the outbox read again and merge instead of overwriting.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from integrations.providers.base import (
    UNSET,
    Capabilities,
    ConfigOption,
    ConflictingWriteError,
    EventKind,
    IssueFields,
    IssueState,
    MalformedAnswerError,
    NotFoundError,
    RemoteIssue,
    TransientError,
    ValidationFailedError,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerifier,
    body_with_marker,
    validate_config,
)
from integrations.providers.core import NameCache, RestClient, at_most_one, positive_number
from integrations.providers.http import parse_timestamp
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

API_PREFIX = "/api/v3"
DEFAULT_OPEN_STATUS = "New"
# The listing's `<>d` filter needs an upper bound; a day past our clock covers any skew.
_UPPER_BOUND_SLACK = timedelta(days=1)
# `<>d` compares to the second; re-reading one second before the cursor costs a duplicate or
# two (deduplicated by id), never a missed edit.
CURSOR_OVERLAP = timedelta(seconds=1)


# --- HAL → canonical values ---------------------------------------------------------------


def _link_href(data: Mapping[str, Any], name: str, where: str) -> str | None:
    links = data.get("_links")
    if links is None:
        return None
    links = require_mapping(links, f"{where}._links")
    link = links.get(name)
    if link is None:
        return None
    link = require_mapping(link, f"{where}._links.{name}")
    return optional_str(link, "href", f"{where}._links.{name}") or None


def _link_title(data: Mapping[str, Any], name: str, where: str) -> str | None:
    links = data.get("_links")
    if not isinstance(links, Mapping) or not isinstance(links.get(name), Mapping):
        return None
    return optional_str(links[name], "title", f"{where}._links.{name}") or None


def _embedded(data: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any] | None:
    embedded = data.get("_embedded")
    if embedded is None:
        return None
    value = require_mapping(embedded, f"{where}._embedded").get(name)
    if value is None:
        return None
    return require_mapping(value, f"{where}._embedded.{name}")


def _named(data: Mapping[str, Any], name: str, where: str) -> str | None:
    """The name of a linked resource (category, version): embedded, else the link's title."""
    if _link_href(data, name, where) is None and _embedded(data, name, where) is None:
        return None
    embedded = _embedded(data, name, where)
    if embedded is not None:
        return require_str(embedded, "name", f"{where}._embedded.{name}") or None
    title = _link_title(data, name, where)
    if title is None:
        raise ShapeError(f"{where}._links.{name} has no title and nothing is embedded")
    return title


class LinkUnresolved(ShapeError):
    """A linked resource the document does not embed and the caller's tables do not know."""

    def __init__(self, message: str, *, href: str | None) -> None:
        super().__init__(message)
        self.href = href


class StatusUnknown(LinkUnresolved):
    """The status is linked, not embedded (a collection's lean elements)."""


class LoginUnknown(LinkUnresolved):
    """The assignee is linked but its login is not in the document (non-admin views omit it)."""


def _status(
    data: Mapping[str, Any], where: str, statuses: Mapping[str, tuple[str, bool]] | None
) -> tuple[str, bool]:
    embedded = _embedded(data, "status", where)
    if embedded is not None:
        name = require_str(embedded, "name", f"{where}._embedded.status")
        closed = embedded.get("isClosed")
        if not isinstance(closed, bool):
            raise ShapeError(f"{where}._embedded.status.isClosed is not a boolean")
        return name, closed
    href = _link_href(data, "status", where)
    if href is None:
        raise ShapeError(f"{where} has no status")
    if statuses is not None and href in statuses:
        return statuses[href]
    raise StatusUnknown(f"{where}: status {href} is not embedded", href=href)


def _assignee(
    data: Mapping[str, Any], where: str, users: Mapping[str, str] | None
) -> frozenset[str]:
    href = _link_href(data, "assignee", where)
    embedded = _embedded(data, "assignee", where)
    if href is None and embedded is None:
        return frozenset()
    if embedded is not None:
        login = embedded.get("login")
        if isinstance(login, str) and login:
            return frozenset({login})
    if href is not None and users is not None and href in users:
        return frozenset({users[href]})
    raise LoginUnknown(f"{where}: the assignee's login is not in the document", href=href)


def web_root(base_url: str) -> str:
    root = base_url.strip().rstrip("/")
    # People paste the API root; remote_url needs the web root.
    if root.endswith(API_PREFIX):
        root = root[: -len(API_PREFIX)]
    return root


def work_package_url(base_url: str, number: int | str) -> str:
    return f"{web_root(base_url)}/work_packages/{number}"


def project_identifier(data: Mapping[str, Any], where: str) -> str | None:
    """The work package's project identifier (what a connection's `repository` holds)."""
    project = _embedded(data, "project", where)
    if project is None:
        return None
    return optional_str(project, "identifier", f"{where}._embedded.project") or None


def lock_version(data: Mapping[str, Any], where: str = "work package") -> int:
    return require_int(data, "lockVersion", where)


def parse_work_package(
    data: Any,
    *,
    base_url: str,
    where: str = "work package",
    statuses: Mapping[str, tuple[str, bool]] | None = None,
    users: Mapping[str, str] | None = None,
) -> RemoteIssue:
    """A HAL work package (API answer or webhook `work_package`) → RemoteIssue; ShapeError
    when malformed (LoginUnknown when only the assignee's login is missing).

    `statuses` (href → (name, isClosed)) and `users` (href → login) resolve links a document
    does not embed."""
    data = require_mapping(data, where)
    if data.get("_type", "WorkPackage") != "WorkPackage":
        raise ShapeError(f"{where} is not a work package (_type {data.get('_type')!r})")
    number = require_int(data, "id", where)
    if number <= 0:
        raise ShapeError(f"{where}.id must be positive")
    description = data.get("description")
    body = ""
    if description is not None:
        raw = optional_str(require_mapping(description, f"{where}.description"), "raw", where)
        body = raw or ""
    status_name, closed = _status(data, where, statuses)
    category = _named(data, "category", where)
    return RemoteIssue(
        external_id=str(number),
        number=str(number),
        title=require_str(data, "subject", where),
        body=body,
        state=IssueState.CLOSED if closed else IssueState.OPEN,
        labels=frozenset({category}) if category else frozenset(),
        assignees=_assignee(data, where, users),
        milestone=_named(data, "version", where),
        remote_url=work_package_url(base_url, number),
        created_at=parse_timestamp(data.get("createdAt")),
        updated_at=parse_timestamp(data.get("updatedAt")),
        tracker_status=status_name,
        revision=int(data["lockVersion"]) if is_int(data.get("lockVersion")) else None,
    )


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the API client -----------------------------------------------------------------------


class OpenProjectClient(RestClient):
    """One OpenProject project, over one HTTP session with basic auth `apikey:<token>`."""

    provider: ClassVar[str] = "openproject"
    capabilities: ClassVar[Capabilities] = Capabilities(
        webhooks=True,
        deletion_in_webhooks=False,  # OpenProject sends no work_package deletion event
        max_assignees=1,
        max_labels=1,  # the category
        milestones=True,  # versions, predefined per project
        labels_predefined=True,  # categories exist before use; we never create them
        conditional_writes=True,  # lockVersion; a stale one is 409
        set_delta_writes=False,
        label_case_insensitive=False,
        assignee_case_insensitive=False,
        body_crlf_to_lf=False,
    )
    config_options: ClassVar[tuple[ConfigOption, ...]] = (
        ConfigOption(
            "closed_status",
            "Closed status",
            help_text="The status closing a work package sets (default: the first closed one).",
        ),
        ConfigOption(
            "open_status",
            "Open status",
            help_text=f"The status reopening a work package sets (default: {DEFAULT_OPEN_STATUS}).",
        ),
    )
    # OpenProject's default `apiv3_max_page_size`; a smaller server maximum is read from the
    # collection's own `total` and page contents.
    max_page_size: ClassVar[int] = 1000
    # `offset` is the 1-based page number of a HAL collection (see `pages`).
    page_param = "offset"
    size_param = "pageSize"

    def _setup(self) -> None:
        self.base_url = web_root(self.base_url)
        self.repository = self.repository.strip().strip("/")
        if not self.repository or "/" in self.repository:
            raise ValidationFailedError(f"project identifier {self.repository!r} is not valid")
        try:
            config = validate_config(self.config_options, self.config)
        except ValueError as exc:
            raise ValidationFailedError(f"OpenProject options: {exc}") from exc
        self.closed_status: str | None = config.get("closed_status") or None
        self.open_status: str = config.get("open_status") or DEFAULT_OPEN_STATUS
        self._project_path = f"projects/{quote(self.repository, safe='')}"
        # href → (name, isClosed); name → href for the others; href → login for users.
        self._statuses: dict[str, tuple[str, bool]] | None = None
        # Categories and versions by name → href, loaded on first use, reloaded once on a miss.
        self._categories: NameCache[str] = NameCache(
            lambda: self._named_hrefs(
                f"{self._project_path}/categories", self._what("list categories"), "name"
            )
        )
        self._versions: NameCache[str] = NameCache(
            lambda: self._named_hrefs(
                f"{self._project_path}/versions", self._what("list versions"), "name"
            )
        )
        self._assignables: dict[str, str] | None = None
        # href → login of every user seen (assignable or read one by one), and the hrefs
        # read one by one (each at most once).
        self._logins: dict[str, str] = {}
        self._logins_read: set[str] = set()
        # number → (updatedAt, lockVersion) of the last state this client read or wrote: the
        # lockVersion that goes with a `current` the caller got from us.
        self._locks: dict[str, tuple[datetime | None, int]] = {}

    def api_root(self) -> str:
        return self.base_url + API_PREFIX

    def auth_headers(self, token: str) -> dict[str, str]:
        basic = base64.b64encode(f"apikey:{token}".encode()).decode("ascii")
        return {"Authorization": f"Basic {basic}", "Accept": "application/hal+json"}

    # --- helpers -------------------------------------------------------------------------

    def _what(self, action: str) -> str:
        return f"OpenProject {self.base_url}: {action} in {self.repository}"

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> Any:
        response = self.transport.request(method, path, what=what, **kwargs)
        return self.transport.json(response, what=what)

    def _write(self, method: str, path: str, *, what: str, body: Any) -> Any:
        """A write, never retried here; 409 (a stale lockVersion) is ConflictingWriteError."""
        try:
            response = self.transport.request(method, path, what=what, json=body, headers=_JSON)
        except TransientError as exc:
            if exc.status == 409:
                raise ConflictingWriteError(
                    f"{what}: the work package changed since it was read (HTTP 409)", status=409
                ) from exc
            raise
        return self.transport.json(response, what=what)

    def _work_package(self, data: Any, what: str) -> RemoteIssue:
        """Parse a work package, reading once what it links without embedding (the status
        table, an assignee's login) and parsing again; MalformedAnswerError otherwise."""
        for _ in range(3):
            try:
                issue = parse_work_package(
                    data, base_url=self.base_url, statuses=self._statuses, users=self._logins
                )
                break
            except StatusUnknown as exc:
                if self._statuses is not None:
                    raise MalformedAnswerError(f"{what}: unexpected answer: {exc}") from exc
                self._load_statuses()
            except LoginUnknown as exc:
                if exc.href is None or exc.href in self._logins_read:
                    raise MalformedAnswerError(f"{what}: unexpected answer: {exc}") from exc
                self._load_login(exc.href)
            except ShapeError as exc:
                raise MalformedAnswerError(f"{what}: unexpected answer: {exc}") from exc
        else:
            raise MalformedAnswerError(f"{what}: unexpected answer: unresolvable links")
        if isinstance(data, Mapping) and is_int(data.get("lockVersion")):
            self._locks[issue.number] = (issue.updated_at, int(data["lockVersion"]))
        return issue

    def _in_project(self, data: Any) -> bool:
        """Whether a work package read by id belongs to this connection's project (named by
        identifier or by numeric id); a document without an embedded project is trusted."""
        if not isinstance(data, Mapping):
            return True  # the parse reports the shape
        project = (
            data.get("_embedded", {}).get("project")
            if isinstance(data.get("_embedded"), Mapping)
            else None
        )
        if not isinstance(project, Mapping):
            return True
        names = {str(project.get("identifier", "")).lower(), str(project.get("id", ""))}
        return self.repository.lower() in names

    @staticmethod
    def _id(number: str | int) -> str:
        return str(positive_number(number, what="a work package id"))

    @staticmethod
    def _elements(data: Any, what: str) -> list[Any]:
        if not isinstance(data, Mapping) or data.get("_type") != "Collection":
            raise MalformedAnswerError(f"{what}: unexpected answer: not a HAL collection")
        embedded = data.get("_embedded")
        elements = embedded.get("elements") if isinstance(embedded, Mapping) else None
        if not isinstance(elements, list):
            raise MalformedAnswerError(f"{what}: unexpected answer: no elements")
        return elements

    def _collection(self, path: str, what: str, params: Mapping[str, Any] | None = None) -> Any:
        """Every element of a (small) collection, following offset pages."""
        found: list[Any] = []
        for _, elements in self.pages(path, dict(params or {}), what=what):
            found.extend(elements)
        return found

    def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        what: str,
        etag: str | None = None,
    ) -> Iterator[tuple[requests.Response, list[Any]]]:
        """GET an offset-paged HAL collection (`offset` is the 1-based page number), one
        request per page at `max_page_size`; the collection's own `total` says when to stop
        (the server may cap pageSize lower). A 304 on the first page yields nothing."""
        offset, seen = 1, 0
        while True:
            query = {**params, self.size_param: self.max_page_size, self.page_param: offset}
            conditional = etag is not None and offset == 1
            page_what = f"{what} (page {offset})"
            response = self.transport.request(
                "GET",
                path,
                what=page_what,
                params=query,
                headers={"If-None-Match": etag} if conditional and etag else None,
                ok_not_modified=conditional,
            )
            if response.status_code == 304:
                yield response, []
                return
            data = self.transport.json(response, what=page_what)
            elements = self._elements(data, page_what)
            total = data.get("total")
            if not is_int(total) or total < 0:
                raise MalformedAnswerError(f"{page_what}: unexpected answer: no total")
            if offset == 1:
                self.listing_total = total
            yield response, elements
            seen += len(elements)
            if not elements or seen >= total:
                return
            offset += 1

    # --- lookups (statuses, categories, versions, assignable users) ------------------------

    def _load_statuses(self) -> dict[str, tuple[str, bool]]:
        what = self._what("list statuses")
        statuses: dict[str, tuple[str, bool]] = {}
        for item in self._collection("statuses", what):
            if not isinstance(item, Mapping):
                raise MalformedAnswerError(f"{what}: unexpected answer: item is not an object")
            href = _self_href(item)
            name, closed = item.get("name"), item.get("isClosed")
            if href and isinstance(name, str) and isinstance(closed, bool):
                statuses[href] = (name, closed)
        self._statuses = statuses
        return statuses

    def _named_hrefs(self, path: str, what: str, key: str) -> dict[str, str]:
        found: dict[str, str] = {}
        for item in self._collection(path, what):
            if not isinstance(item, Mapping):
                raise MalformedAnswerError(f"{what}: unexpected answer: item is not an object")
            href, name = _self_href(item), item.get(key)
            if href and isinstance(name, str) and name:
                found.setdefault(name, href)
        return found

    def _load_assignables(self) -> dict[str, str]:
        what = self._what("list assignable users")
        users: dict[str, str] = {}
        for item in self._collection(f"{self._project_path}/available_assignees", what):
            if not isinstance(item, Mapping):
                raise MalformedAnswerError(f"{what}: unexpected answer: item is not an object")
            href, login = _self_href(item), item.get("login")
            if href and isinstance(login, str) and login:
                users[href] = login
        self._assignables = users
        self._logins.update(users)
        return users

    def _load_login(self, href: str) -> None:
        """One user's login, from its own resource (a former member is not assignable)."""
        self._logins_read.add(href)
        if not href.startswith(API_PREFIX + "/users/"):
            return
        what = self._what(f"read user {href}")
        data = self._request("GET", href[len(API_PREFIX) :], what=what)
        login = data.get("login") if isinstance(data, Mapping) else None
        if isinstance(login, str) and login:
            self._logins[href] = login

    def _status_href(self, state: IssueState) -> str:
        statuses = self._statuses if self._statuses is not None else self._load_statuses()
        if state is IssueState.CLOSED:
            wanted = self.closed_status
            if wanted is None:
                for href, (_, closed) in statuses.items():
                    if closed:
                        return href
                raise ValidationFailedError(
                    self._what("close") + ": the server has no closed status", field="state"
                )
        else:
            wanted = self.open_status
        for href, (name, closed) in statuses.items():
            if name == wanted:
                if closed is not (state is IssueState.CLOSED):
                    raise ValidationFailedError(
                        self._what("set status")
                        + f": status {wanted!r} is {'' if closed else 'not '}closed",
                        field="state",
                    )
                return href
        raise ValidationFailedError(
            self._what("set status") + f": status {wanted!r} does not exist", field="state"
        )

    def _category_href(self, labels: frozenset[str]) -> str | None:
        name = at_most_one(
            labels,
            field="labels",
            refusal=self._what("set category") + ": a work package has at most one category",
        )
        if name is None:
            return None
        found, _ = self._categories.resolve([name])
        if name not in found:
            raise ValidationFailedError(
                self._what("set category") + f": category {name!r} does not exist",
                field="labels",
            )
        return found[name]

    def _version_href(self, name: str | None) -> str | None:
        if name is None:
            return None
        found, _ = self._versions.resolve([name])
        if name not in found:
            raise ValidationFailedError(
                self._what("set version") + f": version {name!r} does not exist",
                field="milestone",
            )
        return found[name]

    def _assignee_href(self, logins: frozenset[str]) -> str | None:
        login = at_most_one(
            logins,
            field="assignees",
            refusal=self._what("set assignee") + ": a work package has at most one assignee",
        )
        if login is None:
            return None
        users = self._assignables
        if users is None or login not in users.values():
            users = self._load_assignables()
        for href, known in users.items():
            if known == login:
                return href
        raise ValidationFailedError(
            self._what("set assignee") + f": {login!r} cannot be assigned in this project",
            field="assignees",
        )

    def _body(
        self, fields: IssueFields, *, marker: str | None, current: RemoteIssue | None
    ) -> dict[str, Any]:
        """The JSON of a create or update: properties plus `_links` by href."""
        body: dict[str, Any] = {}
        links: dict[str, Any] = {}
        fields = _without_held(fields, current)
        if fields.title is not None:
            body["subject"] = fields.title
        if fields.body is not None:
            # An edit keeps the create marker the work package already carries.
            keep = marker if marker is not None else (current.marker if current else None)
            body["description"] = {"format": "markdown", "raw": body_with_marker(fields.body, keep)}
        elif marker is not None:
            body["description"] = {"format": "markdown", "raw": body_with_marker("", marker)}
        # Only a change of open/closed moves the status: a work package "Rejected" that should
        # stay closed is not moved to "Closed"; a create takes the project's default status
        # unless it is to be closed.
        state = fields.state
        if state is not None and (
            current.state is not state if current is not None else state is IssueState.CLOSED
        ):
            links["status"] = {"href": self._status_href(state)}
        if fields.labels is not None:
            links["category"] = {"href": self._category_href(fields.labels)}
        if fields.assignees is not None:
            links["assignee"] = {"href": self._assignee_href(fields.assignees)}
        if not isinstance(fields.milestone, type(UNSET)):
            links["version"] = {"href": self._version_href(fields.milestone)}  # type: ignore[arg-type]
        if links:
            body["_links"] = links
        return body

    # --- listing ---------------------------------------------------------------------------

    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        # Without a status filter OpenProject lists open work packages only.
        filters: list[dict[str, Any]] = [{"status": {"operator": "*", "values": []}}]
        if since is not None:
            start = since - CURSOR_OVERLAP
            end = max(datetime.now(UTC), self.last_server_time or start) + _UPPER_BOUND_SLACK
            filters.append({"updatedAt": {"operator": "<>d", "values": [_iso(start), _iso(end)]}})
        params = {
            "filters": json.dumps(filters, separators=(",", ":")),
            "sortBy": json.dumps([["updatedAt", "asc"], ["id", "asc"]], separators=(",", ":")),
        }
        return f"{self._project_path}/work_packages", params, self._what("list work packages")

    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        # A project's listing includes its subprojects' work packages (OpenProject's default):
        # they belong to other connections, and a GET through this one would say NotFound.
        return [self._work_package(item, what) for item in items if self._in_project(item)]

    # --- single work packages ----------------------------------------------------------------

    def _get(self, number: str) -> tuple[RemoteIssue, Any]:
        ident = self._id(number)
        what = self._what(f"get work package {ident}")
        data = self._request("GET", f"work_packages/{ident}", what=what)
        if not self._in_project(data):
            raise NotFoundError(f"{what}: work package {ident} belongs to another project")
        return self._work_package(data, what), data

    def get_issue(self, number: str) -> RemoteIssue:
        return self._get(number)[0]

    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        if not fields.title:
            raise ValidationFailedError("a work package needs a subject", field="title")
        what = self._what("create work package")
        body = self._body(fields, marker=marker, current=None)
        data = self._write("POST", f"{self._project_path}/work_packages", what=what, body=body)
        return self._work_package(data, what)

    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        ident = self._id(number)
        what = self._what(f"update work package {ident}")
        if current is None:
            current = self.get_issue(ident)
        body = self._body(fields, marker=None, current=current)
        if not body:
            return current  # the tracker holds every value already: nothing to send
        known = self._locks.get(ident)
        if known is None or known[0] != current.updated_at:
            # `current` came from elsewhere (a webhook): its lockVersion is read once; a work
            # package that moved since `current` is a conflicting write, like a 409.
            fresh = self.get_issue(ident)
            if fresh.updated_at != current.updated_at:
                raise ConflictingWriteError(
                    f"{what}: the work package changed since it was read", status=409
                )
            known = self._locks[ident]
        body["lockVersion"] = known[1]
        data = self._write("PATCH", f"work_packages/{ident}", what=what, body=body)
        return self._work_package(data, what)

    # --- connection check (the ladder lives in the core) -----------------------------------

    tracker_name = "OpenProject"
    repository_noun = "project"
    issues_enabled_key = "_no_such_key"  # a project always has work packages (module aside)
    access_hint = " (is the API key's user a member of the project?)"

    def access_path(self) -> str:
        return self._project_path

    def is_repository(self, data: Any) -> bool:
        return isinstance(data, Mapping) and data.get("_type") == "Project"


_JSON = {"Content-Type": "application/json"}


def _without_held(fields: IssueFields, current: RemoteIssue | None) -> IssueFields:
    """`fields` minus the values `current` holds already (a PATCH of them changes nothing
    but the lockVersion, and bumps it under a concurrent editor's feet)."""
    if current is None:
        return fields
    return IssueFields(
        title=None if fields.title == current.title else fields.title,
        body=None if fields.body == current.body else fields.body,
        state=None if fields.state is current.state else fields.state,
        labels=None if fields.labels == current.labels else fields.labels,
        assignees=None if fields.assignees == current.assignees else fields.assignees,
        milestone=UNSET if fields.milestone == current.milestone else fields.milestone,
    )


def _self_href(item: Mapping[str, Any]) -> str | None:
    links = item.get("_links")
    if not isinstance(links, Mapping) or not isinstance(links.get("self"), Mapping):
        return None
    href = links["self"].get("href")
    return href if isinstance(href, str) and href else None


# --- webhooks ------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-OP-Signature"
ISSUE_ACTIONS = frozenset({"work_package:created", "work_package:updated"})
# Every `action` OpenProject's webhooks send (its webhook settings' event list).
KNOWN_EVENTS = ISSUE_ACTIONS | frozenset(
    {
        "project:created",
        "project:updated",
        "time_entry:created",
        "attachment:created",
        "work_package_comment:comment",
    }
)


class OpenProjectWebhooks(WebhookVerifier):
    provider: ClassVar[str] = "openproject"

    def verify(self, *, secret: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        return signature_matches(
            secret=secret,
            message=body,
            provided=header(headers, SIGNATURE_HEADER),
            algorithm="sha1",
            prefix="sha1=",
        )

    def event_name(self, *, headers: Mapping[str, str], payload: Mapping[str, Any] | None) -> str:
        action = payload.get("action") if isinstance(payload, Mapping) else None
        return action.strip() if isinstance(action, str) else ""

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str:
        """OpenProject sends no delivery id: a redelivery repeats the body byte for byte, and
        (action, id, lockVersion, updatedAt) names one change of one work package."""
        try:
            payload = json.loads(body)
            package = payload["work_package"]
            parts = (
                payload["action"],
                package["id"],
                package["lockVersion"],
                package["updatedAt"],
            )
        except (ValueError, TypeError, KeyError, UnicodeDecodeError):
            return hashlib.sha256(body).hexdigest()
        if all(isinstance(p, str | int) and not isinstance(p, bool) for p in parts):
            text = "op:" + ":".join(str(p) for p in parts)
            if len(text) <= 128 and text.isprintable():
                return text
        return hashlib.sha256(body).hexdigest()

    def is_known_event(self, event: str) -> bool:
        # "" is a body without a string `action` (a list, `"action": 7`): not an event type we
        # ignore (204) but a body OpenProject never sends, which `parse` refuses (400).
        return event.strip() in KNOWN_EVENTS or not event.strip()

    def parse(self, *, event: str, payload: Any, base_url: str) -> WebhookEvent:
        if not isinstance(payload, Mapping):
            raise WebhookPayloadError(
                f"an OpenProject payload is a JSON object, not {type(payload).__name__}"
            )
        action = payload.get("action")
        if not isinstance(action, str):
            raise WebhookPayloadError("OpenProject payload: action is not a string")
        try:
            return self._parse(action.strip(), payload, base_url)
        except ShapeError as exc:
            raise WebhookPayloadError(f"OpenProject {action} payload: {exc}") from exc

    def _parse(self, action: str, payload: Mapping[str, Any], base_url: str) -> WebhookEvent:
        if action not in ISSUE_ACTIONS:
            reason = (
                f"event {action!r} does not concern work packages"
                if action in KNOWN_EVENTS
                else f"unknown OpenProject event {action!r}"
            )
            return WebhookEvent(
                kind=EventKind.IGNORED, event=action, action=action, repository=None, reason=reason
            )
        package = require_mapping(payload.get("work_package"), "work_package")
        repository = project_identifier(package, "work_package")
        try:
            issue: RemoteIssue | None = parse_work_package(
                package, base_url=base_url, where="work_package"
            )
        except LoginUnknown:
            # Signed and well-formed, but the assignee's login is not shown to the webhook's
            # user: name the work package and let the worker re-read it.
            issue = None
        number = str(require_int(package, "id", "work_package"))
        return WebhookEvent(
            kind=EventKind.ISSUE,
            event=action,
            action=action.split(":", 1)[1],
            repository=repository,
            issue=issue,
            issue_external_id=number,
            issue_number=number,
        )
