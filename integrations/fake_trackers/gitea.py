"""FakeGitea: a stateful fake of the Gitea 1.20 REST API (the routes issue sync uses).

Shapes follow Gitea 1.20 (`/work/shared/specs/gitea.json` and captured webhook payloads):
PATCH on an issue answers 201, label writes take label ids, listings are paged with `page` /
`limit` (capped at 50) and answer `Link` + `X-Total-Count`. Every change — through the API or
through `edit_issue` — sends the webhook Gitea sends, signed as Gitea signs it; a push made of
a label PUT and an issue PATCH therefore produces two deliveries, like the real server.

Run it alone: `python -m integrations.fake_trackers.gitea --port 8081 --seed 20`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import random
import re
import sys
import threading
from collections.abc import Callable
from datetime import datetime
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
from integrations.fake_trackers.hooks import RepoHooks
from integrations.providers.http import parse_timestamp

GITEA_VERSION = "1.20.0"
_REPO = r"/api/v1/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
_COLOR_RE = re.compile(r"#?[0-9a-fA-F]{6}")

# Fake action → (X-Gitea-Event, X-Gitea-Event-Type) for issues; PRs use pull_request*.
_ISSUE_EVENT_TYPES: dict[str, str] = {
    "opened": "issues",
    "edited": "issues",
    "closed": "issues",
    "reopened": "issues",
    "deleted": "issues",
    "label_updated": "issue_label",
    "label_cleared": "issue_label",
    "assigned": "issue_assign",
    "unassigned": "issue_assign",
    "milestoned": "issue_milestone",
    "demilestoned": "issue_milestone",
}
_PULL_EVENT_TYPES: dict[str, str] = {
    "issues": "pull_request",
    "issue_label": "pull_request_label",
    "issue_assign": "pull_request_assign",
    "issue_milestone": "pull_request_milestone",
}


def go_json(payload: Any) -> bytes:
    """Serialise like Go's json.MarshalIndent: 2-space indent, raw UTF-8, and the HTML-safe
    escapes Go applies (`<`, `>`, `&`, U+2028, U+2029) — so signatures are checked over bytes
    that look like Gitea's."""
    text = json.dumps(payload, indent=2, ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text.encode()


def _stable_id(name: str, base: int) -> int:
    return base + int(hashlib.sha256(name.encode()).hexdigest()[:6], 16)


@dataclasses.dataclass
class FakeComment:
    id: int
    issue_number: int
    body: str
    author: str
    created_at: datetime
    updated_at: datetime


class FakeGitea(FakeTracker, RepoHooks):
    provider = "gitea"
    max_page_size = 50  # Gitea's default [api] MAX_RESPONSE_ITEMS
    default_page_size = 30  # Gitea's default [api] DEFAULT_PAGING_NUM

    def __init__(self, *, api_user: str = "sync-bot", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api_user = api_user
        self.human_user = "alice"
        self.known_users.add(api_user)
        self.repo_id = 4242
        self.token_scopes_ok = True  # False: the token lacks read:repository (403)
        self.has_issues = True
        self.label_ids: dict[str, int] = {}
        self.milestone_ids: dict[str, int] = {}
        self.comments: dict[int, FakeComment] = {}
        self.closed_at: dict[int, datetime] = {}
        self._next_object_id = 1
        self._actor = threading.local()

    # --- identity of objects -------------------------------------------------------------

    @property
    def owner(self) -> str:
        return self.repository.split("/", 1)[0]

    @property
    def name(self) -> str:
        return self.repository.split("/", 1)[1]

    def _object_id(self) -> int:
        with self.lock:
            value = self._next_object_id
            self._next_object_id += 1
            return value

    def label_id(self, name: str) -> int:
        """The id of a label, registering it in the repository when new."""
        with self.lock:
            if name not in self.known_labels:
                self.known_labels.append(name)
            for known in self.known_labels:
                if known not in self.label_ids:
                    self.label_ids[known] = self._object_id()
            return self.label_ids[name]

    def milestone_id(self, title: str) -> int:
        with self.lock:
            if title not in self.known_milestones:
                self.known_milestones.append(title)
            for known in self.known_milestones:
                if known not in self.milestone_ids:
                    self.milestone_ids[known] = self._object_id()
            return self.milestone_ids[title]

    def delete_label(self, name: str) -> None:
        """Remove a label from the repository (and from every issue), as an admin would."""
        with self.lock:
            if name in self.known_labels:
                self.known_labels.remove(name)
            self.label_ids.pop(name, None)
            for issue in self.issues.values():
                if name in issue.labels:
                    issue.labels.remove(name)

    @property
    def sender(self) -> str:
        return getattr(self._actor, "login", None) or self.human_user

    # --- state helpers ---------------------------------------------------------------------

    def seed(self, count: int, *, seed: int = 7) -> list[FakeIssue]:
        """`count` varied issues (labels, assignees, milestones, some closed), reproducibly."""
        rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
        users = sorted(self.known_users - {self.api_user})
        made = []
        for n in range(count):
            made.append(
                self.seed_issue(
                    title=f"Seeded issue {n + 1}",
                    body=f"Body of seeded issue {n + 1}",
                    state="closed" if rng.random() < 0.2 else "open",
                    labels=rng.sample(self.known_labels[:3], rng.randint(0, 2)),
                    assignees=rng.sample(users, rng.randint(0, 2)),
                    milestone=rng.choice([None, *self.known_milestones]),
                )
            )
        return made

    def seed_issue(self, **kwargs: Any) -> FakeIssue:
        issue = super().seed_issue(**kwargs)
        with self.lock:
            if issue.state == "closed":
                self.closed_at[issue.number] = issue.updated_at
        return issue

    def edit_issue(self, number: int, *, notify: bool = True, **changes: Any) -> FakeIssue:
        with self.lock:
            issue = self.issues[number]
            before = issue.copy()
            for key, value in changes.items():
                setattr(issue, key, sorted(set(value)) if key in ("labels", "assignees") else value)
            issue.updated_at = self.now()
            self._track_close(before, issue)
        if notify:
            self.emit_change_events(before, issue)
        return issue

    def add_comment(self, number: int, body: str, *, author: str = "bob") -> FakeComment:
        """A human comments on an issue; Gitea sends `issue_comment` / created."""
        with self.lock:
            issue = self.issues[number]
            stamp = self.now()
            comment = FakeComment(self.next_id, number, body, author, stamp, stamp)
            self.next_id += 1
            self.comments[comment.id] = comment
            issue.updated_at = stamp
        hook = self._comment_webhook(issue, comment, "created")
        self.send_webhook(hook)
        return comment

    def _track_close(self, before: FakeIssue, after: FakeIssue) -> None:
        if before.state != after.state:
            if after.state == "closed":
                self.closed_at[after.number] = after.updated_at
            else:
                self.closed_at.pop(after.number, None)

    # --- JSON rendering ------------------------------------------------------------------

    def render_user(self, login: str) -> dict[str, Any]:
        return {
            "id": _stable_id(login, 1),
            "login": login,
            "login_name": "",
            "full_name": login.title(),
            "email": f"{login}@example.com",
            "avatar_url": f"{self.url}/avatars/{login}",
            "language": "",
            "is_admin": False,
            "last_login": "0001-01-01T00:00:00Z",
            "created": "2023-01-01T00:00:00Z",
            "restricted": False,
            "active": True,
            "prohibit_login": False,
            "location": "",
            "website": "",
            "description": "",
            "visibility": "public",
            "followers_count": 0,
            "following_count": 0,
            "starred_repos_count": 0,
            "username": login,
        }

    def render_label(self, name: str) -> dict[str, Any]:
        label_id = self.label_id(name)
        return {
            "id": label_id,
            "name": name,
            "exclusive": False,
            "color": hashlib.sha256(name.encode()).hexdigest()[:6],
            "description": "",
            "url": f"{self.url}/api/v1/repos/{self.repository}/labels/{label_id}",
        }

    def render_milestone(self, title: str) -> dict[str, Any]:
        with self.lock:
            issues = [i for i in self.issues.values() if i.milestone == title]
        return {
            "id": self.milestone_id(title),
            "title": title,
            "description": "",
            "state": "open",
            "open_issues": sum(1 for i in issues if i.state == "open"),
            "closed_issues": sum(1 for i in issues if i.state == "closed"),
            "created_at": "2023-01-01T00:00:00Z",
            "updated_at": "2023-01-01T00:00:00Z",
            "closed_at": None,
            "due_on": None,
        }

    def render_issue(self, issue: FakeIssue) -> dict[str, Any]:
        kind = "pulls" if issue.is_pull_request else "issues"
        closed = self.closed_at.get(issue.number) if issue.state == "closed" else None
        if issue.state == "closed" and closed is None:
            closed = issue.updated_at
        assignees = [self.render_user(login) for login in issue.assignees]
        return {
            "id": issue.id,
            "url": f"{self.url}/api/v1/repos/{self.repository}/issues/{issue.number}",
            "html_url": f"{self.url}/{self.repository}/{kind}/{issue.number}",
            "number": issue.number,
            "user": self.render_user(issue.author),
            "original_author": "",
            "original_author_id": 0,
            "title": issue.title,
            "body": issue.body,
            "ref": "",
            "assets": [],
            "labels": [self.render_label(name) for name in issue.labels],
            "milestone": self.render_milestone(issue.milestone) if issue.milestone else None,
            # Gitea sends null, not [], when nobody is assigned.
            "assignee": assignees[0] if assignees else None,
            "assignees": assignees or None,
            "state": issue.state,
            "is_locked": False,
            "comments": sum(1 for c in self.comments.values() if c.issue_number == issue.number),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(closed) if closed else None,
            "due_date": None,
            "pull_request": (
                {"merged": False, "merged_at": None} if issue.is_pull_request else None
            ),
            "repository": {
                "id": self.repo_id,
                "name": self.name,
                "owner": self.owner,
                "full_name": self.repository,
            },
        }

    def render_repository(self) -> dict[str, Any]:
        with self.lock:
            issues = list(self.issues.values())
        return {
            "id": self.repo_id,
            "owner": self.render_user(self.owner),
            "name": self.name,
            "full_name": self.repository,
            "description": "A fake Gitea repository",
            "empty": False,
            "private": False,
            "fork": False,
            "template": False,
            "parent": None,
            "mirror": False,
            "size": 42,
            "language": "Python",
            "languages_url": f"{self.url}/api/v1/repos/{self.repository}/languages",
            "html_url": f"{self.url}/{self.repository}",
            "link": "",
            "ssh_url": f"git@127.0.0.1:{self.repository}.git",
            "clone_url": f"{self.url}/{self.repository}.git",
            "original_url": "",
            "website": "",
            "stars_count": 0,
            "forks_count": 0,
            "watchers_count": 1,
            "open_issues_count": sum(
                1 for i in issues if i.state == "open" and not i.is_pull_request
            ),
            "open_pr_counter": sum(1 for i in issues if i.state == "open" and i.is_pull_request),
            "release_counter": 0,
            "default_branch": "main",
            "archived": False,
            "created_at": "2023-01-01T00:00:00Z",
            "updated_at": "2023-01-01T00:00:00Z",
            "permissions": {"admin": False, "push": True, "pull": True},
            "has_issues": self.has_issues,
            "internal_tracker": {
                "enable_time_tracker": True,
                "allow_only_contributors_to_track_time": True,
                "enable_issue_dependencies": True,
            },
            "has_wiki": True,
            "has_pull_requests": True,
            "has_projects": True,
            "has_releases": True,
            "has_packages": False,
            "has_actions": False,
            "ignore_whitespace_conflicts": False,
            "allow_merge_commits": True,
            "allow_rebase": True,
            "allow_rebase_explicit": True,
            "allow_squash_merge": True,
            "allow_rebase_update": True,
            "default_delete_branch_after_merge": False,
            "default_merge_style": "merge",
            "default_allow_maintainer_edit": False,
            "avatar_url": "",
            "internal": False,
            "mirror_interval": "",
            "mirror_updated": "0001-01-01T00:00:00Z",
            "repo_transfer": None,
        }

    # --- webhooks ------------------------------------------------------------------------

    def _signed(self, event: str, event_type: str, payload: dict[str, Any]) -> OutgoingWebhook:
        body = go_json(payload)
        delivery = self.new_delivery_id()
        if self.webhook_secret:
            key = self.webhook_secret.encode()
            sha256 = hmac.new(key, body, hashlib.sha256).hexdigest()
            sha1 = hmac.new(key, body, hashlib.sha1).hexdigest()
        else:
            sha256 = sha1 = ""  # Gitea sends the headers empty when the hook has no secret
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Go-http-client/1.1",
            "X-Gitea-Delivery": delivery,
            "X-Gitea-Event": event,
            "X-Gitea-Event-Type": event_type,
            "X-Gitea-Signature": sha256,
            "X-Gogs-Delivery": delivery,
            "X-Gogs-Event": event,
            "X-Gogs-Event-Type": event_type,
            "X-Gogs-Signature": sha256,
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Event": event,
            "X-GitHub-Event-Type": event_type,
            "X-Hub-Signature": f"sha1={sha1}" if sha1 else "",
            "X-Hub-Signature-256": f"sha256={sha256}" if sha256 else "",
        }
        return OutgoingWebhook(event=event_type, headers=headers, body=body, delivery_id=delivery)

    def build_webhook(self, issue: FakeIssue, action: str, **extra: Any) -> OutgoingWebhook | None:
        event_type = _ISSUE_EVENT_TYPES.get(action)
        if event_type is None:
            return None
        before: FakeIssue | None = extra.get("before")
        with self.lock:
            if issue.is_pull_request:
                return self._pull_webhook(issue, action, _PULL_EVENT_TYPES[event_type])
            payload: dict[str, Any] = {"action": action, "number": issue.number}
            if action == "edited" and before is not None:
                changes: dict[str, Any] = {}
                if before.title != issue.title:
                    changes["title"] = {"from": before.title}
                if before.body != issue.body:
                    changes["body"] = {"from": before.body}
                payload["changes"] = changes
            payload.update(
                issue=self.render_issue(issue),
                repository=self.render_repository(),
                sender=self.render_user(self.sender),
                commit_id="",
            )
        return self._signed("issues", event_type, payload)

    def _pull_webhook(self, issue: FakeIssue, action: str, event_type: str) -> OutgoingWebhook:
        rendered = self.render_issue(issue)
        pull = {
            key: rendered[key]
            for key in (
                "id",
                "url",
                "number",
                "user",
                "title",
                "body",
                "labels",
                "milestone",
                "assignee",
                "assignees",
                "state",
                "is_locked",
                "comments",
                "html_url",
                "created_at",
                "updated_at",
                "closed_at",
                "due_date",
            )
        }
        pull.update(merged=False, merged_at=None, mergeable=True, merge_base="")
        payload = {
            "action": action,
            "number": issue.number,
            "pull_request": pull,
            "repository": self.render_repository(),
            "sender": self.render_user(self.sender),
            "commit_id": "",
        }
        return self._signed("pull_request", event_type, payload)

    def _comment_webhook(
        self, issue: FakeIssue, comment: FakeComment, action: str
    ) -> OutgoingWebhook:
        with self.lock:
            html = f"{self.url}/{self.repository}/issues/{issue.number}"
            payload = {
                "action": action,
                "issue": self.render_issue(issue),
                "comment": {
                    "id": comment.id,
                    "html_url": f"{html}#issuecomment-{comment.id}",
                    "pull_request_url": "",
                    "issue_url": html,
                    "user": self.render_user(comment.author),
                    "original_author": "",
                    "original_author_id": 0,
                    "body": comment.body,
                    "assets": [],
                    "created_at": iso(comment.created_at),
                    "updated_at": iso(comment.updated_at),
                },
                "repository": self.render_repository(),
                "sender": self.render_user(comment.author),
                "is_pull": issue.is_pull_request,
            }
        return self._signed("issue_comment", "issue_comment", payload)

    # --- HTTP ----------------------------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        value = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, credential = value.partition(" ")
        return scheme.lower() in ("token", "bearer") and hmac.compare_digest(
            credential.strip().encode(), self.token.encode()
        )

    def routes(self) -> list[Route]:
        def route(method: str, pattern: str, view: Callable[..., Response]) -> Route:
            return method, re.compile(pattern), view

        return [
            route("GET", r"/api/v1/version", self._version),
            route("GET", _REPO, self._get_repo),
            route("GET", _REPO + r"/issues", self._list_issues),
            route("POST", _REPO + r"/issues", self._create_issue),
            route("GET", _REPO + r"/issues/(?P<index>\d+)", self._get_issue),
            route("PATCH", _REPO + r"/issues/(?P<index>\d+)", self._edit_issue),
            route("GET", _REPO + r"/issues/(?P<index>\d+)/labels", self._get_issue_labels),
            route("PUT", _REPO + r"/issues/(?P<index>\d+)/labels", self._replace_labels),
            route("POST", _REPO + r"/issues/(?P<index>\d+)/labels", self._add_labels),
            route(
                "DELETE",
                _REPO + r"/issues/(?P<index>\d+)/labels/(?P<label_id>\d+)",
                self._remove_label,
            ),
            route("GET", _REPO + r"/labels", self._list_labels),
            route("POST", _REPO + r"/labels", self._create_label),
            route("GET", _REPO + r"/milestones", self._list_milestones),
            route("GET", _REPO + r"/hooks", self._hooks_list),
            route("POST", _REPO + r"/hooks", self._hooks_create),
            route("GET", _REPO + r"/hooks/(?P<hook_id>\d+)", self._hooks_get),
            route("PATCH", _REPO + r"/hooks/(?P<hook_id>\d+)", self._hooks_update),
            route("DELETE", _REPO + r"/hooks/(?P<hook_id>\d+)", self._hooks_delete),
            route("POST", _REPO + r"/milestones", self._create_milestone),
        ]

    # --- repository hooks (integrations/fake_trackers/hooks.py) ------------------------------

    def _hooks_list(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        self._repo_guard(owner, repo)
        return self.list_hooks_view()

    def _hooks_create(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        self._repo_guard(owner, repo)
        return self.create_hook_view(data)

    def _hooks_get(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, hook_id: str
    ) -> Response:
        self._repo_guard(owner, repo)
        return self.get_hook_view(hook_id)

    def _hooks_update(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, hook_id: str
    ) -> Response:
        self._repo_guard(owner, repo)
        return self.update_hook_view(data, hook_id)

    def _hooks_delete(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, hook_id: str
    ) -> Response:
        self._repo_guard(owner, repo)
        return self.delete_hook_view(hook_id)

    def _repo_guard(self, owner: str, repo: str) -> None:
        if f"{owner}/{repo}".lower() != self.repository.lower():
            raise HttpError(HTTPStatus.NOT_FOUND, "The target couldn't be found.")
        if not self.token_scopes_ok:
            raise HttpError(
                HTTPStatus.FORBIDDEN,
                "token does not have at least one of required scope(s): [read:repository]",
            )

    def _issue_or_404(self, index: str) -> FakeIssue:
        issue = self.issues.get(int(index))
        if issue is None:
            raise HttpError(HTTPStatus.NOT_FOUND, "The target couldn't be found.")
        return issue

    def _paged(self, record: RecordedRequest, items: list[Any]) -> Response:
        page_items, page, _, pages = self.paginate(
            record, items, page_param="page", size_param="limit"
        )
        headers = {
            "X-Total-Count": str(len(items)),
            "Access-Control-Expose-Headers": "X-Total-Count, Link",
        }
        link = self.link_header(record, page, pages)
        if link:
            headers["Link"] = link
        return Response(HTTPStatus.OK, page_items, headers)

    @staticmethod
    def _query(record: RecordedRequest, name: str) -> str:
        values = record.query.get(name)
        return values[0] if values else ""

    def _version(self, record: RecordedRequest, data: Any) -> Response:
        return Response(HTTPStatus.OK, {"version": GITEA_VERSION})

    def _get_repo(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        self._repo_guard(owner, repo)
        return Response(HTTPStatus.OK, self.render_repository())

    def _list_issues(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        self._repo_guard(owner, repo)
        state = self._query(record, "state") or "open"
        if state not in ("open", "closed", "all"):
            state = "open"
        kind = self._query(record, "type")
        bounds: dict[str, datetime | None] = {}
        for name in ("since", "before"):
            raw = self._query(record, name)
            bounds[name] = parse_timestamp(raw) if raw else None
            if raw and bounds[name] is None:
                raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, f"invalid {name}: {raw!r}")
        since, before = bounds["since"], bounds["before"]
        with self.lock:
            selected = [
                issue
                for issue in self.issues.values()
                if state in ("all", issue.state)
                and not (kind == "issues" and issue.is_pull_request)
                and not (kind == "pulls" and not issue.is_pull_request)
                and (since is None or issue.updated_at >= since)
                and (before is None or issue.updated_at <= before)
            ]
            # Gitea's default order for this listing: newest created first.
            selected.sort(key=lambda i: (i.created_at, i.id), reverse=True)
            rendered = [self.render_issue(issue) for issue in selected]
        return self._paged(record, rendered)

    def _get_issue(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, index: str
    ) -> Response:
        self._repo_guard(owner, repo)
        with self.lock:
            return Response(HTTPStatus.OK, self.render_issue(self._issue_or_404(index)))

    def _get_issue_labels(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, index: str
    ) -> Response:
        self._repo_guard(owner, repo)
        with self.lock:
            issue = self._issue_or_404(index)
            return Response(HTTPStatus.OK, [self.render_label(n) for n in issue.labels])

    # --- writes ---------------------------------------------------------------------------

    @staticmethod
    def _object(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "[]: the body must be a JSON object")
        return data

    def _valid_assignees(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "assignees must be a list of logins")
        for login in value:
            if login not in self.known_users:
                raise HttpError(
                    HTTPStatus.UNPROCESSABLE_ENTITY, f"user does not exist [uid: 0, name: {login}]"
                )
        return sorted(set(value))

    def _milestone_by_id(self, value: Any) -> str | None:
        if not isinstance(value, int) or isinstance(value, bool):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "milestone must be an integer id")
        if value == 0:
            return None
        for title in self.known_milestones:
            if self.milestone_id(title) == value:
                return title
        raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, f"milestone does not exist [id: {value}]")

    def _labels_by_id(self, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in value
        ):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "labels must be a list of label ids")
        by_id = {self.label_id(name): name for name in list(self.known_labels)}
        # Like Gitea's GetLabelsByIDs: ids that name no label are dropped without an error.
        return sorted({by_id[v] for v in value if v in by_id})

    def _as_api_user(self) -> _ApiActor:
        return _ApiActor(self._actor, self.api_user)

    def _create_issue(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        self._repo_guard(owner, repo)
        form = self._object(data)
        title = form.get("title")
        if not isinstance(title, str) or not title.strip():
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "[Title]: Required")
        body = form.get("body", "")
        if not isinstance(body, str):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "body must be a string")
        with self.lock, self._as_api_user():
            assignees = self._valid_assignees(form.get("assignees") or [])
            milestone = self._milestone_by_id(form.get("milestone") or 0)
            labels = self._labels_by_id(form.get("labels") or [])
            closed = form.get("closed") is True
            issue = self.seed_issue(
                title=title,
                body=body,
                labels=labels,
                assignees=assignees,
                milestone=milestone,
            )
            issue.author = self.api_user
            self.emit_issue_event(issue, "opened")
            if assignees:
                self.emit_issue_event(issue, "assigned")
            if closed:
                before = issue.copy()
                issue.state = "closed"
                issue.updated_at = self.now()
                self._track_close(before, issue)
                self.emit_issue_event(issue, "closed", before=before)
            return Response(HTTPStatus.CREATED, self.render_issue(issue))

    def _edit_issue(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, index: str
    ) -> Response:
        self._repo_guard(owner, repo)
        form = self._object(data)
        with self.lock, self._as_api_user():
            issue = self._issue_or_404(index)
            changes: dict[str, Any] = {}
            title = form.get("title")
            if title is not None and not isinstance(title, str):
                raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "title must be a string")
            if title:  # Gitea ignores an empty title
                changes["title"] = title
            if "body" in form:
                if not isinstance(form["body"], str):
                    raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "body must be a string")
                changes["body"] = form["body"]
            if form.get("assignees") is not None:
                changes["assignees"] = self._valid_assignees(form["assignees"])
            if form.get("milestone") is not None:
                changes["milestone"] = self._milestone_by_id(form["milestone"])
            if form.get("state") is not None:
                if form["state"] not in ("open", "closed"):
                    raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "state must be open or closed")
                changes["state"] = form["state"]
            changes = {k: v for k, v in changes.items() if getattr(issue, k) != v}
            if changes:
                self.edit_issue(issue.number, **changes)
            return Response(HTTPStatus.CREATED, self.render_issue(issue))

    def _replace_labels(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, index: str
    ) -> Response:
        self._repo_guard(owner, repo)
        form = self._object(data)
        with self.lock, self._as_api_user():
            issue = self._issue_or_404(index)
            labels = self._labels_by_id(form.get("labels") or [])
            if labels != issue.labels:
                self.edit_issue(issue.number, labels=labels)
            return Response(HTTPStatus.OK, [self.render_label(n) for n in issue.labels])

    def _add_labels(
        self, record: RecordedRequest, data: Any, owner: str, repo: str, index: str
    ) -> Response:
        """POST …/issues/{index}/labels: adds label ids (unknown ids dropped, like Gitea's
        AddIssueLabels) and answers the issue's labels."""
        self._repo_guard(owner, repo)
        form = self._object(data)
        with self.lock, self._as_api_user():
            issue = self._issue_or_404(index)
            labels = sorted(set(issue.labels) | set(self._labels_by_id(form.get("labels") or [])))
            if labels != issue.labels:
                self.edit_issue(issue.number, labels=labels)
            return Response(HTTPStatus.OK, [self.render_label(n) for n in issue.labels])

    def _remove_label(
        self,
        record: RecordedRequest,
        data: Any,
        *,
        owner: str,
        repo: str,
        index: str,
        label_id: str,
    ) -> Response:
        """DELETE …/issues/{index}/labels/{id}: 204; 422 for an id that names no label."""
        self._repo_guard(owner, repo)
        with self.lock, self._as_api_user():
            issue = self._issue_or_404(index)
            by_id = {self.label_id(name): name for name in list(self.known_labels)}
            name = by_id.get(int(label_id))
            if name is None:
                raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "label does not exist")
            if name in issue.labels:
                self.edit_issue(issue.number, labels=[n for n in issue.labels if n != name])
            return Response(HTTPStatus.NO_CONTENT, None)

    def _list_labels(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        self._repo_guard(owner, repo)
        with self.lock:
            rendered = [self.render_label(name) for name in sorted(self.known_labels)]
        return self._paged(record, rendered)

    def _create_label(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        self._repo_guard(owner, repo)
        form = self._object(data)
        name, color = form.get("name"), form.get("color")
        if not isinstance(name, str) or not name.strip():
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "[Name]: Required")
        if not isinstance(color, str) or not _COLOR_RE.fullmatch(color):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "[Color]: invalid color")
        with self.lock:
            if name in self.known_labels:
                raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, f"label {name!r} already exists")
            rendered = self.render_label(name)
            rendered["color"] = color.lstrip("#").lower()
            if isinstance(form.get("description"), str):
                rendered["description"] = form["description"]
        return Response(HTTPStatus.CREATED, rendered)

    def _list_milestones(
        self, record: RecordedRequest, data: Any, owner: str, repo: str
    ) -> Response:
        self._repo_guard(owner, repo)
        state = self._query(record, "state") or "open"
        title = self._query(record, "name")
        with self.lock:
            # Every fake milestone is open: state=closed lists none.
            titles = [] if state == "closed" else list(self.known_milestones)
            rendered = [self.render_milestone(t) for t in titles if not title or t == title]
        return self._paged(record, rendered)

    def _create_milestone(
        self, record: RecordedRequest, data: Any, owner: str, repo: str
    ) -> Response:
        self._repo_guard(owner, repo)
        form = self._object(data)
        title = form.get("title")
        if not isinstance(title, str) or not title.strip():
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "[Title]: Required")
        with self.lock:
            if title in self.known_milestones:
                raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, f"milestone {title!r} exists")
            return Response(HTTPStatus.CREATED, self.render_milestone(title))


class _ApiActor:
    """Marks the current server thread as acting for the token's user (the webhook `sender`)."""

    def __init__(self, local: threading.local, login: str) -> None:
        self._local = local
        self._login = login

    def __enter__(self) -> None:
        self._local.login = self._login

    def __exit__(self, *exc: object) -> None:
        self._local.login = None


def main(argv: list[str] | None = None) -> int:
    args = cli_parser("Run a fake Gitea 1.20 API on loopback.").parse_args(argv)
    fake = FakeGitea(**tracker_options(args))
    fake.seed(args.seed)

    def describe() -> list[str]:
        url = f"http://{args.host}:{fake.port}"
        return [
            f"Fake Gitea {GITEA_VERSION} serving {args.repository} at {url}",
            f"API root: {url}/api/v1",
            f"token: {fake.token}",
        ]

    return serve_cli(fake, describe, webhook_url=args.webhook_url)


if __name__ == "__main__":
    sys.exit(main())
