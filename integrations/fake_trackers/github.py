"""FakeGitHub: the GitHub REST API of one repository, on loopback, with GitHub's webhooks.

Shapes follow GitHub's published OpenAPI description (the contract test validates them);
behaviour follows the live API where the description is silent: pull requests listed among
issues, labels created on the fly by an issue write, `x-ratelimit-*` on every answer (a 304
costs nothing), a 403 once the budget is spent, and one `issues` webhook per kind of change,
each carrying the full issue as it now is.

Run it alone with `python -m integrations.fake_trackers.github --port 8081 --seed 20`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import math
import re
import secrets
import time
import zlib
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import quote, unquote

from integrations.fake_trackers.base import (
    FakeIssue,
    FakeTracker,
    OutgoingWebhook,
    RecordedRequest,
    Response,
    Route,
    cli_parser,
    iso,
    serve_until_interrupted,
    tracker_options,
)
from integrations.fake_trackers.hooks import RepoHooks
from integrations.providers.http import parse_timestamp
from integrations.providers.shapes import header

SUPPORTED_API_VERSIONS = frozenset({"2022-11-28"})
DOCS = "https://docs.github.com/rest"
_LABEL_COLORS = ("d73a4a", "a2eeef", "0075ca", "7057ff", "008672", "e4e669", "d876e3")
_SEED_LABELS = ("bug", "feature", "docs")
# Every `issues` action GitHub documents (x-webhooks in its OpenAPI description).
ISSUE_ACTIONS = frozenset(
    {
        "opened",
        "edited",
        "deleted",
        "transferred",
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
    }
)


class GitHubApiError(Exception):
    """An error answer with GitHub's body shape (`message`, `documentation_url`, `errors`)."""

    def __init__(
        self, status: int, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def response(self) -> Response:
        body: dict[str, Any] = {"message": self.message, "documentation_url": DOCS}
        if self.errors is not None:
            body["errors"] = self.errors
        else:
            body["status"] = str(self.status)
        return Response(self.status, body)


def _invalid(field: str, value: Any, code: str = "invalid") -> GitHubApiError:
    error: dict[str, Any] = {"resource": "Issue", "field": field, "code": code}
    if value is not None:
        # GitHub echoes the offending value as a string, an integer or a list of strings.
        ok = isinstance(value, str | int) and not isinstance(value, bool)
        error["value"] = value if ok else json.dumps(value)
    return GitHubApiError(HTTPStatus.UNPROCESSABLE_ENTITY, "Validation Failed", [error])


@dataclasses.dataclass
class FakeComment:
    id: int
    issue_number: int
    body: str
    author: str
    created_at: datetime
    updated_at: datetime


def _stable_id(kind: str, name: str) -> int:
    # Ids that do not change between runs, so rendered JSON (and its ETag) is reproducible.
    return 10_000_000 + zlib.crc32(f"{kind}:{name}".encode())


class FakeGitHub(FakeTracker, RepoHooks):
    provider = "github"
    # GitHub's hooks: `{"name": "web", …}`, the secret shown masked.
    hook_kind_key = "name"
    provider_hook_kind = "web"
    masked_secret = "********"
    max_page_size = 100
    default_page_size = 30

    def __init__(
        self,
        *,
        repository: str = "acme/widgets",
        token: str = "test-token",  # noqa: S107 - a loopback fake's credential
        webhook_url: str | None = None,
        webhook_secret: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
        api_prefix: str = "",
        rate_limit: int = 5000,
        api_user: str = "sync-bot",
    ) -> None:
        # Set before the base builds the routes, which use the prefix.
        self.api_prefix = "/" + api_prefix.strip("/") if api_prefix.strip("/") else ""
        self.rate_limit_limit = rate_limit
        self._rate_used = 0
        self._rate_reset = int(time.time()) + 3600
        self.api_user = api_user
        self.web_user = "alice"
        # Tokens that authenticate but may not touch this repository (403, not rate limited).
        self.denied_tokens: set[str] = set()
        self.deleted_numbers: set[int] = set()
        self.closed_milestones: set[str] = set()
        self.comments: dict[int, FakeComment] = {}
        self.next_comment_id = 5_000_000
        self._closed_at: dict[int, datetime] = {}
        self._state_reason: dict[int, str | None] = {}
        super().__init__(
            repository=repository,
            token=token,
            webhook_url=webhook_url,
            webhook_secret=webhook_secret,
            host=host,
            port=port,
        )
        self.owner = repository.split("/", 1)[0]
        self.known_users |= {api_user, self.owner}
        self.repo_id = _stable_id("repo", repository)
        self.hook_id = _stable_id("hook", repository)
        self.created_at = self.now() - timedelta(days=30)

    # --- addresses ----------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """What a connection's base_url is for GitHub: the API root."""
        return f"{self.url}{self.api_prefix}"

    def _repo_api(self) -> str:
        return f"{self.api_url}/repos/{self.repository}"

    def _repo_web(self) -> str:
        return f"{self.url}/{self.repository}"

    # --- rendering ----------------------------------------------------------------------

    def render_user(self, login: str) -> dict[str, Any]:
        api = f"{self.api_url}/users/{quote(login)}"
        return {
            "login": login,
            "id": _stable_id("user", login),
            "node_id": f"U_{_stable_id('user', login)}",
            "avatar_url": f"{self.url}/avatars/{quote(login)}",
            "gravatar_id": "",
            "url": api,
            "html_url": f"{self.url}/{quote(login)}",
            "followers_url": f"{api}/followers",
            "following_url": f"{api}/following{{/other_user}}",
            "gists_url": f"{api}/gists{{/gist_id}}",
            "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
            "subscriptions_url": f"{api}/subscriptions",
            "organizations_url": f"{api}/orgs",
            "repos_url": f"{api}/repos",
            "events_url": f"{api}/events{{/privacy}}",
            "received_events_url": f"{api}/received_events",
            "type": "User",
            "user_view_type": "public",
            "site_admin": False,
        }

    def render_label(self, name: str) -> dict[str, Any]:
        label_id = _stable_id("label", name.casefold())
        return {
            "id": label_id,
            "node_id": f"LA_{label_id}",
            "url": f"{self._repo_api()}/labels/{quote(name, safe='')}",
            "name": name,
            "color": _LABEL_COLORS[label_id % len(_LABEL_COLORS)],
            "default": name in _SEED_LABELS,
            "description": None,
        }

    def milestone_number(self, title: str) -> int:
        return self.known_milestones.index(title) + 1

    def render_milestone(self, title: str) -> dict[str, Any]:
        number = self.milestone_number(title)
        on_it = [i for i in self.issues.values() if i.milestone == title]
        closed = title in self.closed_milestones
        milestone_id = _stable_id("milestone", f"{self.repository}#{number}")
        return {
            "url": f"{self._repo_api()}/milestones/{number}",
            "html_url": f"{self._repo_web()}/milestone/{number}",
            "labels_url": f"{self._repo_api()}/milestones/{number}/labels",
            "id": milestone_id,
            "node_id": f"MI_{milestone_id}",
            "number": number,
            "state": "closed" if closed else "open",
            "title": title,
            "description": None,
            "creator": self.render_user(self.owner),
            "open_issues": sum(1 for i in on_it if i.state == "open"),
            "closed_issues": sum(1 for i in on_it if i.state == "closed"),
            "created_at": iso(self.created_at),
            "updated_at": iso(self.created_at),
            "closed_at": iso(self.created_at) if closed else None,
            "due_on": None,
        }

    def render_issue(self, issue: FakeIssue) -> dict[str, Any]:
        api = f"{self._repo_api()}/issues/{issue.number}"
        kind = "pull" if issue.is_pull_request else "issues"
        closed = issue.state == "closed"
        data: dict[str, Any] = {
            "url": api,
            "repository_url": self._repo_api(),
            "labels_url": f"{api}/labels{{/name}}",
            "comments_url": f"{api}/comments",
            "events_url": f"{api}/events",
            "html_url": f"{self._repo_web()}/{kind}/{issue.number}",
            "id": issue.id,
            "node_id": f"I_{issue.id}",
            "number": issue.number,
            "title": issue.title,
            "user": self.render_user(issue.author),
            "labels": [self.render_label(name) for name in issue.labels],
            "state": issue.state,
            "locked": False,
            "assignee": self.render_user(issue.assignees[0]) if issue.assignees else None,
            "assignees": [self.render_user(login) for login in issue.assignees],
            "milestone": self.render_milestone(issue.milestone) if issue.milestone else None,
            "comments": sum(1 for c in self.comments.values() if c.issue_number == issue.number),
            "created_at": iso(issue.created_at),
            "updated_at": iso(issue.updated_at),
            "closed_at": iso(self._closed_at.get(issue.number, issue.updated_at))
            if closed
            else None,
            "author_association": "OWNER" if issue.author == self.owner else "COLLABORATOR",
            "active_lock_reason": None,
            "body": issue.body or None,
            "reactions": self._reactions(api),
            "timeline_url": f"{api}/timeline",
            "performed_via_github_app": None,
            "state_reason": self._state_reason.get(issue.number, "completed" if closed else None),
            "sub_issues_summary": {"total": 0, "completed": 0, "percent_completed": 0},
            "issue_dependencies_summary": {
                "blocked_by": 0,
                "total_blocked_by": 0,
                "blocking": 0,
                "total_blocking": 0,
            },
        }
        if issue.is_pull_request:
            pulls = f"{self._repo_api()}/pulls/{issue.number}"
            web = f"{self._repo_web()}/pull/{issue.number}"
            data["pull_request"] = {
                "url": pulls,
                "html_url": web,
                "diff_url": f"{web}.diff",
                "patch_url": f"{web}.patch",
                "merged_at": None,
            }
        return data

    def render_comment(self, comment: FakeComment) -> dict[str, Any]:
        api = f"{self._repo_api()}/issues/comments/{comment.id}"
        return {
            "url": api,
            "html_url": f"{self._repo_web()}/issues/{comment.issue_number}"
            f"#issuecomment-{comment.id}",
            "issue_url": f"{self._repo_api()}/issues/{comment.issue_number}",
            "id": comment.id,
            "node_id": f"IC_{comment.id}",
            "user": self.render_user(comment.author),
            "created_at": iso(comment.created_at),
            "updated_at": iso(comment.updated_at),
            "author_association": "OWNER" if comment.author == self.owner else "COLLABORATOR",
            "performed_via_github_app": None,
            "body": comment.body,
            "reactions": self._reactions(api),
        }

    @staticmethod
    def _reactions(url: str) -> dict[str, Any]:
        counts = ("+1", "-1", "laugh", "hooray", "confused", "heart", "rocket", "eyes")
        return {"url": f"{url}/reactions", "total_count": 0, **dict.fromkeys(counts, 0)}

    def render_repository(self) -> dict[str, Any]:
        api = self._repo_api()
        web = self._repo_web()
        owner, name = self.repository.split("/", 1)
        stamp = iso(self.created_at)
        open_count = sum(1 for i in self.issues.values() if i.state == "open")
        templates = {
            "archive_url": "/{archive_format}{/ref}",
            "assignees_url": "/assignees{/user}",
            "blobs_url": "/git/blobs{/sha}",
            "branches_url": "/branches{/branch}",
            "collaborators_url": "/collaborators{/collaborator}",
            "comments_url": "/comments{/number}",
            "commits_url": "/commits{/sha}",
            "compare_url": "/compare/{base}...{head}",
            "contents_url": "/contents/{+path}",
            "contributors_url": "/contributors",
            "deployments_url": "/deployments",
            "downloads_url": "/downloads",
            "events_url": "/events",
            "forks_url": "/forks",
            "git_commits_url": "/git/commits{/sha}",
            "git_refs_url": "/git/refs{/sha}",
            "git_tags_url": "/git/tags{/sha}",
            "hooks_url": "/hooks",
            "issue_comment_url": "/issues/comments{/number}",
            "issue_events_url": "/issues/events{/number}",
            "issues_url": "/issues{/number}",
            "keys_url": "/keys{/key_id}",
            "labels_url": "/labels{/name}",
            "languages_url": "/languages",
            "merges_url": "/merges",
            "milestones_url": "/milestones{/number}",
            "notifications_url": "/notifications{?since,all,participating}",
            "pulls_url": "/pulls{/number}",
            "releases_url": "/releases{/id}",
            "stargazers_url": "/stargazers",
            "statuses_url": "/statuses/{sha}",
            "subscribers_url": "/subscribers",
            "subscription_url": "/subscription",
            "tags_url": "/tags",
            "teams_url": "/teams",
            "trees_url": "/git/trees{/sha}",
        }
        host = self.url.split("://", 1)[1]
        return {
            "id": self.repo_id,
            "node_id": f"R_{self.repo_id}",
            "name": name,
            "full_name": self.repository,
            "owner": self.render_user(owner),
            "private": False,
            "html_url": web,
            "description": "A repository served by FakeGitHub",
            "fork": False,
            "url": api,
            **{key: api + suffix for key, suffix in templates.items()},
            "git_url": f"git://{host}/{self.repository}.git",
            "ssh_url": f"git@{host}:{self.repository}.git",
            "clone_url": f"{web}.git",
            "svn_url": web,
            "mirror_url": None,
            "homepage": None,
            "language": None,
            "forks_count": 0,
            "forks": 0,
            "stargazers_count": 0,
            "watchers_count": 0,
            "watchers": 0,
            "subscribers_count": 1,
            "network_count": 0,
            "size": 0,
            "default_branch": "main",
            "open_issues_count": open_count,
            "open_issues": open_count,
            "is_template": False,
            "topics": [],
            "has_issues": True,
            "has_projects": True,
            "has_wiki": True,
            "has_pages": False,
            "has_downloads": True,
            "has_discussions": False,
            "archived": False,
            "disabled": False,
            "visibility": "public",
            "license": None,
            "pushed_at": stamp,
            "created_at": stamp,
            "updated_at": stamp,
            "permissions": {
                "admin": False,
                "maintain": False,
                "push": True,
                "triage": True,
                "pull": True,
            },
            "allow_forking": True,
            "web_commit_signoff_required": False,
        }

    # --- state changes ------------------------------------------------------------------

    def _canonical_label(self, name: str) -> str:
        """GitHub matches label names case-insensitively and creates unknown ones on write."""
        for known in self.known_labels:
            if known.casefold() == name.casefold():
                return known
        self.known_labels.append(name)
        return name

    def _note_state_change(self, issue: FakeIssue, before_state: str, reason: str | None) -> None:
        if issue.state == before_state:
            return
        if issue.state == "closed":
            self._closed_at[issue.number] = issue.updated_at
            self._state_reason[issue.number] = reason or "completed"
        else:
            self._closed_at.pop(issue.number, None)
            self._state_reason[issue.number] = "reopened"

    def edit_issue(self, number: int, *, notify: bool = True, **changes: Any) -> FakeIssue:
        """As the base does, plus what GitHub does on the side: labels and milestones named
        in the change come into existence, and closing records when and why."""
        with self.lock:
            issue = self.issues[number]
            before = issue.copy()
            for key, raw in changes.items():
                value = raw
                if key == "labels":
                    value = sorted({self._canonical_label(name) for name in raw})
                elif key == "assignees":
                    value = sorted(set(raw))
                elif key == "milestone" and raw and raw not in self.known_milestones:
                    self.known_milestones.append(raw)
                setattr(issue, key, value)
            issue.updated_at = self.now()
            self._note_state_change(issue, before.state, None)
        if notify:
            self.emit_change_events(before, issue)
        return issue

    def delete_issue(self, number: int, *, notify: bool = True) -> None:
        with self.lock:
            self.deleted_numbers.add(number)
        super().delete_issue(number, notify=notify)

    def add_comment(
        self, number: int, body: str, *, author: str = "alice", notify: bool = True
    ) -> FakeComment:
        with self.lock:
            stamp = self.now()
            comment = FakeComment(
                id=self.next_comment_id,
                issue_number=number,
                body=body,
                author=author,
                created_at=stamp,
                updated_at=stamp,
            )
            self.next_comment_id += 1
            self.comments[comment.id] = comment
            issue = self.issues[number]
            issue.updated_at = stamp
            hook = self._comment_webhook(issue, comment, "created", sender=author)
        if notify:
            self.send_webhook(hook)
        return comment

    def seed_issues(self, count: int) -> list[FakeIssue]:
        """Deterministic variety for demos: labels, assignees, milestones, some closed."""
        users = sorted(self.known_users - {self.api_user})
        made = []
        for n in range(count):
            made.append(
                self.seed_issue(
                    title=f"Seeded issue {n + 1}",
                    body=f"Body of seeded issue {n + 1}.",
                    state="closed" if n % 5 == 4 else "open",
                    labels=[_SEED_LABELS[n % len(_SEED_LABELS)]] if n % 2 == 0 else [],
                    assignees=[users[n % len(users)]] if n % 3 == 0 else [],
                    milestone=self.known_milestones[n % len(self.known_milestones)]
                    if n % 4 == 0
                    else None,
                )
            )
        return made

    def exhaust_rate_limit(self, *, reset_in: int = 60) -> None:
        """Spend the whole budget: every call answers 403 until `reset_in` seconds pass."""
        with self.lock:
            self._rate_used = self.rate_limit_limit
            # Rounded up: the budget stays spent for at least `reset_in` whole seconds.
            self._rate_reset = math.ceil(time.time()) + reset_in

    # --- webhooks -----------------------------------------------------------------------

    def emit_change_events(
        self, before: FakeIssue, after: FakeIssue, *, sender: str | None = None
    ) -> None:
        """GitHub sends one `issues` delivery per kind of change, per label and per user."""
        who = sender or self.web_user
        with self.lock:
            hooks: list[OutgoingWebhook] = []
            changes: dict[str, Any] = {}
            if before.title != after.title:
                changes["title"] = {"from": before.title}
            if before.body != after.body:
                changes["body"] = {"from": before.body}
            if changes:
                hooks.append(self._issue_webhook(after, "edited", who, changes=changes))
            if before.state != after.state:
                action = "closed" if after.state == "closed" else "reopened"
                hooks.append(self._issue_webhook(after, action, who))
            for name in sorted(set(after.labels) - set(before.labels)):
                hooks.append(self._issue_webhook(after, "labeled", who, label=name))
            for name in sorted(set(before.labels) - set(after.labels)):
                hooks.append(self._issue_webhook(after, "unlabeled", who, label=name))
            for login in sorted(set(after.assignees) - set(before.assignees)):
                hooks.append(self._issue_webhook(after, "assigned", who, assignee=login))
            for login in sorted(set(before.assignees) - set(after.assignees)):
                hooks.append(self._issue_webhook(after, "unassigned", who, assignee=login))
            if before.milestone != after.milestone:
                if after.milestone:
                    hooks.append(
                        self._issue_webhook(after, "milestoned", who, milestone=after.milestone)
                    )
                elif before.milestone:
                    hooks.append(
                        self._issue_webhook(after, "demilestoned", who, milestone=before.milestone)
                    )
        for hook in hooks:
            self.send_webhook(hook)

    def build_webhook(self, issue: FakeIssue, action: str, **extra: Any) -> OutgoingWebhook | None:
        if action not in ISSUE_ACTIONS:
            # The base's coarse actions (label_updated…) are split up in emit_change_events.
            raise ValueError(f"GitHub sends no issues action {action!r}")
        sender = extra.pop("sender", None) or self.web_user
        extra.pop("before", None)
        with self.lock:
            return self._issue_webhook(issue, action, sender, **extra)

    def _issue_webhook(
        self,
        issue: FakeIssue,
        action: str,
        sender: str,
        *,
        changes: dict[str, Any] | None = None,
        label: str | None = None,
        assignee: str | None = None,
        milestone: str | None = None,
    ) -> OutgoingWebhook:
        payload: dict[str, Any] = {"action": action, "issue": self.render_issue(issue)}
        if changes is not None:
            payload["changes"] = changes
        if label is not None:
            payload["label"] = self.render_label(label)
        if assignee is not None:
            payload["assignee"] = self.render_user(assignee)
        if milestone is not None:
            payload["milestone"] = self.render_milestone(milestone)
        payload["repository"] = self.render_repository()
        payload["sender"] = self.render_user(sender)
        return self._signed("issues", payload)

    def _comment_webhook(
        self, issue: FakeIssue, comment: FakeComment, action: str, *, sender: str
    ) -> OutgoingWebhook:
        payload = {
            "action": action,
            "issue": self.render_issue(issue),
            "comment": self.render_comment(comment),
            "repository": self.render_repository(),
            "sender": self.render_user(sender),
        }
        return self._signed("issue_comment", payload)

    def _signed(self, event: str, payload: dict[str, Any]) -> OutgoingWebhook:
        # GitHub sends compact UTF-8 JSON; the signature covers exactly these bytes.
        body = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
        delivery = self.new_delivery_id()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "GitHub-Hookshot/fake",
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery,
            "X-GitHub-Hook-ID": str(self.hook_id),
            "X-GitHub-Hook-Installation-Target-Type": "repository",
            "X-GitHub-Hook-Installation-Target-ID": str(self.repo_id),
        }
        if self.webhook_secret:
            key = self.webhook_secret.encode()
            headers["X-Hub-Signature"] = "sha1=" + hmac.new(key, body, hashlib.sha1).hexdigest()
            headers["X-Hub-Signature-256"] = (
                "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
            )
        return OutgoingWebhook(event=event, headers=headers, body=body, delivery_id=delivery)

    # --- HTTP ---------------------------------------------------------------------------

    def authorized(self, headers: dict[str, str]) -> bool:
        value = header(headers, "Authorization") or ""
        scheme, _, credential = value.partition(" ")
        if scheme.lower() not in ("bearer", "token"):
            return False
        return credential == self.token or credential in self.denied_tokens

    def rate_limit_headers(self) -> dict[str, str]:
        with self.lock:
            return {
                "x-ratelimit-limit": str(self.rate_limit_limit),
                "x-ratelimit-remaining": str(max(0, self.rate_limit_limit - self._rate_used)),
                "x-ratelimit-used": str(self._rate_used),
                "x-ratelimit-reset": str(self._rate_reset),
                "x-ratelimit-resource": "core",
            }

    def _respond(self, record: RecordedRequest) -> Response:
        with self.lock:
            if time.time() >= self._rate_reset:
                self._rate_used = 0
                self._rate_reset = int(time.time()) + 3600
            exhausted = self._rate_used >= self.rate_limit_limit
        response = self._gate(record, exhausted) or super()._respond(record)
        with self.lock:
            # Conditional requests answered 304 are free on GitHub; everything else costs one.
            if response.status != HTTPStatus.NOT_MODIFIED and not exhausted:
                self._rate_used += 1
        response.headers = {
            **response.headers,
            **self.rate_limit_headers(),
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Media-Type": "github.v3; format=json",
            "X-GitHub-Request-Id": secrets.token_hex(8).upper(),
        }
        return response

    def _gate(self, record: RecordedRequest, exhausted: bool) -> Response | None:
        """Answers GitHub gives before looking at the route."""
        if exhausted:
            return Response(
                HTTPStatus.FORBIDDEN,
                {
                    "message": "API rate limit exceeded for user ID 1.",
                    "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api",
                },
            )
        version = header(record.headers, "X-GitHub-Api-Version")
        if version is not None and version not in SUPPORTED_API_VERSIONS:
            return GitHubApiError(
                HTTPStatus.BAD_REQUEST, f"API version {version} is not supported."
            ).response()
        value = header(record.headers, "Authorization") or ""
        if value.partition(" ")[2] in self.denied_tokens:
            return GitHubApiError(
                HTTPStatus.FORBIDDEN, "Resource not accessible by personal access token"
            ).response()
        return None

    def routes(self) -> list[Route]:
        repo = self.api_prefix + r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)"
        table = [
            ("GET", "", self._get_repository),
            ("GET", "/issues", self._list_issues),
            ("POST", "/issues", self._create_issue),
            ("GET", r"/issues/(?P<number>\d+)", self._get_issue),
            ("PATCH", r"/issues/(?P<number>\d+)", self._update_issue),
            ("POST", r"/issues/(?P<number>\d+)/labels", self._add_labels),
            ("DELETE", r"/issues/(?P<number>\d+)/labels/(?P<name>[^/]+)", self._remove_label),
            ("POST", r"/issues/(?P<number>\d+)/assignees", self._add_assignees),
            ("DELETE", r"/issues/(?P<number>\d+)/assignees", self._remove_assignees),
            ("GET", "/labels", self._list_labels),
            ("POST", "/labels", self._create_label),
            ("GET", "/milestones", self._list_milestones),
            ("POST", "/milestones", self._create_milestone),
            ("GET", "/hooks", lambda record, data: self.list_hooks_view()),
            ("POST", "/hooks", lambda record, data: self.create_hook_view(data)),
            ("GET", r"/hooks/(?P<hook_id>\d+)", lambda r, d, hook_id: self.get_hook_view(hook_id)),
            (
                "PATCH",
                r"/hooks/(?P<hook_id>\d+)",
                lambda r, data, hook_id: self.update_hook_view(data, hook_id),
            ),
            (
                "DELETE",
                r"/hooks/(?P<hook_id>\d+)",
                lambda r, d, hook_id: self.delete_hook_view(hook_id),
            ),
        ]
        return [(method, re.compile(repo + suffix), self._view(fn)) for method, suffix, fn in table]

    def _view(self, fn: Any) -> Any:
        def view(record: RecordedRequest, data: Any, owner: str, repo: str, **kw: str) -> Response:
            if f"{owner}/{repo}".casefold() != self.repository.casefold():
                return GitHubApiError(HTTPStatus.NOT_FOUND, "Not Found").response()
            try:
                with self.lock:
                    response: Response = fn(record, data, **kw)
                    return response
            except GitHubApiError as exc:
                return exc.response()

        return view

    def _paged(self, record: RecordedRequest, items: list[Any]) -> Response:
        page_items, page, _size, pages = self.paginate(
            record, items, page_param="page", size_param="per_page"
        )
        headers = {}
        if pages > 1:
            headers["Link"] = self.link_header(record, page, pages)
        return Response(HTTPStatus.OK, page_items, headers)

    def _get_repository(self, record: RecordedRequest, data: Any) -> Response:
        return Response(HTTPStatus.OK, self.render_repository())

    def _list_issues(self, record: RecordedRequest, data: Any) -> Response:
        def arg(name: str, default: str | None = None) -> str | None:
            return record.query.get(name, [default])[0]

        state = arg("state", "open")
        sort = arg("sort", "created")
        direction = arg("direction", "desc")
        if state not in ("open", "closed", "all"):
            raise _invalid("state", state)
        if sort not in ("created", "updated", "comments"):
            raise _invalid("sort", sort)
        if direction not in ("asc", "desc"):
            raise _invalid("direction", direction)
        items = [i for i in self.issue_list() if state in ("all", i.state)]
        since_raw = arg("since")
        if since_raw:
            since = parse_timestamp(since_raw)
            if since is None:
                raise _invalid("since", since_raw)
            items = [i for i in items if i.updated_at >= since]
        labels_raw = arg("labels")
        if labels_raw:
            wanted = {n.strip().casefold() for n in labels_raw.split(",") if n.strip()}
            items = [i for i in items if wanted <= {n.casefold() for n in i.labels}]
        milestone = arg("milestone")
        if milestone == "none":
            items = [i for i in items if i.milestone is None]
        elif milestone == "*":
            items = [i for i in items if i.milestone is not None]
        elif milestone:
            items = [
                i
                for i in items
                if i.milestone is not None and str(self.milestone_number(i.milestone)) == milestone
            ]
        assignee = arg("assignee")
        if assignee == "none":
            items = [i for i in items if not i.assignees]
        elif assignee == "*":
            items = [i for i in items if i.assignees]
        elif assignee:
            items = [i for i in items if assignee in i.assignees]

        def key(issue: FakeIssue) -> tuple[Any, int]:
            if sort == "updated":
                return (issue.updated_at, issue.number)
            if sort == "comments":
                count = sum(1 for c in self.comments.values() if c.issue_number == issue.number)
                return (count, issue.number)
            return (issue.created_at, issue.number)

        items.sort(key=key, reverse=direction == "desc")
        response = self._paged(record, items)
        response.body = [self.render_issue(i) for i in response.body]
        return response

    def _find_issue(self, number: str) -> FakeIssue:
        issue = self.issues.get(int(number))
        if issue is None:
            if int(number) in self.deleted_numbers:
                raise GitHubApiError(HTTPStatus.GONE, "This issue was deleted")
            raise GitHubApiError(HTTPStatus.NOT_FOUND, "Not Found")
        return issue

    def _get_issue(self, record: RecordedRequest, data: Any, number: str) -> Response:
        return Response(HTTPStatus.OK, self.render_issue(self._find_issue(number)))

    def _resolve_milestone(self, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value) if isinstance(value, int | str) and not isinstance(value, bool) else ""
        if not text.isdigit() or not 1 <= int(text) <= len(self.known_milestones):
            raise _invalid("milestone", value)
        return self.known_milestones[int(text) - 1]

    def _resolve_labels(self, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise _invalid("labels", value)
        names = []
        for item in value:
            name = item.get("name") if isinstance(item, dict) else item
            if not isinstance(name, str) or not name.strip():
                raise _invalid("labels", item)
            names.append(self._canonical_label(name.strip()))
        return sorted(set(names))

    def _resolve_assignees(self, value: Any) -> list[str]:
        if not isinstance(value, list):
            raise _invalid("assignees", value)
        logins = []
        for item in value:
            login = item.get("login") if isinstance(item, dict) else item
            if not isinstance(login, str) or login not in self.known_users:
                raise _invalid("assignees", login)
            logins.append(login)
        return sorted(set(logins))

    @staticmethod
    def _title(value: Any) -> str:
        # The API takes a title as a string or an integer, never empty.
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        if not isinstance(value, str) or not value.strip():
            raise _invalid("title", value, code="missing_field")
        return value

    @staticmethod
    def _body(value: Any) -> str:
        if value is None:
            return ""
        if not isinstance(value, str):
            raise _invalid("body", value)
        return value

    def _create_issue(self, record: RecordedRequest, data: Any) -> Response:
        if not isinstance(data, dict):
            raise GitHubApiError(HTTPStatus.BAD_REQUEST, "Problems parsing JSON")
        title = self._title(data.get("title"))
        assignees = self._resolve_assignees(data.get("assignees") or [])
        if not assignees and isinstance(data.get("assignee"), str):
            assignees = self._resolve_assignees([data["assignee"]])
        milestone = self._resolve_milestone(data.get("milestone"))
        labels = self._resolve_labels(data.get("labels") or [])
        stamp = self.now()
        issue = FakeIssue(
            id=self.next_id,
            number=self.next_number,
            title=title,
            body=self._body(data.get("body")),
            state="open",
            labels=labels,
            assignees=assignees,
            milestone=milestone,
            created_at=stamp,
            updated_at=stamp,
            author=self.api_user,
        )
        self.next_id += 1
        self.next_number += 1
        self.issues[issue.number] = issue
        self.send_webhook(self._issue_webhook(issue, "opened", self.api_user))
        location = f"{self._repo_api()}/issues/{issue.number}"
        return Response(HTTPStatus.CREATED, self.render_issue(issue), {"Location": location})

    def _update_issue(self, record: RecordedRequest, data: Any, number: str) -> Response:
        issue = self._find_issue(number)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise GitHubApiError(HTTPStatus.BAD_REQUEST, "Problems parsing JSON")
        changes: dict[str, Any] = {}
        if data.get("title") is not None:
            changes["title"] = self._title(data["title"])
        if "body" in data:
            changes["body"] = self._body(data["body"])
        if "state" in data:
            if data["state"] not in ("open", "closed"):
                raise _invalid("state", data["state"])
            changes["state"] = data["state"]
        if "labels" in data:
            changes["labels"] = self._resolve_labels(data["labels"])
        if "assignees" in data:
            changes["assignees"] = self._resolve_assignees(data["assignees"])
        elif "assignee" in data:
            single = data["assignee"]
            changes["assignees"] = [] if single is None else self._resolve_assignees([single])
        if "milestone" in data:
            changes["milestone"] = self._resolve_milestone(data["milestone"])
        reason = data.get("state_reason")
        if reason not in (None, "completed", "not_planned", "duplicate", "reopened"):
            raise _invalid("state_reason", reason)
        changed = {k: v for k, v in changes.items() if getattr(issue, k) != v}
        if changed:
            before = issue.copy()
            for key, value in changed.items():
                setattr(issue, key, value)
            issue.updated_at = self.now()
            self._note_state_change(issue, before.state, reason)
            self.emit_change_events(before, issue, sender=self.api_user)
        return Response(HTTPStatus.OK, self.render_issue(issue))

    def _apply(self, issue: FakeIssue, changed: dict[str, Any]) -> None:
        changed = {k: v for k, v in changed.items() if getattr(issue, k) != v}
        if changed:
            before = issue.copy()
            for key, value in changed.items():
                setattr(issue, key, value)
            issue.updated_at = self.now()
            self.emit_change_events(before, issue, sender=self.api_user)

    def _add_labels(self, record: RecordedRequest, data: Any, number: str) -> Response:
        """POST …/issues/{n}/labels: adds (creating unknown labels), answers the issue's labels."""
        issue = self._find_issue(number)
        raw = data.get("labels") if isinstance(data, dict) else data
        added = self._resolve_labels(raw)
        self._apply(issue, {"labels": sorted(set(issue.labels) | set(added))})
        return Response(HTTPStatus.OK, [self.render_label(n) for n in issue.labels])

    def _remove_label(self, record: RecordedRequest, data: Any, number: str, name: str) -> Response:
        """DELETE …/labels/{name}: case-insensitive; 404 when the issue does not carry it."""
        issue = self._find_issue(number)
        wanted = unquote(name).casefold()
        kept = [n for n in issue.labels if n.casefold() != wanted]
        if len(kept) == len(issue.labels):
            raise GitHubApiError(HTTPStatus.NOT_FOUND, "Label does not exist")
        self._apply(issue, {"labels": kept})
        return Response(HTTPStatus.OK, [self.render_label(n) for n in issue.labels])

    def _assignee_list(self, data: Any) -> list[str]:
        raw = data.get("assignees") if isinstance(data, dict) else None
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise _invalid("assignees", raw)
        return raw

    def _add_assignees(self, record: RecordedRequest, data: Any, number: str) -> Response:
        """Like GitHub: users who cannot be assigned are silently ignored; answers the issue."""
        issue = self._find_issue(number)
        logins = [login for login in self._assignee_list(data) if login in self.known_users]
        self._apply(issue, {"assignees": sorted(set(issue.assignees) | set(logins))})
        return Response(HTTPStatus.CREATED, self.render_issue(issue))

    def _remove_assignees(self, record: RecordedRequest, data: Any, number: str) -> Response:
        issue = self._find_issue(number)
        gone = set(self._assignee_list(data))
        self._apply(issue, {"assignees": [a for a in issue.assignees if a not in gone]})
        return Response(HTTPStatus.OK, self.render_issue(issue))

    def _list_labels(self, record: RecordedRequest, data: Any) -> Response:
        response = self._paged(record, list(self.known_labels))
        response.body = [self.render_label(name) for name in response.body]
        return response

    def _create_label(self, record: RecordedRequest, data: Any) -> Response:
        name = data.get("name") if isinstance(data, dict) else None
        if not isinstance(name, str) or not name.strip():
            raise _invalid("name", name, code="missing_field")
        if any(known.casefold() == name.casefold() for known in self.known_labels):
            raise _invalid("name", name, code="already_exists")
        self.known_labels.append(name)
        return Response(HTTPStatus.CREATED, self.render_label(name))

    def _list_milestones(self, record: RecordedRequest, data: Any) -> Response:
        state = record.query.get("state", ["open"])[0]
        if state not in ("open", "closed", "all"):
            raise _invalid("state", state)
        titles = [
            t
            for t in self.known_milestones
            if state == "all" or (t in self.closed_milestones) == (state == "closed")
        ]
        response = self._paged(record, titles)
        response.body = [self.render_milestone(title) for title in response.body]
        return response

    def _create_milestone(self, record: RecordedRequest, data: Any) -> Response:
        title = data.get("title") if isinstance(data, dict) else None
        if not isinstance(title, str) or not title.strip():
            raise _invalid("title", title, code="missing_field")
        if title in self.known_milestones:
            raise _invalid("title", title, code="already_exists")
        state = data.get("state", "open") if isinstance(data, dict) else "open"
        if state not in ("open", "closed"):
            raise _invalid("state", state)
        self.known_milestones.append(title)
        if state == "closed":
            self.closed_milestones.add(title)
        return Response(HTTPStatus.CREATED, self.render_milestone(title))


def main(argv: list[str] | None = None) -> None:
    parser = cli_parser(
        "A fake GitHub REST API on loopback.", secret_help="webhook secret (unsigned if empty)"
    )
    args = parser.parse_args(argv)
    fake = FakeGitHub(**tracker_options(args))
    fake.seed_issues(args.seed)
    fake.start()
    print(f"FakeGitHub serving {args.repository} at {fake.api_url}", flush=True)
    print(f"token: {fake.token}", flush=True)
    if args.webhook_url:
        print(f"webhooks: {args.webhook_url}", flush=True)
    serve_until_interrupted(fake)


if __name__ == "__main__":
    main()
