"""GitLab (REST API v4): the client for one project, and webhook verification and parsing.

A project is addressed as `/projects/{id}` where `id` is the numeric id or the URL-encoded
path (`group/sub/name` → `group%2Fsub%2Fname`); issues by their project-scoped `iid`. One
`PUT /projects/:id/issues/:iid` carries a whole update (title, description, state_event,
labels by name, assignees and milestone by id), so a push is one write after one read.

GitLab creates unknown labels silently when an issue names them, so unless the connection
allows label creation, names are checked against the project's labels first. Assignees and
the milestone go by id: logins and titles are resolved once per client and cached.

Webhooks carry the secret itself in `X-Gitlab-Token`. Issue payloads carry the full state
except in two cases a payload cannot express: assignees given only as ids (no user objects)
and a milestone given only as `milestone_id`. Rather than clear what cannot be mapped, such a
delivery becomes an ISSUE event that names the issue without state (`issue=None`), so the
engine re-reads it with `get_issue`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

from integrations.providers.base import (
    Capabilities,
    EventKind,
    IssueFields,
    IssueState,
    MalformedAnswerError,
    PermanentError,
    RemoteComment,
    RemoteIssue,
    ValidationFailedError,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerifier,
    body_with_marker,
    born_closed,
    set_delta,
    unsent_on_failure,
)
from integrations.providers.core import NameCache, Paging, RestClient, positive_number
from integrations.providers.hooks import HookOutcome, RemoteHook
from integrations.providers.http import (
    format_timestamp,
    parse_timestamp,
)
from integrations.providers.shapes import (
    ShapeError,
    header,
    optional_list,
    optional_str,
    require_int,
    require_mapping,
    require_str,
    web_url,
)

API_PREFIX = "/api/v4"
PAGE_SIZE = 100

# GitLab before 10.x also had "reopened" (an open issue that had been closed once).
_STATES = {"opened": IssueState.OPEN, "reopened": IssueState.OPEN, "closed": IssueState.CLOSED}
# Work item types GitLab serves through its issue APIs and hooks that are not issues.
_NOT_ISSUE_TYPES = frozenset({"task", "epic", "objective", "key_result"})
# Of `object_kind: work_item` hooks only these types are issues (SPEC: Incident counts).
_ISSUE_WORK_ITEM_TYPES = frozenset({"issue", "incident"})
_ISSUE_ACTIONS = frozenset({"open", "update", "close", "reopen"})
_DELETE_ACTIONS = frozenset({"delete", "destroy"})


def _type_key(value: str) -> str:
    return value.strip().lower().replace(" ", "_")


# --- JSON → canonical values ---------------------------------------------------------------


def _state(data: Mapping[str, Any], what: str) -> IssueState:
    raw = require_str(data, "state", what)
    try:
        return _STATES[raw]
    except KeyError:
        raise ShapeError(f"{what}.state {raw[:40]!r} is not 'opened' or 'closed'") from None


def _usernames(users: Iterable[Any], what: str) -> frozenset[str]:
    names = set()
    for user in users:
        names.add(require_str(require_mapping(user, f"{what}[]"), "username", f"{what}[]"))
    return frozenset(names)


def _label_names(labels: Iterable[Any], what: str, *, key: str) -> frozenset[str]:
    """REST lists label names as strings; hooks (and `with_labels_details`) as objects."""
    names = set()
    for label in labels:
        if isinstance(label, str):
            names.add(label)
        else:
            names.add(require_str(require_mapping(label, f"{what}[]"), key, f"{what}[]"))
    return frozenset(names)


def _is_work_item_not_issue(data: Mapping[str, Any]) -> bool:
    for key in ("type", "issue_type"):
        value = data.get(key)
        if isinstance(value, str) and _type_key(value) in _NOT_ISSUE_TYPES:
            return True
    return False


def issue_from_api(data: Any) -> RemoteIssue:
    """One issue of the REST API (`GET /projects/:id/issues[/:iid]`) → RemoteIssue;
    ShapeError if malformed (the client makes that MalformedAnswerError)."""
    issue = require_mapping(data, "issue")
    labels = optional_list(issue, "labels", "issue") or []
    assignees = optional_list(issue, "assignees", "issue")
    if assignees is None:
        # GitLab before 9.0 answered with a single `assignee` object.
        single = issue.get("assignee")
        assignees = [] if single is None else [single]
    milestone_data = issue.get("milestone")
    milestone = (
        None
        if milestone_data is None
        else require_str(
            require_mapping(milestone_data, "issue.milestone"), "title", "issue.milestone"
        )
    )
    return RemoteIssue(
        external_id=str(require_int(issue, "id", "issue")),
        number=str(require_int(issue, "iid", "issue")),
        title=require_str(issue, "title", "issue"),
        body=optional_str(issue, "description", "issue") or "",
        state=_state(issue, "issue"),
        tracker_status=str(issue.get("state")),
        labels=_label_names(labels, "issue.labels", key="name"),
        assignees=_usernames(assignees, "issue.assignees"),
        milestone=milestone,
        remote_url=web_url(optional_str(issue, "web_url", "issue"), "issue.web_url"),
        created_at=parse_timestamp(issue.get("created_at")),
        updated_at=parse_timestamp(issue.get("updated_at")),
    )


# --- the client -----------------------------------------------------------------------------


class GitLabClient(RestClient):
    """One GitLab project, addressed by path (`group/sub/name`) or numeric id."""

    provider: ClassVar[str] = "gitlab"
    capabilities: ClassVar[Capabilities] = Capabilities(
        webhooks=True,
        deletion_in_webhooks=False,  # a deleted issue sends no hook: reconciliation finds it
        max_assignees=None,  # GitLab Free allows one; paid tiers many — the server decides
        max_labels=None,
        milestones=True,
        labels_predefined=False,  # `labels=` creates unknown labels
        conditional_writes=False,
        set_delta_writes=True,  # add_labels/remove_labels on PUT
        label_case_insensitive=False,
        assignee_case_insensitive=True,
        webhook_registration=True,
        body_crlf_to_lf=True,
    )
    max_page_size: ClassVar[int] = PAGE_SIZE

    paging = Paging.NEXT_PAGE_HEADER
    size_param = "per_page"
    total_header = "X-Total"

    def _setup(self) -> None:
        project = self.repository.strip().strip("/")
        if not project:
            raise PermanentError("GitLab repository is empty: give the project path or its id")
        self.project = project
        self._project_path = "projects/" + quote(project, safe="")
        # The project's label names (group labels included) and milestone title → id (group
        # milestones can be set on a project's issues too).
        self._labels: NameCache[str] = self.name_cache(
            f"{self._project_path}/labels",
            {},
            what=f"list labels of GitLab project {self.project}",
            name_key="name",
            value_key="name",
        )
        self._milestones: NameCache[int] = self.name_cache(
            f"{self._project_path}/milestones",
            {"include_ancestors": "true"},
            what=f"list milestones of GitLab project {self.project}",
            name_key="title",
            value_key="id",
        )
        self._user_ids: dict[str, int] = {}  # lower-cased username → id

    def api_root(self) -> str:
        # base_url is the web root; tolerate one pasted with the API prefix already on it.
        root = self.base_url
        return root if root.endswith(API_PREFIX) else root + API_PREFIX

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"PRIVATE-TOKEN": token, "Accept": "application/json"}

    tracker_name = "GitLab"
    repository_noun = "GitLab project"
    issues_enabled_key = "issues_enabled"
    access_hint = ": it needs the api scope and at least Reporter access"

    def access_path(self) -> str:
        return self._project_path

    # --- listing -----------------------------------------------------------------------------

    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        params: dict[str, Any] = {"scope": "all", "order_by": "updated_at", "sort": "asc"}
        if since is not None:
            params["updated_after"] = format_timestamp(since)
        return (
            f"{self._project_path}/issues",
            params,
            f"list issues of GitLab project {self.project}",
        )

    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        return [
            self.parse_answer(issue_from_api, item, what=what)
            for item in items
            if not (isinstance(item, Mapping) and _is_work_item_not_issue(item))
        ]

    # --- single issues -----------------------------------------------------------------------

    def get_issue(self, number: str) -> RemoteIssue:
        iid = self._iid(number)
        what = f"read issue {iid} of GitLab project {self.project}"
        response = self.transport.request("GET", self._issue_path(iid), what=what)
        return self.parse_answer(
            issue_from_api, self.transport.json(response, what=what), what=what
        )

    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        with unsent_on_failure(fields) as sent:
            return self._create_issue(fields, marker=marker, sent=sent)

    def _create_issue(
        self, fields: IssueFields, *, marker: str | None, sent: set[str]
    ) -> RemoteIssue:
        if fields.title is None or not fields.title.strip():
            raise ValidationFailedError("a GitLab issue needs a non-empty title", field="title")
        # Resolve every name before the first write, so a bad name leaves nothing half-made.
        body: dict[str, Any] = {"title": fields.title}
        if fields.body is not None or marker:
            body["description"] = body_with_marker(fields.body, marker)
        if fields.labels:
            body["labels"] = self._labels_param(fields.labels)
        if fields.assignees:
            body["assignee_ids"] = self._resolve_users(fields.assignees)
        if isinstance(fields.milestone, str):
            body["milestone_id"] = self._resolve_milestone(fields.milestone)
        what = f"create an issue in GitLab project {self.project}"
        sent.update(fields.names() - born_closed(fields))
        response = self.transport.request(
            "POST", f"{self._project_path}/issues", what=what, json=body
        )
        issue = self.parse_answer(
            issue_from_api, self.transport.json(response, what=what), what=what
        )
        if fields.state is IssueState.CLOSED:
            # POST cannot create a closed issue: closing is a second call.
            sent.add("state")
            issue = self._put(int(issue.number), {"state_event": "close"})
        return issue

    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        """One PUT against `current`: labels as `add_labels`/`remove_labels` (a label the
        tracker gained meanwhile survives), assignees as the full id list (GitLab has no
        assignee delta), the rest as values. The PUT answers the whole issue."""
        iid = self._iid(number)
        if current is None:
            current = self.get_issue(str(iid))
        changes: dict[str, Any] = {}
        if fields.title is not None and fields.title != current.title:
            changes["title"] = fields.title
        if fields.body is not None and not self.capabilities.same(
            "body", fields.body, current.body
        ):
            # Keep the create marker: it is how a lost create answer is found again.
            changes["description"] = body_with_marker(fields.body, current.marker)
        if fields.state is not None and fields.state != current.state:
            changes["state_event"] = "close" if fields.state is IssueState.CLOSED else "reopen"
        if fields.labels is not None:
            add, remove = set_delta(current.labels, fields.labels)
            if add:
                changes["add_labels"] = self._labels_param(add)
            if remove:
                changes["remove_labels"] = self._labels_param(remove, check=False)
        if fields.assignees is not None and _folded(fields.assignees) != _folded(current.assignees):
            # GitLab documents 0 as "unassign everyone".
            changes["assignee_ids"] = self._resolve_users(fields.assignees) or [0]
        milestone = fields.milestone
        if milestone is None and current.milestone is not None:
            changes["milestone_id"] = 0
        elif isinstance(milestone, str) and milestone != current.milestone:
            changes["milestone_id"] = self._resolve_milestone(milestone)
        if not changes:
            return current
        return self._put(iid, changes)

    def _put(self, iid: int, body: Mapping[str, Any]) -> RemoteIssue:
        what = f"update issue {iid} of GitLab project {self.project}"
        response = self.transport.request("PUT", self._issue_path(iid), what=what, json=body)
        return self.parse_answer(
            issue_from_api, self.transport.json(response, what=what), what=what
        )

    def _issue_path(self, iid: int) -> str:
        return f"{self._project_path}/issues/{iid}"

    def _iid(self, number: str | int) -> int:
        # Failed before for "٣" (str.isdigit): it named the issue 3.
        return positive_number(
            number, what=f"an issue number (iid) in GitLab project {self.project}"
        )

    # --- names → ids, cached per client ------------------------------------------------------

    def _labels_param(self, labels: frozenset[str], *, check: bool = True) -> str:
        for name in labels:
            if "," in name or not name.strip():
                raise ValidationFailedError(
                    f"label {name!r} cannot be sent to GitLab: names are comma-separated",
                    field="labels",
                )
        if check and not self.allow_create_labels:
            _, missing = self._labels.resolve(labels)
            if missing:
                raise ValidationFailedError(
                    f"label(s) {', '.join(sorted(missing))} do not exist in GitLab project "
                    f"{self.project}, and this connection may not create labels",
                    field="labels",
                )
        return ",".join(sorted(labels))

    def _resolve_milestone(self, title: str) -> int:
        found, missing = self._milestones.resolve([title])
        if missing:
            raise ValidationFailedError(
                f"milestone {title!r} does not exist in GitLab project {self.project}",
                field="milestone",
            )
        return int(found[title])

    def _resolve_users(self, logins: frozenset[str]) -> list[int]:
        unknown: list[str] = []
        for login in sorted(logins):
            key = login.lower()
            if key not in self._user_ids:
                user_id = self._find_member(login)
                if user_id is None:
                    unknown.append(login)
                    continue
                self._user_ids[key] = user_id
        if unknown:
            raise ValidationFailedError(
                f"user(s) {', '.join(unknown)} are not members of GitLab project {self.project}",
                field="assignees",
            )
        return sorted(self._user_ids[login.lower()] for login in logins)

    def _find_member(self, login: str) -> int | None:
        what = f"look up user {login} in GitLab project {self.project}"
        # `query` matches names and usernames by substring; only an exact username counts.
        response = self.transport.request(
            "GET",
            f"{self._project_path}/members/all",
            what=what,
            params={"query": login, "per_page": PAGE_SIZE},
        )
        data = self.transport.json(response, what=what)
        if not isinstance(data, list):
            raise MalformedAnswerError(f"{what}: the answer is not a list of members")
        for item in data:
            try:
                member = require_mapping(item, "member")
                if require_str(member, "username", "member").lower() == login.lower():
                    return require_int(member, "id", "member")
            except ShapeError as exc:
                raise MalformedAnswerError(f"{what}: {exc}") from None
        return None

    # --- webhook registration (integrations/providers/hooks.py) ------------------------------

    sets_webhook_secret: ClassVar[bool] = True

    # GitLab's hooks have flags, not an event list; GitLab always posts JSON.
    hook_events: ClassVar[tuple[str, ...]] = ("issues_events",)

    def ensure_webhook(self, *, url: str, secret: str) -> HookOutcome:
        """`GET/POST /projects/:id/hooks`, `PUT …/hooks/:hook_id`. GitLab disables a failing
        hook by itself (`alert_status`); saving it again re-enables it."""
        body = {
            "url": url,
            "token": secret,
            "issues_events": True,
            "push_events": False,
            "enable_ssl_verification": True,
        }

        def parse(data: Any) -> RemoteHook:
            hook = require_mapping(data, "hook")
            return RemoteHook(
                id=str(require_int(hook, "id", "hook")),
                url=optional_str(hook, "url", "hook") or "",
                events=frozenset(e for e in self.hook_events if hook.get(e) is True),
                active=hook.get("alert_status", "executable") == "executable",
                content_type=None,  # GitLab always sends JSON
            )

        return self.ensure_hook_at(
            path=f"{self._project_path}/hooks",
            what=f"webhooks of GitLab project {self.project}",
            url=url,
            events=self.hook_events,
            parse=parse,
            create=body,
            repair=body,
            repair_method="PUT",
        )


def _folded(logins: Iterable[str]) -> frozenset[str]:
    # GitLab usernames are case-insensitive.
    return frozenset(login.lower() for login in logins)


# --- webhooks -------------------------------------------------------------------------------

ISSUE_EVENTS = frozenset({"Issue Hook", "Confidential Issue Hook"})
NOTE_EVENTS = frozenset({"Note Hook", "Confidential Note Hook"})
# Every `X-Gitlab-Event` a project, group or system hook sends.
KNOWN_EVENTS = frozenset(
    {
        *ISSUE_EVENTS,
        *NOTE_EVENTS,
        "Push Hook",
        "Tag Push Hook",
        "Merge Request Hook",
        "Wiki Page Hook",
        "Pipeline Hook",
        "Job Hook",
        "Deployment Hook",
        "Feature Flag Hook",
        "Release Hook",
        "Milestone Hook",
        "Emoji Hook",
        "Resource Access Token Hook",
        "Member Hook",
        "Subgroup Hook",
        "Project Hook",
        "Vulnerability Hook",
        "System Hook",
    }
)
# `object_kind` → event name, for a body that arrives without its header.
_KIND_EVENTS = {
    "issue": "Issue Hook",
    "work_item": "Issue Hook",
    "note": "Note Hook",
    "push": "Push Hook",
    "tag_push": "Tag Push Hook",
    "merge_request": "Merge Request Hook",
    "wiki_page": "Wiki Page Hook",
    "pipeline": "Pipeline Hook",
    "build": "Job Hook",
    "deployment": "Deployment Hook",
    "feature_flag": "Feature Flag Hook",
    "release": "Release Hook",
    "milestone": "Milestone Hook",
    "emoji": "Emoji Hook",
    "access_token": "Resource Access Token Hook",
    "vulnerability": "Vulnerability Hook",
}


class GitLabWebhooks(WebhookVerifier):
    provider: ClassVar[str] = "gitlab"

    def verify(self, *, secret: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        token = header(headers, "X-Gitlab-Token")
        if not secret or token is None:
            return False
        try:
            sent = token.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate: no secret looks like that
            return False
        return hmac.compare_digest(sent, secret.encode("utf-8"))

    def event_name(self, *, headers: Mapping[str, str], payload: Mapping[str, Any] | None) -> str:
        sent = header(headers, "X-Gitlab-Event")
        if sent:
            return sent.strip()
        if not isinstance(payload, Mapping):
            return ""
        kind = payload.get("object_kind")
        if not isinstance(kind, str) or kind not in _KIND_EVENTS:
            return ""
        name = _KIND_EVENTS[kind]
        event_type = payload.get("event_type")
        if (
            name in ("Issue Hook", "Note Hook")
            and isinstance(event_type, str)
            and event_type.startswith("confidential_")
        ):
            name = f"Confidential {name}"
        return name

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str:
        # Idempotency-Key stays the same on every retry of one delivery; the event UUID is
        # what GitLab versions before 17.4 send.
        for name in ("Idempotency-Key", "X-Gitlab-Event-UUID"):
            value = header(headers, name)
            if value and value.strip():
                return value.strip()
        return hashlib.sha256(body).hexdigest()

    def is_known_event(self, event: str) -> bool:
        return event in KNOWN_EVENTS

    def parse(self, *, event: str, payload: Any, base_url: str) -> WebhookEvent:
        if not isinstance(payload, Mapping):
            raise WebhookPayloadError("a GitLab webhook body is a JSON object")
        try:
            if event in ISSUE_EVENTS:
                return self._parse_issue(event, payload, base_url)
            if event in NOTE_EVENTS:
                return self._parse_note(event, payload)
            repository = _repository_or_none(payload)
            if event == "Merge Request Hook":
                reason = "merge request events are not issue events"
            elif event in KNOWN_EVENTS:
                reason = f"{event} events do not concern issues"
            else:
                reason = f"unknown GitLab event {event[:60]!r}"
            return _ignored(event, repository, reason, action=_action_or_empty(payload))
        except ShapeError as exc:
            raise WebhookPayloadError(f"{event}: {exc}") from None

    def _parse_issue(self, event: str, payload: Mapping[str, Any], base_url: str) -> WebhookEvent:
        kind = payload.get("object_kind")
        if kind not in ("issue", "work_item"):
            raise ShapeError(f"object_kind {str(kind)[:40]!r} is not an issue or work item")
        attrs = require_mapping(payload.get("object_attributes"), "object_attributes")
        action = optional_str(attrs, "action", "object_attributes")
        item_type = optional_str(attrs, "type", "object_attributes")
        repository = _repository(payload)
        if repository is None:
            return _ignored(event, None, "group-level work item (no project)", action or "")
        if item_type is not None:
            type_key = _type_key(item_type)
            if type_key in _NOT_ISSUE_TYPES or (
                kind == "work_item" and type_key not in _ISSUE_WORK_ITEM_TYPES
            ):
                return _ignored(
                    event, repository, f"{item_type} work items are not issues", action or ""
                )
        if action is None:
            # The hook settings' "Test" button sends an issue without an action.
            return _ignored(event, repository, "test delivery (no action): a ping", "")
        external_id = str(require_int(attrs, "id", "object_attributes"))
        number = str(require_int(attrs, "iid", "object_attributes"))
        if action in _DELETE_ACTIONS:
            return WebhookEvent(
                kind=EventKind.ISSUE_DELETED,
                event=event,
                action=action,
                repository=repository,
                issue_external_id=external_id,
                issue_number=number,
            )
        if action not in _ISSUE_ACTIONS:
            return _ignored(event, repository, f"unknown issue action {action[:40]!r}", action)
        issue, missing = _issue_from_hook(payload, attrs, repository, base_url)
        return WebhookEvent(
            kind=EventKind.ISSUE,
            event=event,
            action=action,
            repository=repository,
            issue=issue,
            issue_external_id=external_id,
            issue_number=number,
            reason="" if issue is not None else f"payload lacks {missing}: re-read the issue",
        )

    def _parse_note(self, event: str, payload: Mapping[str, Any]) -> WebhookEvent:
        kind = payload.get("object_kind")
        if kind != "note":
            raise ShapeError(f"object_kind {str(kind)[:40]!r} is not a note")
        attrs = require_mapping(payload.get("object_attributes"), "object_attributes")
        action = optional_str(attrs, "action", "object_attributes") or "create"
        repository = _repository(payload)
        if repository is None:
            return _ignored(event, None, "comment outside a project", action)
        noteable = optional_str(attrs, "noteable_type", "object_attributes")
        if noteable != "Issue":
            what = "a merge request" if noteable == "MergeRequest" else f"a {noteable or 'thing'}"
            return _ignored(event, repository, f"comment on {what}, not on an issue", action)
        issue = require_mapping(payload.get("issue"), "issue")
        issue_type = optional_str(issue, "type", "issue")
        if issue_type is not None and _type_key(issue_type) in _NOT_ISSUE_TYPES:
            return _ignored(event, repository, f"comment on a {issue_type}, not an issue", action)
        if attrs.get("system") is True:
            return _ignored(event, repository, "system note (GitLab's own activity)", action)
        number = str(require_int(issue, "iid", "issue"))
        user = payload.get("user")
        author = ""
        if user is not None:
            author = optional_str(require_mapping(user, "user"), "username", "user") or ""
        comment = RemoteComment(
            external_id=str(require_int(attrs, "id", "object_attributes")),
            issue_number=number,
            body=optional_str(attrs, "note", "object_attributes") or "",
            author=author,
            created_at=parse_timestamp(attrs.get("created_at")),
            updated_at=parse_timestamp(attrs.get("updated_at")),
        )
        return WebhookEvent(
            kind=EventKind.COMMENT,
            event=event,
            action=action,
            repository=repository,
            comment=comment,
            issue_external_id=str(require_int(issue, "id", "issue")),
            issue_number=number,
        )


def _ignored(event: str, repository: str | None, reason: str, action: str = "") -> WebhookEvent:
    return WebhookEvent(
        kind=EventKind.IGNORED, event=event, action=action, repository=repository, reason=reason
    )


def _repository(payload: Mapping[str, Any]) -> str | None:
    """`project.path_with_namespace`; None for a group-level item (`project: null`)."""
    if "project" not in payload:
        raise ShapeError("project is missing")
    project = payload.get("project")
    if project is None:
        return None
    return require_str(require_mapping(project, "project"), "path_with_namespace", "project")


def _repository_or_none(payload: Mapping[str, Any]) -> str | None:
    """For events we ignore: the project if it is readable, without judging the rest."""
    project = payload.get("project")
    if isinstance(project, Mapping):
        path = project.get("path_with_namespace")
        if isinstance(path, str):
            return path
    return None


def _action_or_empty(payload: Mapping[str, Any]) -> str:
    attrs = payload.get("object_attributes")
    if isinstance(attrs, Mapping) and isinstance(attrs.get("action"), str):
        return str(attrs["action"])
    return ""


def _issue_from_hook(
    payload: Mapping[str, Any], attrs: Mapping[str, Any], repository: str, base_url: str
) -> tuple[RemoteIssue | None, str]:
    """The full state in an issue hook, or (None, what is missing) when it is incomplete."""
    where = "object_attributes"
    iid = require_int(attrs, "iid", where)
    missing: list[str] = []

    labels: frozenset[str] | None = None
    for source, data, what in (
        ("labels", payload, "labels"),
        ("labels", attrs, f"{where}.labels"),
    ):
        listed = optional_list(data, source, what)
        if listed is not None:
            labels = _label_names(listed, what, key="title")
            break
    if labels is None:
        missing.append("the label list")  # hooks before GitLab 9.x carried no labels

    assignees = _hook_assignees(payload, attrs)
    if assignees is None:
        missing.append("assignee usernames")

    milestone: str | None = None
    milestone_id = attrs.get("milestone_id")
    if milestone_id is not None:
        require_int(attrs, "milestone_id", where)
        # GitLab's hook carries only the id; a title is used if some version sends one.
        milestone_data = attrs.get("milestone")
        if isinstance(milestone_data, Mapping) and isinstance(milestone_data.get("title"), str):
            milestone = str(milestone_data["title"])
        else:
            missing.append("the milestone title")

    title = require_str(attrs, "title", where)
    body = optional_str(attrs, "description", where) or ""
    state = _state(attrs, where)
    url = optional_str(attrs, "url", where)
    if missing or labels is None or assignees is None:
        return None, " and ".join(missing)
    return (
        RemoteIssue(
            external_id=str(require_int(attrs, "id", where)),
            number=str(iid),
            title=title,
            body=body,
            state=state,
            tracker_status=str(attrs.get("state")),
            labels=labels,
            assignees=assignees,
            milestone=milestone,
            remote_url=web_url(url, where) or f"{base_url.rstrip('/')}/{repository}/-/issues/{iid}",
            created_at=parse_timestamp(attrs.get("created_at")),
            updated_at=parse_timestamp(attrs.get("updated_at")),
        ),
        "",
    )


def _hook_assignees(payload: Mapping[str, Any], attrs: Mapping[str, Any]) -> frozenset[str] | None:
    """Usernames from the hook, or None when it names assignees only by id."""
    users = optional_list(payload, "assignees", "assignees")
    if users is not None:
        return _usernames(users, "assignees")
    single = payload.get("assignee")
    if single is not None:
        # The single-assignee hooks of 2016.
        return _usernames([single], "assignee")
    ids = optional_list(attrs, "assignee_ids", "object_attributes")
    if ids is not None:
        # GitLab leaves `assignees` out when there are none.
        return frozenset() if not ids else None
    return frozenset() if attrs.get("assignee_id") is None else None
