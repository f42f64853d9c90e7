"""Gitea (1.20 API): the issue client and the webhook verifier/parser.

`base_url` is the web root (`https://git.example.com` or `https://host/gitea`); the API lives
under `/api/v1`. Gitea has no separate assignees endpoint: assignees, milestone, title, body
and state go through `PATCH …/issues/{index}`, labels through `PUT …/issues/{index}/labels`
with label *ids*, so names are resolved through per-client caches of the label and milestone
listings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

import requests

from integrations.providers.base import (
    UNSET,
    Capabilities,
    EventKind,
    IssueFields,
    IssueState,
    MalformedAnswerError,
    NotFoundError,
    PermanentError,
    ProviderError,
    RemoteComment,
    RemoteIssue,
    ValidationFailedError,
    WebhookEvent,
    WebhookPayloadError,
    WebhookVerifier,
    body_with_marker,
    set_delta,
    unsent_on_failure,
)
from integrations.providers.core import NameCache, Paging, RestClient, listing_key, positive_number
from integrations.providers.hooks import HookOutcome, parse_repo_hook
from integrations.providers.http import (
    format_timestamp,
    parse_timestamp,
)
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

API_PREFIX = "/api/v1"
# Colour given to labels this client creates (Gitea requires one).
NEW_LABEL_COLOR = "#c5def5"

# --- JSON → canonical values ------------------------------------------------------------


def _login(user: Any, where: str) -> str | None:
    """A user object's login (`username` is the deprecated duplicate); None for null."""
    if user is None:
        return None
    if not isinstance(user, Mapping):
        raise ShapeError(f"{where} must be a user object, got {type(user).__name__}")
    for key in ("login", "username"):
        value = user.get(key)
        if isinstance(value, str) and value:
            return value
    raise ShapeError(f"{where} has no login")


def _label_names(value: Any, where: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if not isinstance(value, list):
        raise ShapeError(f"{where} must be a list, got {type(value).__name__}")
    names: set[str] = set()
    for position, label in enumerate(value):
        if not isinstance(label, Mapping):
            raise ShapeError(f"{where}[{position}] must be a label object")
        name = label.get("name")
        if not isinstance(name, str):
            raise ShapeError(f"{where}[{position}].name must be a string")
        if name:
            names.add(name)
    return frozenset(names)


def _assignee_logins(issue: Mapping[str, Any], where: str) -> frozenset[str]:
    assignees = issue.get("assignees")
    if assignees is not None:
        if not isinstance(assignees, list):
            raise ShapeError(f"{where}.assignees must be a list")
        logins = set()
        for position, user in enumerate(assignees):
            login = _login(user, f"{where}.assignees[{position}]")
            if login is None:
                raise ShapeError(f"{where}.assignees[{position}] is null")
            logins.add(login)
        return frozenset(logins)
    # Old Gitea versions (and `assignees: null`) only carry the single legacy assignee.
    single = _login(issue.get("assignee"), f"{where}.assignee")
    return frozenset({single}) if single else frozenset()


def _milestone_title(value: Any, where: str) -> str | None:
    if value is None:
        return None
    milestone = require_mapping(value, f"{where}.milestone")
    return require_str(milestone, "title", f"{where}.milestone") or None


def _state(value: Any, where: str) -> IssueState:
    if value == "open":
        return IssueState.OPEN
    if value == "closed":
        return IssueState.CLOSED
    raise ShapeError(f"{where}.state must be 'open' or 'closed', got {value!r}")


def split_repository(repository: str) -> tuple[str, str]:
    """`owner/name` → (owner, name); ValueError for anything else."""
    parts = repository.strip().strip("/").split("/")
    if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts):
        raise ValueError(f"repository {repository!r} is not of the form owner/name")
    return parts[0], parts[1]


def issue_web_url(base_url: str, repository: str, number: int | str) -> str:
    """The browser URL of an issue: `{web root}/{owner}/{repo}/issues/{number}`."""
    owner, name = split_repository(repository)
    root = base_url.strip().rstrip("/")
    return f"{root}/{quote(owner, safe='')}/{quote(name, safe='')}/issues/{number}"


