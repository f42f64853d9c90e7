"""Redmine (REST API, 5.x): the issue client. Redmine has no webhooks: connections are polled.

`base_url` is the web root (the API is under it, nothing appended); a connection's `repository`
is the project identifier; the token goes in `X-Redmine-API-Key`. An issue maps onto the
canonical issue as SPEC §3 says: subject / description, `closed` ⇔ its status `is_closed`,
the values of the multi-value list custom field named by `config_json.labels_field` (default
`Labels`; no labels when the project lacks it) as labels, the assignee's login, the target
version's name as the milestone, the id as the number.

The traps measured on a real Redmine 5.0.4 (`../shared/REDMINE.md`, `tests/redmine/`) shape it:
- a PUT answers 204 with no body, so every write is followed by one GET;
- every PUT bumps `updated_on`, even one that changes nothing, so a write that changes nothing
  is never sent (else the next poll sees "a change" and an echo loop follows);
- a status given on create is ignored: create, then PUT the status;
- an unknown or workflow-forbidden `status_id` is silently ignored (204): the status is read
  back and a write that did not take is a permanent error naming `state`, never a retry loop;
- descriptions come back with CRLF line ends: bodies are read as LF (`body_crlf_to_lf`);
- thin sends no `Date` header: the listing's clock is the newest `updated_on` it saw;
- a hard delete leaves no trace in listings: only the full pass's id-set comparison finds it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from integrations.providers.base import (
    Capabilities,
    ConfigOption,
    IssueFields,
    IssueState,
    MalformedAnswerError,
    NotFoundError,
    PermanentError,
    RemoteIssue,
    ValidationFailedError,
    body_with_marker,
    born_closed,
    set_delta,
    unsent_on_failure,
    validate_config,
)
from integrations.providers.core import NameCache, RestClient, at_most_one, positive_number
from integrations.providers.http import format_timestamp, parse_timestamp
from integrations.providers.shapes import (
    ShapeError,
    is_int,
    require_int,
    require_mapping,
    require_str,
)

DEFAULT_LABELS_FIELD = "Labels"
DEFAULT_CLOSED_STATUS = "Closed"
DEFAULT_OPEN_STATUS = "New"
# What `config_json` may hold for a Redmine connection (SPEC §3/§6).
CONFIG_OPTIONS = (
    ConfigOption(
        "labels_field",
        "Labels custom field",
        help_text="The multi-value list custom field whose values are the labels "
        f"(default {DEFAULT_LABELS_FIELD!r}; no labels if the project lacks it).",
    ),
    ConfigOption(
        "closed_status",
        "Status for close",
        help_text=f"A closed status (default {DEFAULT_CLOSED_STATUS!r}).",
    ),
    ConfigOption(
        "open_status",
        "Status for reopen",
        help_text=f"An open status (default {DEFAULT_OPEN_STATUS!r}).",
    ),
)
# `updated_on>=T` behaves like "later than T - 1 s" (Redmine shows seconds, stores µs): one
# more second of overlap costs a duplicate or two (deduplicated by id), never a missed edit.
CURSOR_OVERLAP = timedelta(seconds=1)
# Redmine's 422 messages → the canonical field they refuse (`{"errors": ["Assignee is invalid"]}`).
_REFUSALS = (
    ("Assignee", "assignees"),
    ("Target version", "milestone"),
    ("Subject", "title"),
    ("Description", "body"),
    ("Status", "state"),
)


def _milestone(fields: IssueFields) -> tuple[bool, str | None]:
    """(whether the milestone is to be written, its name or None to clear it)."""
    value = fields.milestone
    if value is None or isinstance(value, str):
        return True, value
    return False, None  # UNSET: leave it alone


def _crlf_to_lf(text: str) -> str:
    return text.replace("\r\n", "\n")


class RedmineClient(RestClient):
    """One Redmine project, over one HTTP session with the `X-Redmine-API-Key` header."""

    provider: ClassVar[str] = "redmine"
    capabilities: ClassVar[Capabilities] = Capabilities(
        webhooks=False,  # none in Redmine's core: polled only
        deletion_in_webhooks=False,  # deletions are found by the full pass's id-set comparison
        max_assignees=1,
        max_labels=None,  # a multi-value list field
        milestones=True,  # target versions, predefined per project
        labels_predefined=True,  # the custom field's possible values
        conditional_writes=False,  # lock_version is not exposed in JSON
        set_delta_writes=False,  # the whole value list is written
        label_case_insensitive=False,
        assignee_case_insensitive=False,
        body_crlf_to_lf=True,  # stored with CRLF whatever was sent
    )
    config_options: ClassVar[tuple[ConfigOption, ...]] = CONFIG_OPTIONS
    max_page_size: ClassVar[int] = 100  # Redmine caps `limit` at 100
    tracker_name = "Redmine"
    repository_noun = "project"

    def _setup(self) -> None:
        self.repository = self.repository.strip().strip("/")
        if not self.repository or "/" in self.repository:
            raise ValidationFailedError(f"project identifier {self.repository!r} is not valid")
        try:
            config = validate_config(self.config_options, self.config)
        except ValueError as exc:
            raise ValidationFailedError(f"Redmine options: {exc}") from exc
        self.labels_field: str = config.get("labels_field") or DEFAULT_LABELS_FIELD
        self.closed_status: str = config.get("closed_status") or DEFAULT_CLOSED_STATUS
        self.open_status: str = config.get("open_status") or DEFAULT_OPEN_STATUS
        self._project_path = f"projects/{quote(self.repository, safe='')}"
        # Lookups, loaded once per client (a client lives for one run or one push batch).
        self._project_id: int | None = None
        self._labels_field_id: int | None = None  # None: the project lacks the field
        self._label_values: frozenset[str] | None = None  # None: not readable with this key
        self._statuses: dict[str, tuple[int, bool]] | None = None  # name → (id, is_closed)
        # Target versions and assignable members by name: loaded on first use, reloaded once
        # on a miss (the shared core's NameCache).
        self._versions: NameCache[int] = NameCache(self._load_versions)
        self._members: NameCache[int] = NameCache(self._load_members)  # login → user id
        self._logins: dict[int, str] = {}  # user id → login
        self._newest_update: datetime | None = None

    def api_root(self) -> str:
        return self.base_url  # Redmine's API is its web root with `.json` paths

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"X-Redmine-API-Key": token, "Accept": "application/json"}

    def access_path(self) -> str:
        return f"{self._project_path}.json"

    def is_repository(self, data: Any) -> bool:
        return isinstance(data, Mapping) and isinstance(data.get("project"), Mapping)

    @property
    def last_server_time(self) -> datetime | None:
        # thin sends no Date header: the tracker's clock is the newest `updated_on` we read.
        return self.transport.last_server_time or self._newest_update

    # --- helpers -------------------------------------------------------------------------

    def _what(self, action: str) -> str:
        return f"Redmine {self.base_url}: {action} in {self.repository}"

    def _get(self, path: str, *, what: str, **kwargs: Any) -> Any:
        response = self.transport.request("GET", path, what=what, **kwargs)
        return self.transport.json(response, what=what)

    def _write(self, method: str, path: str, *, what: str, body: Any) -> Any:
        """A write, never retried here; a 422 names the field Redmine's message names."""
        try:
            response = self.transport.request(method, path, what=what, json=body)
        except ValidationFailedError as exc:
            if exc.field is None:
                exc.field = self._refused_field(str(exc))
            raise
        if response.status_code == 204 or not response.content:
            return None
        return self.transport.json(response, what=what)

    def _refused_field(self, message: str) -> str | None:
        if self.labels_field in message:
            return "labels"
        for word, field in _REFUSALS:
            if word in message:
                return field
        return None

    @staticmethod
    def _id(number: str | int) -> str:
        return str(positive_number(number, what="a Redmine issue id"))

    # --- lookups ---------------------------------------------------------------------------

    def _load_project(self) -> int:
        """The project's numeric id and, when it has it, the labels field's id."""
        what = self._what("read the project")
        data = self._get(
            f"{self._project_path}.json", what=what, params={"include": "issue_custom_fields"}
        )
        try:
            project = require_mapping(require_mapping(data, "answer").get("project"), "project")
            self._project_id = require_int(project, "id", "project")
            fields = project.get("issue_custom_fields") or []
            for field in fields if isinstance(fields, list) else []:
                if isinstance(field, Mapping) and field.get("name") == self.labels_field:
                    self._labels_field_id = require_int(field, "id", "custom field")
        except ShapeError as exc:
            raise MalformedAnswerError(f"{what}: unexpected answer: {exc}") from exc
        self._load_label_values()
        return self._project_id

    def _load_label_values(self) -> None:
        """The field's possible values (and its id when it is "for all projects", which the
        project's list leaves out). `/custom_fields.json` needs an administrator's key: without
        one the values are unknown and Redmine's own 422 refuses an undefined value."""
        try:
            data = self._get("custom_fields.json", what=self._what("list custom fields"))
        except (PermanentError, MalformedAnswerError):
            return
        fields = data.get("custom_fields") if isinstance(data, Mapping) else None
        for field in fields if isinstance(fields, list) else []:
            if not isinstance(field, Mapping) or field.get("name") != self.labels_field:
                continue
            if field.get("customized_type") not in (None, "issue") or not is_int(field.get("id")):
                continue
            if self._labels_field_id is None:
                if not field.get("is_for_all"):
                    return  # defined, but not for this project: the project lacks it
                self._labels_field_id = int(field["id"])
            values = field.get("possible_values") or []
            self._label_values = frozenset(
                str(v["value"]) for v in values if isinstance(v, Mapping) and "value" in v
            )
            return

    def _project(self) -> int:
        return self._project_id if self._project_id is not None else self._load_project()

    def _load_statuses(self) -> dict[str, tuple[int, bool]]:
        what = self._what("list statuses")
        data = self._get("issue_statuses.json", what=what)
        statuses: dict[str, tuple[int, bool]] = {}
        items = data.get("issue_statuses") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise MalformedAnswerError(f"{what}: unexpected answer: no issue_statuses")
        for item in items:
            if isinstance(item, Mapping) and is_int(item.get("id")) and item.get("name"):
                statuses[str(item["name"])] = (int(item["id"]), bool(item.get("is_closed")))
        self._statuses = statuses
        return statuses

    def _status_id(self, state: IssueState) -> int:
        statuses = self._statuses if self._statuses is not None else self._load_statuses()
        wanted = self.closed_status if state is IssueState.CLOSED else self.open_status
        found = statuses.get(wanted)
        if found is None:
            raise ValidationFailedError(
                self._what("set status") + f": status {wanted!r} does not exist", field="state"
            )
        status_id, closed = found
        if closed is not (state is IssueState.CLOSED):
            raise ValidationFailedError(
                self._what("set status") + f": status {wanted!r} is {'' if closed else 'not '}"
                "a closed status",
                field="state",
            )
        return status_id

    def _load_versions(self) -> dict[str, int]:
        what = self._what("list versions")
        data = self._get(f"{self._project_path}/versions.json", what=what)
        items = data.get("versions") if isinstance(data, Mapping) else None
        if not isinstance(items, list):
            raise MalformedAnswerError(f"{what}: unexpected answer: no versions")
        return {
            str(v["name"]): int(v["id"])
            for v in items
            if isinstance(v, Mapping) and is_int(v.get("id")) and v.get("name")
        }

    def _version_id(self, name: str | None) -> int | None:
        if name is None:
            return None
        found, missing = self._versions.resolve([name])
        if missing:
            raise ValidationFailedError(
                self._what("set target version") + f": version {name!r} does not exist",
                field="milestone",
            )
        return found[name]

    def _login(self, user_id: int, fallback: str) -> str:
        """A user's login (the issue JSON names users by id and display name only)."""
        if user_id in self._logins:
            return self._logins[user_id]
        what = self._what(f"read user {user_id}")
        try:
            data = self._get(f"users/{user_id}.json", what=what)
        except (PermanentError, MalformedAnswerError):
            data = None
        user = data.get("user") if isinstance(data, Mapping) else None
        login = user.get("login") if isinstance(user, Mapping) else None
        # Redmine shows a login to administrators (and to the user itself) only.
        self._logins[user_id] = str(login) if login else fallback
        return self._logins[user_id]

    def _load_members(self) -> dict[str, int]:
        """Assignable project members, login → user id (memberships, paged by offset)."""
        what = self._what("list memberships")
        members: dict[str, int] = {}
        offset = 0
        while True:
            data = self._get(
                f"{self._project_path}/memberships.json",
                what=what,
                params={"limit": self.max_page_size, "offset": offset},
            )
            rows = data.get("memberships") if isinstance(data, Mapping) else None
            if not isinstance(rows, list):
                raise MalformedAnswerError(f"{what}: unexpected answer: no memberships")
            for row in rows:
                user = row.get("user") if isinstance(row, Mapping) else None
                if isinstance(user, Mapping) and is_int(user.get("id")):
                    members[self._login(int(user["id"]), str(user.get("name", "")))] = int(
                        user["id"]
                    )
            offset += len(rows)
            total = data.get("total_count")
            if not rows or not is_int(total) or offset >= total:
                break
        return members

    def _assignee_id(self, logins: frozenset[str]) -> int | None:
        login = at_most_one(
            logins,
            field="assignees",
            refusal=self._what("assign") + ": a Redmine issue has at most one assignee",
        )
        if login is None:
            return None
        found, missing = self._members.resolve([login])
        if missing:
            raise ValidationFailedError(
                self._what("assign") + f": {login!r} is no assignable member of the project",
                field="assignees",
            )
        return found[login]

    def _labels_value(self, labels: frozenset[str]) -> list[dict[str, Any]]:
        """The `custom_fields` entry that writes `labels` (sorted: a stable request)."""
        self._project()
        if self._labels_field_id is None:
            if not labels:
                return []
            raise ValidationFailedError(
                self._what("set labels")
                + f": the project has no custom field {self.labels_field!r}",
                field="labels",
            )
        if self._label_values is not None:
            unknown = sorted(labels - self._label_values)
            if unknown:
                raise ValidationFailedError(
                    self._what("set labels")
                    + f": {', '.join(map(repr, unknown))} not among {self.labels_field!r}'s values",
                    field="labels",
                )
        # An empty list clears a multi-value field; [""] is what Redmine's form sends.
        return [{"id": self._labels_field_id, "value": sorted(labels) or [""]}]

    def refused_value(self, field: str, value: Any) -> str | None:
        """Why this tracker cannot hold `value` in `field` (predefined values the API checks
        before queueing), or None. Reads the project's lookups once."""
        try:
            if field == "labels":
                self._labels_value(frozenset(value or ()))
            elif field == "assignees":
                self._assignee_id(frozenset(value or ()))
            elif field == "milestone":
                self._version_id(value)
        except ValidationFailedError as exc:
            return str(exc)
        return None

    # --- JSON → canonical ----------------------------------------------------------------

    def _parse(self, data: Any, what: str) -> RemoteIssue:
        try:
            return self._parse_issue(require_mapping(data, "issue"))
        except ShapeError as exc:
            raise MalformedAnswerError(f"{what}: unexpected answer: {exc}") from exc

    def _parse_issue(self, data: Mapping[str, Any]) -> RemoteIssue:
        number = str(require_int(data, "id", "issue"))
        status = require_mapping(data.get("status"), "issue.status")
        status_name = require_str(status, "name", "issue.status")
        closed = status.get("is_closed")
        if not isinstance(closed, bool):
            statuses = self._statuses if self._statuses is not None else self._load_statuses()
            closed = statuses.get(status_name, (0, False))[1]
        labels: frozenset[str] = frozenset()
        for field in data.get("custom_fields") or []:
            if isinstance(field, Mapping) and field.get("name") == self.labels_field:
                value = field.get("value")
                values = value if isinstance(value, list) else [value]
                labels = frozenset(str(v) for v in values if v not in (None, ""))
        assignees: frozenset[str] = frozenset()
        assigned = data.get("assigned_to")
        if isinstance(assigned, Mapping) and is_int(assigned.get("id")):
            assignees = frozenset({self._login(assigned["id"], str(assigned.get("name", "")))})
        version = data.get("fixed_version")
        milestone = (
            str(version["name"]) if isinstance(version, Mapping) and version.get("name") else None
        )
        description = data.get("description")
        updated = parse_timestamp(data.get("updated_on"))
        if updated is not None and (self._newest_update is None or updated > self._newest_update):
            self._newest_update = updated
        return RemoteIssue(
            external_id=number,
            number=number,
            title=require_str(data, "subject", "issue"),
            body=_crlf_to_lf(description) if isinstance(description, str) else "",
            state=IssueState.CLOSED if closed else IssueState.OPEN,
            labels=labels,
            assignees=assignees,
            milestone=milestone,
            remote_url=f"{self.base_url}/issues/{number}",
            created_at=parse_timestamp(data.get("created_on")),
            updated_at=updated,
            tracker_status=status_name,
        )

    # --- listing ---------------------------------------------------------------------------

    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        """The project's issues, open and closed (`status_id=*`; without it only open ones),
        oldest change first; `updated_on>=` one second before the cursor."""
        params: dict[str, Any] = {
            "project_id": self.repository,
            "status_id": "*",
            "sort": "updated_on,id",
        }
        if since is not None:
            params["updated_on"] = ">=" + format_timestamp(since - CURSOR_OVERLAP)
        return "issues.json", params, self._what("list issues")

    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        return [self._parse(item, what) for item in items]

    def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        what: str,
        etag: str | None = None,
    ) -> Iterator[tuple[requests.Response, list[Any]]]:
        """Redmine's paging: `limit` (at most 100) and `offset`, in an envelope with
        `total_count`. One request per page; a 304 on the first (the only conditional one)
        is yielded with no items and ends the listing."""
        offset = 0
        headers = {"If-None-Match": etag} if etag else None
        while True:
            page_what = f"{what} (offset {offset})"
            response = self.transport.request(
                "GET",
                path,
                what=page_what,
                params={**params, "limit": self.max_page_size, "offset": offset},
                headers=headers,
                ok_not_modified=headers is not None,
            )
            if response.status_code == 304:
                yield response, []
                return
            headers = None
            data = self.transport.json(response, what=page_what)
            items = data.get("issues") if isinstance(data, Mapping) else None
            total = data.get("total_count") if isinstance(data, Mapping) else None
            if not isinstance(items, list) or not is_int(total):
                raise MalformedAnswerError(f"{page_what}: unexpected answer: no issues list")
            if offset == 0:
                self.listing_total = total
            yield response, items
            offset += len(items)
            if not items or offset >= total:
                return

    # --- single issues ---------------------------------------------------------------------

    def _read(self, number: str) -> Any:
        what = self._what(f"read issue {number}")
        data = self._get(f"issues/{self._id(number)}.json", what=what)
        issue = data.get("issue") if isinstance(data, Mapping) else None
        if not isinstance(issue, Mapping):
            raise MalformedAnswerError(f"{what}: unexpected answer: no issue")
        project = issue.get("project")
        if (
            isinstance(project, Mapping)
            and is_int(project.get("id"))
            and project["id"] != self._project()
        ):
            raise NotFoundError(f"{what}: issue {number} is not in {self.repository}")
        return issue

    def get_issue(self, number: str) -> RemoteIssue:
        return self._parse(self._read(number), self._what(f"read issue {number}"))

    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        with unsent_on_failure(fields) as sent:
            return self._create_issue(fields, marker=marker, sent=sent)

    def _create_issue(
        self, fields: IssueFields, *, marker: str | None, sent: set[str]
    ) -> RemoteIssue:
        if not fields.title:
            raise ValidationFailedError("a Redmine issue needs a subject", field="title")
        form: dict[str, Any] = {
            "project_id": self._project(),
            "subject": fields.title,
            "description": body_with_marker(fields.body, marker),
        }
        form.update(self._scalar_form(fields))
        what = self._what("create an issue")
        sent.update(fields.names() - born_closed(fields))  # a status is set by a PUT after
        data = self._write("POST", "issues.json", what=what, body={"issue": form})
        created = self._parse(require_answer(data, what), what)
        if fields.state is IssueState.CLOSED:
            # A status given on create is ignored: set it with a PUT, then read it back.
            sent.add("state")
            return self._put(
                created.number,
                {"status_id": self._status_id(IssueState.CLOSED)},
                state=IssueState.CLOSED,
            )
        return created

    def _scalar_form(self, fields: IssueFields) -> dict[str, Any]:
        """Form entries for labels, assignee and target version (validated first)."""
        form: dict[str, Any] = {}
        if fields.labels is not None:
            entry = self._labels_value(fields.labels)
            if entry:
                form["custom_fields"] = entry
        if fields.assignees is not None:
            form["assigned_to_id"] = self._assignee_id(fields.assignees) or ""
        given, milestone = _milestone(fields)
        if given:
            form["fixed_version_id"] = self._version_id(milestone) or ""
        return form

    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        number = self._id(number)
        if current is None:
            current = self.get_issue(number)
        caps = self.capabilities
        form: dict[str, Any] = {}
        if fields.title is not None and fields.title != current.title:
            form["subject"] = fields.title
        if fields.body is not None and not caps.same("body", fields.body, current.body):
            form["description"] = body_with_marker(fields.body, current.marker)
        if fields.assignees is not None and not caps.same(
            "assignees", fields.assignees, current.assignees
        ):
            form["assigned_to_id"] = self._assignee_id(fields.assignees) or ""
        given, milestone = _milestone(fields)
        if given and milestone != current.milestone:
            form["fixed_version_id"] = self._version_id(milestone) or ""
        if fields.state is not None and fields.state is not current.state:
            form["status_id"] = self._status_id(fields.state)
        if fields.labels is not None and not caps.same("labels", fields.labels, current.labels):
            self._labels_value(fields.labels)  # refuse an unknown value before any call
            # Redmine has no add/remove endpoint: the whole value list is written. Read it
            # right before the write and apply our additions and removals to what it holds,
            # so a value a human added since `current` survives.
            added, removed = set_delta(current.labels, fields.labels)
            fresh = self.get_issue(number)
            wanted = (fresh.labels - removed) | added
            if wanted != fresh.labels:
                form["custom_fields"] = self._labels_value(wanted)
        if not form:
            # Every PUT bumps updated_on, even one that changes nothing: never send one.
            return current
        return self._put(number, form, state=fields.state if "status_id" in form else None)

    def _put(self, number: str, form: dict[str, Any], *, state: IssueState | None) -> RemoteIssue:
        what = self._what(f"update issue {number}")
        self._write("PUT", f"issues/{number}.json", what=what, body={"issue": form})
        after = self.get_issue(number)  # 204 without a body: read the new state
        if state is not None and after.state is not state:
            status = self.closed_status if state is IssueState.CLOSED else self.open_status
            # A forbidden status_id is silently ignored: say so once, do not loop.
            raise ValidationFailedError(
                f"{what}: Redmine kept status {after.tracker_status!r} instead of {status!r} "
                "(the workflow does not allow it for this user's role)",
                status=204,
                field="state",
            )
        return after

    def check_access(self) -> None:
        super().check_access()  # the shared ladder: 401, 403, 404, TLS, timeout, not a project
        # A project without the issue tracking module answers 403 to its issue listing.
        self._get(
            "issues.json",
            what=self._what("list issues"),
            params={"project_id": self.repository, "status_id": "*", "limit": 1},
        )


def require_answer(data: Any, what: str) -> Mapping[str, Any]:
    issue = data.get("issue") if isinstance(data, Mapping) else None
    if not isinstance(issue, Mapping):
        raise MalformedAnswerError(f"{what}: unexpected answer: no issue")
    return issue
