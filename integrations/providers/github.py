"""GitHub: REST client for one repository, and webhook verification and parsing.

GitHub takes label names, assignee logins and a milestone number directly on
`PATCH /repos/{owner}/{repo}/issues/{issue_number}`, so a push is one write. The issue list
mixes pull requests in with issues; they are dropped everywhere, since a PR is not an issue
this product mirrors.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote

import requests

from integrations.providers.base import (
    SET_FIELDS,
    UNSET,
    Capabilities,
    EventKind,
    IssueFields,
    IssueState,
    NotFoundError,
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
from integrations.providers.hooks import HookOutcome, parse_repo_hook
from integrations.providers.http import (
    format_timestamp,
    parse_timestamp,
)
from integrations.providers.shapes import (
    ShapeError,
    header,
    optional_str,
    require_int,
    require_mapping,
    require_str,
    signature_matches,
    web_url,
)

API_VERSION = "2022-11-28"
MEDIA_TYPE = "application/vnd.github+json"
# Enough issues to make repeated pushes to the same few issues conditional (304s are free).
_ISSUE_CACHE_SIZE = 512


# --- JSON → canonical values ---------------------------------------------------------------


def _present_text(data: Mapping[str, Any], key: str, what: str) -> str:
    """A present key whose value may be null (GitHub sends `"body": null`)."""
    if key not in data:
        # A missing body would read as "cleared" and wipe the mirror's copy.
        raise ShapeError(f"{what}.{key} is missing")
    return optional_str(data, key, what) or ""


def _timestamp(data: Mapping[str, Any], key: str, what: str) -> datetime | None:
    value = data.get(key)
    if value is None:
        return None
    parsed = parse_timestamp(value)
    if parsed is None:
        # Ordering of deliveries relies on updated_at: garbage here must not pass as "unknown".
        raise ShapeError(f"{what}.{key} is not an ISO 8601 timestamp")
    return parsed


def _label_names(value: Any, what: str) -> frozenset[str]:
    if not isinstance(value, list):
        raise ShapeError(f"{what}.labels is not a list")
    names: set[str] = set()
    for item in value:
        # The REST API and webhooks send label objects; `labels` in requests are plain names.
        if isinstance(item, str):
            names.add(item)
        elif isinstance(item, dict) and isinstance(item.get("name"), str):
            names.add(item["name"])
        else:
            raise ShapeError(f"{what}.labels holds something that is not a label")
    return frozenset(names)


def _login(value: Any, what: str) -> str:
    user = require_mapping(value, what)
    return require_str(user, "login", what)


def _assignee_logins(data: Mapping[str, Any], what: str) -> frozenset[str]:
    if "assignees" in data:
        value = data["assignees"]
        if not isinstance(value, list):
            raise ShapeError(f"{what}.assignees is not a list")
        # The webhook schemas allow null entries; they name nobody.
        return frozenset(_login(item, f"{what}.assignees[]") for item in value if item is not None)
    if "assignee" in data:
        # Payloads from before multiple assignees (2015) carry only the single `assignee`.
        single = data["assignee"]
        return frozenset() if single is None else frozenset({_login(single, f"{what}.assignee")})
    # Without either key "no assignees" would be a guess, and a guess here clears real data.
    raise ShapeError(f"{what}.assignees is missing")


def _milestone_title(data: Mapping[str, Any], what: str) -> str | None:
    if "milestone" not in data:
        raise ShapeError(f"{what}.milestone is missing")
    value = data["milestone"]
    if value is None:
        return None
    return require_str(require_mapping(value, f"{what}.milestone"), "title", f"{what}.milestone")


def _issue_state(data: Mapping[str, Any], what: str) -> IssueState:
    value = data.get("state")
    if value == "open":
        return IssueState.OPEN
    if value == "closed":
        return IssueState.CLOSED
    raise ShapeError(f"{what}.state is neither 'open' nor 'closed'")


def is_pull_request(data: Mapping[str, Any]) -> bool:
    """GitHub lists pull requests among issues; only they carry a `pull_request` key."""
    return data.get("pull_request") is not None


def issue_from_json(value: Any, *, what: str = "issue") -> RemoteIssue:
    """GitHub issue JSON (REST answer or webhook `issue`) → RemoteIssue; ShapeError if bad."""
    data = require_mapping(value, what)
    return RemoteIssue(
        external_id=str(require_int(data, "id", what)),
        number=str(require_int(data, "number", what)),
        title=require_str(data, "title", what),
        body=_present_text(data, "body", what),
        state=_issue_state(data, what),
        tracker_status=str(data.get("state")),
        labels=_label_names(data.get("labels"), what),
        assignees=_assignee_logins(data, what),
        milestone=_milestone_title(data, what),
        remote_url=web_url(require_str(data, "html_url", what), f"{what}.html_url"),
        created_at=_timestamp(data, "created_at", what),
        updated_at=_timestamp(data, "updated_at", what),
    )


def comment_from_json(value: Any, *, issue_number: str, what: str = "comment") -> RemoteComment:
    data = require_mapping(value, what)
    user = data.get("user")
    # A deleted account shows as `"user": null`; the comment itself is still real.
    author = "" if user is None else _login(user, f"{what}.user")
    return RemoteComment(
        external_id=str(require_int(data, "id", what)),
        issue_number=issue_number,
        body=_present_text(data, "body", what),
        author=author,
        created_at=_timestamp(data, "created_at", what),
        updated_at=_timestamp(data, "updated_at", what),
    )


# --- the REST client -----------------------------------------------------------------------


# GitHub's request keys → canonical field names.
_CANONICAL = {"title": "title", "body": "body", "state": "state", "state_reason": "state"}


def _blamed(exc: ValidationFailedError, payload: Mapping[str, Any]) -> ValidationFailedError:
    """GitHub's 422 names the field only in `errors`; say what we sent, and blame the field
    when the message names one we sent (or only one was sent)."""
    sent = ", ".join(f"{k}={v!r}" for k, v in sorted(payload.items()) if k != "body")
    message = str(exc)
    fields = {_CANONICAL.get(key, key) for key in payload}
    named = [f for f in sorted(fields) if f in message]
    field = exc.field or (
        named[0] if len(named) == 1 else (fields.pop() if len(fields) == 1 else None)
    )
    return ValidationFailedError(f"{message} (sent {sent})", status=exc.status, field=field)


def split_repository(repository: str) -> tuple[str, str]:
    owner, sep, name = repository.strip().partition("/")
    if not sep or not owner or not name or "/" in name:
        raise ValidationFailedError(f"repository {repository!r} is not of the form owner/name")
    return owner, name


class GitHubClient(RestClient):
    """One GitHub repository. `base_url` is the API root (`https://api.github.com`, or
    `https://HOST/api/v3` for GitHub Enterprise Server)."""

    provider: ClassVar[str] = "github"
    capabilities: ClassVar[Capabilities] = Capabilities(
        webhooks=True,
        deletion_in_webhooks=True,
        max_assignees=10,  # GitHub's documented limit per issue
        max_labels=100,
        milestones=True,
        labels_predefined=False,  # writing an unknown label name creates it
        conditional_writes=False,
        set_delta_writes=True,
        label_case_insensitive=True,  # `BUG` is written onto the existing `bug`
        assignee_case_insensitive=False,
        webhook_registration=True,
        body_crlf_to_lf=False,
    )
    max_page_size: ClassVar[int] = 100

    paging = Paging.LINK
    size_param = "per_page"

    def _setup(self) -> None:
        owner, name = split_repository(self.repository)
        self._repo_path = f"repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        # Lookups that pushes need; refreshed once on a miss, since someone may have added one.
        # Label names (GitHub matches them ignoring case) and milestone title → number.
        self._labels: NameCache[str] = self.name_cache(
            f"{self._repo_path}/labels",
            {},
            what=f"list labels of {self.repository}",
            name_key="name",
            value_key="name",
            fold=True,
        )
        self._milestones: NameCache[int] = self.name_cache(
            f"{self._repo_path}/milestones",
            {"state": "all"},
            what=f"list milestones of {self.repository}",
            name_key="title",
            value_key="number",
        )
        self._issue_cache: OrderedDict[str, tuple[str, RemoteIssue]] = OrderedDict()

    def api_root(self) -> str:
        return self.base_url

    tracker_name = "GitHub"

    def access_path(self) -> str:
        return self._repo_path

    def is_repository(self, data: Any) -> bool:
        return isinstance(data, Mapping) and isinstance(data.get("full_name"), str)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {
            "Accept": MEDIA_TYPE,
            "X-GitHub-Api-Version": API_VERSION,
            "Authorization": f"Bearer {token}",
        }

    # --- plumbing ---------------------------------------------------------------------

    def _json(self, response: requests.Response, *, what: str) -> Any:
        return self.transport.json(response, what=what)

    def _issue(self, value: Any, *, what: str) -> RemoteIssue:
        return self.parse_answer(issue_from_json, value, what=what)

    # --- listing ----------------------------------------------------------------------

    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        params: dict[str, Any] = {"state": "all", "sort": "updated", "direction": "asc"}
        if since is not None:
            params["since"] = format_timestamp(since)
        return f"{self._repo_path}/issues", params, f"list issues of {self.repository}"

    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        return [
            self._issue(item, what=what)
            for item in items
            if not (isinstance(item, dict) and is_pull_request(item))
        ]

    # --- single issues ----------------------------------------------------------------

    def _issue_path(self, number: str) -> str:
        return f"{self._repo_path}/issues/{positive_number(number, what='a GitHub issue number')}"

    def _remember(self, number: str, etag: str | None, issue: RemoteIssue) -> None:
        self._issue_cache.pop(number, None)
        if etag:
            self._issue_cache[number] = (etag, issue)
            while len(self._issue_cache) > _ISSUE_CACHE_SIZE:
                self._issue_cache.popitem(last=False)

    def get_issue(self, number: str) -> RemoteIssue:
        number = str(number).strip()
        what = f"get issue #{number} of {self.repository}"
        cached = self._issue_cache.get(number)
        # Conditional: an unchanged issue answers 304, which costs no rate limit.
        headers = {"If-None-Match": cached[0]} if cached else None
        response = self.transport.request(
            "GET", self._issue_path(number), what=what, headers=headers, ok_not_modified=True
        )
        if response.status_code == 304 and cached is not None:
            self._issue_cache.move_to_end(number)
            return cached[1]
        data = self._json(response, what=what)
        if isinstance(data, dict) and is_pull_request(data):
            raise NotFoundError(f"{what}: #{number} is a pull request, not an issue", status=404)
        issue = self._issue(data, what=what)
        self._remember(number, response.headers.get("ETag"), issue)
        return issue

    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        with unsent_on_failure(fields) as sent:
            return self._create_issue(fields, marker=marker, sent=sent)

    def _create_issue(
        self, fields: IssueFields, *, marker: str | None, sent: set[str]
    ) -> RemoteIssue:
        if not fields.title:
            raise ValidationFailedError("create issue: a title is required", field="title")
        what = f"create issue in {self.repository}"
        payload: dict[str, Any] = {"title": fields.title}
        if fields.body is not None or marker:
            payload["body"] = body_with_marker(fields.body, marker)
        if fields.labels:
            self._check_labels_exist(fields.labels, what=what)
            payload["labels"] = sorted(fields.labels)
        if fields.assignees:
            payload["assignees"] = sorted(fields.assignees)
        if isinstance(fields.milestone, str):
            payload["milestone"] = self._milestone_number(fields.milestone, what=what)
        # An issue born closed is created open, then closed by a second call.
        sent.update(fields.names() - born_closed(fields))
        try:
            response = self.transport.request(
                "POST", f"{self._repo_path}/issues", what=what, json=payload
            )
        except ValidationFailedError as exc:
            raise _blamed(exc, payload) from exc
        created = self._issue(self._json(response, what=what), what=what)
        self._note_labels(created.labels)
        if fields.state is IssueState.CLOSED:
            # POST has no `state`: an issue born closed takes a second call.
            sent.add("state")
            return self._patch(created.number, {"state": "closed", "state_reason": "completed"})
        return created

    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        """Assignees, then labels, as additions and removals against `current` (a concurrent
        tracker addition survives); the scalars in one PATCH, last. The PATCH and the
        assignee endpoints answer the whole issue; a labels-only change ends on one GET."""
        number = str(number).strip()
        self._issue_path(number)  # a bad number fails before anything is sent
        with unsent_on_failure(fields) as sent:
            return self._update_issue(number, fields, current=current, sent=sent)

    def _update_issue(
        self,
        number: str,
        fields: IssueFields,
        *,
        current: RemoteIssue | None,
        sent: set[str],
    ) -> RemoteIssue:
        if current is None:
            current = self.get_issue(number)
        what = f"update issue #{number} of {self.repository}"
        caps = self.capabilities
        payload: dict[str, Any] = {}
        if fields.title is not None and fields.title != current.title:
            payload["title"] = fields.title
        if fields.body is not None and fields.body != current.body:
            # Keep the create marker: it is how a lost create answer is found again.
            payload["body"] = body_with_marker(fields.body, current.marker)
        if fields.state is not None and fields.state != current.state:
            payload["state"] = fields.state.value
            payload["state_reason"] = (
                "completed" if fields.state is IssueState.CLOSED else "reopened"
            )
        if fields.milestone is not UNSET and fields.milestone != current.milestone:
            payload["milestone"] = (
                None
                if fields.milestone is None
                else self._milestone_number(str(fields.milestone), what=what)
            )
        add_labels: frozenset[str] = frozenset()
        remove_labels: frozenset[str] = frozenset()
        if fields.labels is not None:
            add_labels, remove_labels = set_delta(
                current.labels, fields.labels, fold=caps.label_case_insensitive
            )
            # Adding would create unknown labels on the fly; only allowed when configured.
            self._check_labels_exist(add_labels, what=what)
        result: RemoteIssue | None = current
        if fields.assignees is not None:
            add, remove = set_delta(
                current.assignees, fields.assignees, fold=caps.assignee_case_insensitive
            )
            if add or remove:
                sent.add("assignees")
            if remove:
                result = self._assignees("DELETE", number, remove)
            if add:
                result = self._assignees("POST", number, add)
                refused = add - result.assignees
                if refused:
                    # GitHub silently skips users who cannot be assigned: say so.
                    raise ValidationFailedError(
                        f"{what}: cannot assign {', '.join(sorted(refused))}",
                        status=422,
                        field="assignees",
                    )
        if remove_labels or add_labels:
            sent.add("labels")
            for name in sorted(remove_labels):
                path = f"{self._issue_path(number)}/labels/{quote(name, safe='')}"
                # A 404: removed meanwhile, and the wanted state holds.
                with contextlib.suppress(NotFoundError):
                    self.transport.request("DELETE", path, what=what)
            if add_labels:
                self.transport.request(
                    "POST",
                    f"{self._issue_path(number)}/labels",
                    what=what,
                    json={"labels": sorted(add_labels)},
                )
            self._issue_cache.pop(number, None)
            result = None  # the label answers carry labels only: read the issue at the end
        if payload:
            sent.update(fields.names() - SET_FIELDS)
            return self._patch(number, payload)
        return result if result is not None else self.get_issue(number)

    def _assignees(self, method: str, number: str, logins: frozenset[str]) -> RemoteIssue:
        what = f"{'add' if method == 'POST' else 'remove'} assignees of #{number}"
        try:
            response = self.transport.request(
                method,
                f"{self._issue_path(number)}/assignees",
                what=what,
                json={"assignees": sorted(logins)},
            )
        except ValidationFailedError as exc:
            raise ValidationFailedError(str(exc), status=exc.status, field="assignees") from exc
        self._issue_cache.pop(number, None)
        return self._issue(self._json(response, what=what), what=what)

    def _patch(self, number: str, payload: dict[str, Any]) -> RemoteIssue:
        what = f"update issue #{number} of {self.repository}"
        try:
            response = self.transport.request(
                "PATCH", self._issue_path(number), what=what, json=payload
            )
        except ValidationFailedError as exc:
            raise _blamed(exc, payload) from exc
        self._issue_cache.pop(number, None)
        updated = self._issue(self._json(response, what=what), what=what)
        self._note_labels(updated.labels)
        return updated

    # --- labels and milestones --------------------------------------------------------

    def _note_labels(self, names: frozenset[str]) -> None:
        for name in names:
            self._labels.add(name, name)

    def _check_labels_exist(self, names: frozenset[str], *, what: str) -> None:
        if not names:
            return
        _, missing = self._labels.resolve(names)
        if missing and not self.allow_create_labels:
            listed = ", ".join(repr(n) for n in missing)
            raise ValidationFailedError(
                f"{what}: label {listed} does not exist in {self.repository} "
                "and creating labels is not allowed for this connection",
                field="labels",
            )

    def _milestone_number(self, title: str, *, what: str) -> int:
        found, missing = self._milestones.resolve([title])
        if missing:
            raise ValidationFailedError(
                f"{what}: milestone {title!r} does not exist in {self.repository}",
                field="milestone",
            )
        return int(found[title])

    # --- webhook registration (integrations/providers/hooks.py) ------------------------------

    sets_webhook_secret: ClassVar[bool] = True

    # GitHub's one `issues` event carries every issue change (the guide: Issues).
    hook_events: ClassVar[tuple[str, ...]] = ("issues",)

    def ensure_webhook(self, *, url: str, secret: str) -> HookOutcome:
        """`GET/POST /repos/{o}/{r}/hooks`, `PATCH …/hooks/{id}` (GitHub REST)."""
        config = {"url": url, "content_type": "json", "secret": secret, "insecure_ssl": "0"}
        events = list(self.hook_events)
        return self.ensure_hook_at(
            path=f"{self._repo_path}/hooks",
            what=f"webhooks of {self.repository}",
            url=url,
            events=self.hook_events,
            parse=parse_repo_hook,
            create={"name": "web", "config": config, "events": events, "active": True},
            repair={"config": config, "events": events, "active": True},
        )


# --- webhooks ------------------------------------------------------------------------------

# Every event a GitHub repository/organization/app webhook can deliver. A name outside this
# set is answered 204 without parsing.
KNOWN_EVENTS: frozenset[str] = frozenset(
    {
        "branch_protection_configuration",
        "branch_protection_rule",
        "check_run",
        "check_suite",
        "code_scanning_alert",
        "commit_comment",
        "create",
        "custom_property",
        "custom_property_values",
        "delete",
        "dependabot_alert",
        "deploy_key",
        "deployment",
        "deployment_protection_rule",
        "deployment_review",
        "deployment_status",
        "discussion",
        "discussion_comment",
        "fork",
        "github_app_authorization",
        "gollum",
        "installation",
        "installation_repositories",
        "installation_target",
        "issue_comment",
        "issue_dependencies",
        "issues",
        "label",
        "marketplace_purchase",
        "member",
        "membership",
        "merge_group",
        "meta",
        "milestone",
        "org_block",
        "organization",
        "package",
        "page_build",
        "personal_access_token_request",
        "ping",
        "project",
        "project_card",
        "project_column",
        "projects_v2",
        "projects_v2_item",
        "projects_v2_status_update",
        "public",
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
        "push",
        "registry_package",
        "release",
        "repository",
        "repository_advisory",
        "repository_dispatch",
        "repository_import",
        "repository_ruleset",
        "repository_vulnerability_alert",
        "secret_scanning_alert",
        "secret_scanning_alert_location",
        "secret_scanning_scan",
        "security_advisory",
        "security_and_analysis",
        "sponsorship",
        "star",
        "status",
        "sub_issues",
        "team",
        "team_add",
        "watch",
        "workflow_dispatch",
        "workflow_job",
        "workflow_run",
    }
)

# `issues` actions whose payload carries the issue as it now is.
ISSUE_STATE_ACTIONS: frozenset[str] = frozenset(
    {
        "opened",
        "edited",
        "closed",
        "reopened",
        "labeled",
        "unlabeled",
        "assigned",
        "unassigned",
        "milestoned",
        "demilestoned",
        "pinned",
        "unpinned",
        "locked",
        "unlocked",
        "typed",
        "untyped",
        "field_added",
        "field_removed",
    }
)
# `transferred`: the issue now lives in another repository, so it is gone from this one.
ISSUE_GONE_ACTIONS: frozenset[str] = frozenset({"deleted", "transferred"})
COMMENT_ACTIONS: frozenset[str] = frozenset({"created", "edited", "deleted"})
_PULL_REQUEST_EVENTS = frozenset(
    {
        "pull_request",
        "pull_request_review",
        "pull_request_review_comment",
        "pull_request_review_thread",
    }
)


# The keys an issue object must carry for its state to be taken from the payload.
ISSUE_STATE_KEYS = ("title", "body", "state", "labels", "milestone", "html_url")


class GitHubWebhooks(WebhookVerifier):
    provider: ClassVar[str] = "github"

    def verify(self, *, secret: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        # The legacy SHA-1 `X-Hub-Signature` alone is deliberately not enough.
        return signature_matches(
            secret=secret,
            message=body,
            provided=header(headers, "X-Hub-Signature-256"),
            prefix="sha256=",
        )

    def event_name(self, *, headers: Mapping[str, str], payload: Mapping[str, Any] | None) -> str:
        return (header(headers, "X-GitHub-Event") or "").strip()

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str:
        delivery = (header(headers, "X-GitHub-Delivery") or "").strip()
        return delivery or hashlib.sha256(body).hexdigest()

    def is_known_event(self, event: str) -> bool:
        return event in KNOWN_EVENTS

    def parse(self, *, event: str, payload: Any, base_url: str) -> WebhookEvent:
        try:
            return self._parse(event, payload)
        except ShapeError as exc:
            raise WebhookPayloadError(f"{event or 'webhook'} payload: {exc}") from exc

    def _parse(self, event: str, payload: Any) -> WebhookEvent:
        data = require_mapping(payload, "payload")
        repository = _repository_name(data)
        action_value = data.get("action", "")
        if not isinstance(action_value, str):
            raise ShapeError("payload.action is not a string")
        action = action_value

        def ignored(reason: str) -> WebhookEvent:
            return WebhookEvent(
                kind=EventKind.IGNORED,
                event=event,
                action=action,
                repository=repository,
                reason=reason,
            )

        if event == "ping":
            return ignored("ping: GitHub confirms the webhook is set up")
        if event in _PULL_REQUEST_EVENTS:
            return ignored(f"{event}: pull requests are not issues")
        if event == "issues":
            return self._parse_issue_event(data, action, repository, ignored)
        if event == "issue_comment":
            return self._parse_comment_event(data, action, repository, ignored)
        if event in KNOWN_EVENTS:
            return ignored(f"{event}: not an issue or comment event")
        return ignored(f"unknown GitHub event {event!r}")

    def _parse_issue_event(
        self,
        data: Mapping[str, Any],
        action: str,
        repository: str | None,
        ignored: Callable[[str], WebhookEvent],
    ) -> WebhookEvent:
        if not action:
            raise ShapeError("payload.action is missing")
        issue_data = require_mapping(data.get("issue"), "issue")
        if is_pull_request(issue_data):
            return ignored("issues event about a pull request")
        if action in ISSUE_GONE_ACTIONS:
            return WebhookEvent(
                kind=EventKind.ISSUE_DELETED,
                event="issues",
                action=action,
                repository=repository,
                issue_external_id=str(require_int(issue_data, "id", "issue")),
                issue_number=str(require_int(issue_data, "number", "issue")),
            )
        if action not in ISSUE_STATE_ACTIONS:
            return ignored(f"issues action {action!r} is not one we know")
        if any(key not in issue_data for key in ISSUE_STATE_KEYS) or not (
            "assignees" in issue_data or "assignee" in issue_data
        ):
            # A signed payload that leaves a field out (GitHub's own `pinned` example has
            # no `state`) is not malformed: it names the issue, whose state is re-read.
            return WebhookEvent(
                kind=EventKind.ISSUE,
                event="issues",
                action=action,
                repository=repository,
                issue=None,
                issue_external_id=str(require_int(issue_data, "id", "issue")),
                issue_number=str(require_int(issue_data, "number", "issue")),
            )
        issue = issue_from_json(issue_data)
        return WebhookEvent(
            kind=EventKind.ISSUE,
            event="issues",
            action=action,
            repository=repository,
            issue=issue,
            issue_external_id=issue.external_id,
            issue_number=issue.number,
        )

    def _parse_comment_event(
        self,
        data: Mapping[str, Any],
        action: str,
        repository: str | None,
        ignored: Callable[[str], WebhookEvent],
    ) -> WebhookEvent:
        if not action:
            raise ShapeError("payload.action is missing")
        issue_data = require_mapping(data.get("issue"), "issue")
        comment_data = require_mapping(data.get("comment"), "comment")
        if is_pull_request(issue_data):
            return ignored("comment on a pull request")
        if action not in COMMENT_ACTIONS:
            return ignored(f"issue_comment action {action!r} changes nothing we mirror")
        issue = issue_from_json(issue_data)
        return WebhookEvent(
            kind=EventKind.COMMENT,
            event="issue_comment",
            action=action,
            repository=repository,
            issue=issue,
            comment=comment_from_json(comment_data, issue_number=issue.number),
            issue_external_id=issue.external_id,
            issue_number=issue.number,
        )


def _repository_name(data: Mapping[str, Any]) -> str | None:
    repository = data.get("repository")
    if repository is None:
        return None  # organization- and app-level events name no repository
    return require_str(require_mapping(repository, "repository"), "full_name", "repository")


__all__ = [
    "GitHubClient",
    "GitHubWebhooks",
    "comment_from_json",
    "issue_from_json",
]