def _consistent_html_url(html_url: Any, repository: str, number: int) -> bool:
    """Gitea's own `html_url` names the public ROOT_URL (which may differ from the address
    we reach the API on), so it is preferred — but only when it points at this very issue."""
    if not isinstance(html_url, str) or not html_url:
        return False
    parts = urlsplit(html_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    expected = f"/{repository.strip('/')}/issues/{number}".lower()
    return parts.path.rstrip("/").lower().endswith(expected)


def is_pull_request(issue: Mapping[str, Any]) -> bool:
    return issue.get("pull_request") is not None


def parse_issue(data: Any, *, base_url: str, repository: str, where: str = "issue") -> RemoteIssue:
    """Gitea issue JSON (API answer or webhook `issue`) → RemoteIssue; ShapeError if malformed."""
    data = require_mapping(data, where)
    issue_id = require_int(data, "id", where)
    number = require_int(data, "number", where)
    if number <= 0:
        raise ShapeError(f"{where}.number must be positive")
    html_url = data.get("html_url")
    if _consistent_html_url(html_url, repository, number):
        remote_url = str(html_url)
    else:
        try:
            remote_url = issue_web_url(base_url, repository, number)
        except ValueError as exc:
            raise ShapeError(str(exc)) from exc
    return RemoteIssue(
        external_id=str(issue_id),
        number=str(number),
        title=require_str(data, "title", where),
        body=optional_str(data, "body", where) or "",
        state=_state(data.get("state"), where),
        tracker_status=str(data.get("state")),
        labels=_label_names(data.get("labels"), f"{where}.labels"),
        assignees=_assignee_logins(data, where),
        milestone=_milestone_title(data.get("milestone"), where),
        remote_url=remote_url,
        created_at=parse_timestamp(data.get("created_at")),
        updated_at=parse_timestamp(data.get("updated_at")),
    )


def parse_comment(data: Any, *, issue_number: str, where: str = "comment") -> RemoteComment:
    data = require_mapping(data, where)
    # Real Gitea sends `user`; some hand-written payloads use `poster`.
    author = _login(data.get("user"), f"{where}.user") or _login(
        data.get("poster"), f"{where}.poster"
    )
    return RemoteComment(
        external_id=str(require_int(data, "id", where)),
        issue_number=issue_number,
        body=optional_str(data, "body", where) or "",
        author=author or "",
        created_at=parse_timestamp(data.get("created_at")),
        updated_at=parse_timestamp(data.get("updated_at")),
    )


# --- the API client -------------------------------------------------------------------------


def _web_root(base_url: str) -> str:
    root = base_url.strip().rstrip("/")
    # People paste the API root; everything here (remote_url included) needs the web root.
    if root.endswith(API_PREFIX):
        root = root[: -len(API_PREFIX)]
    return root


class GiteaClient(RestClient):
    """One Gitea repository, over one HTTP session with `Authorization: token …`."""

    provider: ClassVar[str] = "gitea"
    capabilities: ClassVar[Capabilities] = Capabilities(
        webhooks=True,
        deletion_in_webhooks=True,
        max_assignees=None,
        max_labels=None,
        milestones=True,
        labels_predefined=True,
        conditional_writes=False,
        set_delta_writes=True,  # POST/DELETE …/issues/{index}/labels; assignees by PATCH list
        label_case_insensitive=False,
        assignee_case_insensitive=False,
        webhook_registration=True,
        body_crlf_to_lf=False,
    )
    # Gitea's default `[api] MAX_RESPONSE_ITEMS`.
    max_page_size: ClassVar[int] = 50

    paging = Paging.PAGE_NUMBER
    size_param = "limit"
    total_header = "X-Total-Count"

    def _setup(self) -> None:
        self.base_url = _web_root(self.base_url)
        self.repository = self.repository.strip().strip("/")
        try:
            owner, name = split_repository(self.repository)
        except ValueError as exc:
            raise ValidationFailedError(str(exc)) from exc
        self._repo_path = f"repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self._labels: NameCache[int] = self.name_cache(
            f"{self._repo_path}/labels",
            {},
            what=self._what("list labels"),
            name_key="name",
            value_key="id",
        )
        self._milestones: NameCache[int] = self.name_cache(
            f"{self._repo_path}/milestones",
            {"state": "all"},
            what=self._what("list milestones"),
            name_key="title",
            value_key="id",
        )

    def api_root(self) -> str:
        return self.base_url + API_PREFIX

    tracker_name = "Gitea"

    def access_path(self) -> str:
        return self._repo_path

    def is_repository(self, data: Any) -> bool:
        return isinstance(data, Mapping) and isinstance(data.get("full_name"), str)

    def auth_headers(self, token: str) -> dict[str, str]:
        return {"Authorization": f"token {token}", "Accept": "application/json"}

    # --- helpers -----------------------------------------------------------------------

    def _what(self, action: str) -> str:
        return f"Gitea {self.base_url}: {action} in {self.repository}"

    def _json(self, response: requests.Response, what: str) -> Any:
        return self.transport.json(response, what=what)

    def _issue(self, data: Any, what: str) -> RemoteIssue:
        return self.parse_answer(
            lambda d: parse_issue(d, base_url=self.base_url, repository=self.repository),
            data,
            what=what,
        )

    @staticmethod
    def _index(number: str | int) -> str:
        return str(positive_number(number, what="a Gitea issue number"))

    # --- listing ---------------------------------------------------------------------------

    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        # Gitea 1.20 has no sort parameter here (newest created first): list_issues sorts.
        params: dict[str, Any] = {"state": "all", "type": "issues"}
        if since is not None:
            params["since"] = format_timestamp(since)
        return f"{self._repo_path}/issues", params, self._what("list issues")

    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        issues = []
        for item in items:
            # `type=issues` already excludes them; this also holds against older servers.
            if isinstance(item, Mapping) and is_pull_request(item):
                continue
            issues.append(self._issue(item, what))
        return sorted(issues, key=listing_key)

    # --- single issues ---------------------------------------------------------------------

    def _fetch(self, index: str) -> RemoteIssue:
        what = self._what(f"get issue #{index}")
        response = self.transport.request("GET", f"{self._repo_path}/issues/{index}", what=what)
        data = self._json(response, what)
        if isinstance(data, Mapping) and is_pull_request(data):
            raise NotFoundError(f"{what}: #{index} is a pull request, not an issue", status=404)
        return self._issue(data, what)

    def get_issue(self, number: str) -> RemoteIssue:
        return self._fetch(self._index(number))

    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        if not fields.title:
            raise ValidationFailedError(
                "Gitea needs a non-empty title to create an issue", field="title"
            )
        what = self._what("create issue")
        body: dict[str, Any] = {"title": fields.title}
        try:
            if fields.body is not None or marker:
                body["body"] = body_with_marker(fields.body, marker)
            if fields.labels:
                body["labels"] = self._resolve_labels(fields.labels)
            if fields.assignees:
                body["assignees"] = sorted(fields.assignees)
            if isinstance(fields.milestone, str):
                body["milestone"] = self._resolve_milestone(fields.milestone)
            if fields.state == IssueState.CLOSED:
                body["closed"] = True
            response = self.transport.request(
                "POST", f"{self._repo_path}/issues", what=what, json=body
            )
            created = self._issue(self._json(response, what), what)
            if fields.labels is not None and created.labels != fields.labels:
                # Gitea silently drops label ids it does not know (a label deleted since we
                # cached the ids): re-list and set them explicitly.
                self._labels.forget()
                labels = self._replace_labels(created.number, fields.labels)
                created = dataclasses.replace(created, labels=labels)
        except ProviderError:
            self._forget_lookups()
            raise
        return created

    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        """Write what differs from `current`: labels as additions and removals (so a label
        the tracker gained meanwhile survives), everything else in one PATCH, last.

        PATCH answers with the whole issue (labels included), so ending on it returns the
        tracker's complete state after our last call without another read. A labels-only
        change ends on the label answer (the issue's label list) when it added labels, else
        on one GET.
        """
        index = self._index(number)
        if fields.title is not None and not fields.title:
            raise ValidationFailedError("Gitea cannot set an empty title", field="title")
        with unsent_on_failure(fields) as sent:
            return self._update_issue(index, fields, current=current, sent=sent)

    def _update_issue(
        self,
        index: str,
        fields: IssueFields,
        *,
        current: RemoteIssue | None,
        sent: set[str],
    ) -> RemoteIssue:
        if current is None:
            current = self._fetch(index)
        try:
            patch = self._patch_body(current, fields)
            result: RemoteIssue | None = current
            if fields.labels is not None:
                add, remove = set_delta(current.labels, fields.labels)
                if add or remove:
                    sent.add("labels")
                    result = self._change_labels(index, current, add, remove)
            if patch:
                sent.update(fields.names() - {"labels"})
                what = self._what(f"update issue #{index}")
                response = self.transport.request(
                    "PATCH", f"{self._repo_path}/issues/{index}", what=what, json=patch
                )
                result = self._issue(self._json(response, what), what)
        except ValidationFailedError as exc:
            self._forget_lookups()
            if exc.field is None and "user does not exist" in str(exc):
                raise ValidationFailedError(str(exc), status=exc.status, field="assignees") from exc
            raise
        except ProviderError:
            self._forget_lookups()
            raise
        return result if result is not None else self._fetch(index)

    def _change_labels(
        self, index: str, current: RemoteIssue, add: frozenset[str], remove: frozenset[str]
    ) -> RemoteIssue | None:
        """DELETE each removed label, then POST the added ones; None when the answer does not
        carry the issue's labels (removals only: DELETE answers 204)."""
        what = self._what(f"change labels of #{index}")
        for name in sorted(remove):
            label_id = self._labels.resolve([name])[0].get(name)
            if label_id is None:
                continue  # a label that no longer exists is on no issue
            self.transport.request(
                "DELETE", f"{self._repo_path}/issues/{index}/labels/{label_id}", what=what
            )
        if not add:
            return None
        got = self._send_labels("POST", index, self._resolve_labels(add))
        if not add <= got:
            # Stale cached ids are dropped by Gitea without an error; re-list once.
            self._labels.forget()
            got = self._send_labels("POST", index, self._resolve_labels(add))
            if not add <= got:
                raise ValidationFailedError(
                    f"{what}: Gitea did not add {sorted(add - got)}", field="labels"
                )
        return dataclasses.replace(current, labels=got)

    def _patch_body(self, current: RemoteIssue, fields: IssueFields) -> dict[str, Any]:
        patch: dict[str, Any] = {}
        if fields.title is not None and fields.title != current.title:
            patch["title"] = fields.title
        if fields.body is not None and fields.body != current.body:
            # Keep the create marker: it is how a lost create answer is found again.
            patch["body"] = body_with_marker(fields.body, current.marker)
        if fields.state is not None and fields.state != current.state:
            patch["state"] = str(fields.state)
        if fields.assignees is not None and fields.assignees != current.assignees:
            patch["assignees"] = sorted(fields.assignees)
        if fields.milestone is not UNSET and fields.milestone != current.milestone:
            if isinstance(fields.milestone, str):
                patch["milestone"] = self._resolve_milestone(fields.milestone)
            else:
                patch["milestone"] = 0  # Gitea's way of clearing the milestone
        return patch

    def _replace_labels(self, index: str, names: frozenset[str]) -> frozenset[str]:
        got = self._send_labels("PUT", index, self._resolve_labels(names))
        if got != names:
            # Stale cached ids are dropped by Gitea without an error; re-list once.
            self._labels.forget()
            got = self._send_labels("PUT", index, self._resolve_labels(names))
            if got != names:
                raise PermanentError(
                    self._what(f"set labels of #{index}")
                    + f": Gitea kept {sorted(got)} instead of {sorted(names)}"
                )
        return got

    def _send_labels(self, method: str, index: str, ids: list[int]) -> frozenset[str]:
        """POST (add) or PUT (replace) label ids; Gitea answers the issue's labels."""
        what = self._what(f"{'add' if method == 'POST' else 'set'} labels of #{index}")
        response = self.transport.request(
            method, f"{self._repo_path}/issues/{index}/labels", what=what, json={"labels": ids}
        )
        return self.parse_answer(
            lambda data: _label_names(data, "labels"), self._json(response, what), what=what
        )

    # --- label and milestone lookups -------------------------------------------------------

    def _forget_lookups(self) -> None:
        self._labels.forget()
        self._milestones.forget()

    def _resolve_labels(self, names: frozenset[str]) -> list[int]:
        found, missing = self._labels.resolve(names)
        if missing and not self.allow_create_labels:
            raise ValidationFailedError(
                self._what("resolve labels")
                + f": label {', '.join(repr(m) for m in missing)} does not exist"
                + " (creating labels is not allowed for this connection)",
                field="labels",
            )
        for name in missing:
            found[name] = self._create_label(name)
            self._labels.add(name, found[name])
        return sorted(found.values())

    def _create_label(self, name: str) -> int:
        what = self._what(f"create label {name!r}")
        response = self.transport.request(
            "POST",
            f"{self._repo_path}/labels",
            what=what,
            json={
                "name": name,
                "color": NEW_LABEL_COLOR,
                "description": "created by Syndarix Sync",
            },
        )
        data = self._json(response, what)
        if not isinstance(data, Mapping) or not is_int(data.get("id")):
            raise MalformedAnswerError(f"{what}: unexpected answer: no label id")
        return int(data["id"])

    def _resolve_milestone(self, title: str) -> int:
        found, missing = self._milestones.resolve([title])
        if missing:
            raise ValidationFailedError(
                self._what("resolve milestone") + f": milestone {title!r} does not exist",
                field="milestone",
            )
        return int(found[title])

    # --- webhook registration (integrations/providers/hooks.py) ------------------------------

    sets_webhook_secret: ClassVar[bool] = True

    # What the admin's guide asks for: issue changes, assignees, labels, milestones.
    hook_events: ClassVar[tuple[str, ...]] = (
        "issues",
        "issue_assign",
        "issue_label",
        "issue_milestone",
    )

    def ensure_webhook(self, *, url: str, secret: str) -> HookOutcome:
        """`GET/POST /repos/{o}/{r}/hooks`, `PATCH …/hooks/{id}` (Gitea 1.20)."""
        config = {"url": url, "content_type": "json", "secret": secret}
        events = list(self.hook_events)
        return self.ensure_hook_at(
            path=f"{self._repo_path}/hooks",
            what=self._what("webhooks"),
            url=url,
            events=self.hook_events,
            parse=parse_repo_hook,
            create={"type": "gitea", "config": config, "events": events, "active": True},
            repair={"config": config, "events": events, "active": True},
        )


# --- webhooks --------------------------------------------------------------------------------

SIGNATURE_HEADER = "X-Gitea-Signature"
ISSUE_EVENTS = frozenset({"issues", "issue_assign", "issue_label", "issue_milestone"})
ISSUE_ACTIONS = frozenset(
    {
        "opened",
        "edited",
        "closed",
        "reopened",
        "label_updated",
        "label_cleared",
        "assigned",
        "unassigned",
        "milestoned",
        "demilestoned",
    }
)
COMMENT_ACTIONS = frozenset({"created", "edited", "deleted"})
# Every value Gitea puts in X-Gitea-Event / X-Gitea-Event-Type (HookEventType and its
# Event() names), plus `ping`, which test deliveries of GitHub-compatible senders use.
KNOWN_EVENTS = frozenset(
    {
        "ping",
        "create",
        "delete",
        "fork",
        "push",
        "issues",
        "issue_assign",
        "issue_label",
        "issue_milestone",
        "issue_comment",
        "pull_request",
        "pull_request_assign",
        "pull_request_label",
        "pull_request_milestone",
        "pull_request_comment",
        "pull_request_review_approved",
        "pull_request_review_rejected",
        "pull_request_review_comment",
        "pull_request_approved",
        "pull_request_rejected",
        "pull_request_sync",
        "pull_request_review_request",
        "wiki",
        "repository",
        "release",
        "package",
        "status",
        "schedule",
        "workflow_dispatch",
        "workflow_run",
        "workflow_job",
    }
)
_DELIVERY_RE = re.compile(r"[A-Za-z0-9._-]{1,128}")


class GiteaWebhooks(WebhookVerifier):
    provider: ClassVar[str] = "gitea"

    def verify(self, *, secret: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        return signature_matches(
            secret=secret, message=body, provided=header(headers, SIGNATURE_HEADER)
        )

    def event_name(self, *, headers: Mapping[str, str], payload: Mapping[str, Any] | None) -> str:
        for name in ("X-Gitea-Event-Type", "X-Gitea-Event", "X-Gogs-Event"):
            value = header(headers, name)
            if value and value.strip():
                return value.strip().lower()
        return ""

    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str:
        value = (header(headers, "X-Gitea-Delivery") or "").strip()
        # A delivery id ends up in a unique database column: refuse anything odd-looking.
        if _DELIVERY_RE.fullmatch(value):
            return value
        return hashlib.sha256(body).hexdigest()

    def is_known_event(self, event: str) -> bool:
        return event.strip().lower() in KNOWN_EVENTS

    def parse(self, *, event: str, payload: Any, base_url: str) -> WebhookEvent:
        event = event.strip().lower() if isinstance(event, str) else ""
        if not isinstance(payload, Mapping):
            raise WebhookPayloadError(
                f"a Gitea payload is a JSON object, not {type(payload).__name__}"
            )
        try:
            return self._parse(event, payload, _web_root(base_url))
        except ShapeError as exc:
            raise WebhookPayloadError(f"Gitea {event or 'webhook'} payload: {exc}") from exc

    @staticmethod
    def _repository(payload: Mapping[str, Any]) -> str | None:
        repo = payload.get("repository")
        if repo is None:
            return None
        return optional_str(require_mapping(repo, "repository"), "full_name", "repository") or None

    def _parse(self, event: str, payload: Mapping[str, Any], base_url: str) -> WebhookEvent:
        repository = self._repository(payload)
        raw_action = payload.get("action")
        if raw_action is not None and not isinstance(raw_action, str):
            raise ShapeError("action must be a string")
        action = raw_action or ""

        def ignored(reason: str) -> WebhookEvent:
            return WebhookEvent(
                kind=EventKind.IGNORED,
                event=event,
                action=action,
                repository=repository,
                reason=reason,
            )

        if event in ("ping", "test"):
            return ignored("ping: the webhook was set up or tested")
        if event.startswith("pull_request"):
            return ignored("pull request event: pull requests are not mirrored")
        if event in ISSUE_EVENTS:
            return self._issue_event(
                event, action, payload, repository=repository, base_url=base_url, ignored=ignored
            )
        if event == "issue_comment":
            return self._comment_event(
                event, action, payload, repository=repository, base_url=base_url, ignored=ignored
            )
        if event in KNOWN_EVENTS:
            return ignored(f"event {event!r} does not concern issues")
        return ignored(f"unknown Gitea event {event!r}")

    @staticmethod
    def _issue_object(payload: Mapping[str, Any]) -> Mapping[str, Any]:
        issue = payload.get("issue")
        if not isinstance(issue, Mapping):
            raise ShapeError("the payload has no issue object")
        return issue

    @staticmethod
    def _issue_repository(issue: Mapping[str, Any], repository: str | None) -> str:
        if repository:
            return repository
        meta = issue.get("repository")
        if isinstance(meta, Mapping) and isinstance(meta.get("full_name"), str):
            return str(meta["full_name"])
        raise ShapeError("the payload names no repository")

    def _issue_event(
        self,
        event: str,
        action: str,
        payload: Mapping[str, Any],
        *,
        repository: str | None,
        base_url: str,
        ignored: Callable[[str], WebhookEvent],
    ) -> WebhookEvent:
        if not action:
            raise ShapeError("an issue event needs an action")
        issue = self._issue_object(payload)
        if is_pull_request(issue):
            return ignored("the issue is a pull request")
        if action == "deleted":
            return WebhookEvent(
                kind=EventKind.ISSUE_DELETED,
                event=event,
                action=action,
                repository=repository,
                issue_external_id=str(require_int(issue, "id", "issue")),
                issue_number=str(require_int(issue, "number", "issue")),
            )
        if action not in ISSUE_ACTIONS:
            return ignored(f"issue action {action!r} changes nothing we mirror")
        parsed = parse_issue(
            issue, base_url=base_url, repository=self._issue_repository(issue, repository)
        )
        return WebhookEvent(
            kind=EventKind.ISSUE,
            event=event,
            action=action,
            repository=repository,
            issue=parsed,
            issue_external_id=parsed.external_id,
            issue_number=parsed.number,
        )

    def _comment_event(
        self,
        event: str,
        action: str,
        payload: Mapping[str, Any],
        *,
        repository: str | None,
        base_url: str,
        ignored: Callable[[str], WebhookEvent],
    ) -> WebhookEvent:
        if not action:
            raise ShapeError("a comment event needs an action")
        issue = self._issue_object(payload)
        is_pull = payload.get("is_pull")
        if is_pull is not None and not isinstance(is_pull, bool):
            raise ShapeError("is_pull must be a boolean")
        if is_pull or is_pull_request(issue):
            return ignored("comment on a pull request")
        if action not in COMMENT_ACTIONS:
            return ignored(f"comment action {action!r} is not handled")
        parsed = parse_issue(
            issue, base_url=base_url, repository=self._issue_repository(issue, repository)
        )
        comment = parse_comment(payload.get("comment"), issue_number=parsed.number)
        return WebhookEvent(
            kind=EventKind.COMMENT,
            event=event,
            action=action,
            repository=repository,
            issue=parsed,
            comment=comment,
            issue_external_id=parsed.external_id,
            issue_number=parsed.number,
        )
