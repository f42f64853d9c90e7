"""The provider contract: typed values and the client interface every tracker implements.

Provider code parses tracker JSON into these small frozen dataclasses at the edge, so the
sync engine never sees a raw payload. Nothing here imports Django: providers are plain
Python, testable against a fake tracker on loopback without a database.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar


class IssueState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


# The mirror's column for an issue's URL (issues.models.Issue.remote_url).
MAX_URL_LENGTH = 1000


def _storable_url(url: str) -> bool:
    """No NUL (PostgreSQL text cannot hold it) and no lone surrogate (no UTF-8 for it)."""
    if "\x00" in url:
        return False
    try:
        url.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteIssue:
    """The full state of one issue as the tracker sees it (the canonical shape, SPEC §4)."""

    external_id: str  # the tracker's stable id (Gitea/GitHub `id`, GitLab `id`)
    number: str  # what humans and the API path use (Gitea/GitHub `number`, GitLab `iid`)
    title: str
    body: str
    state: IssueState
    labels: frozenset[str]
    assignees: frozenset[str]
    milestone: str | None
    remote_url: str
    created_at: datetime | None
    updated_at: datetime | None

    def __post_init__(self) -> None:
        # Why: the engine stores remote_url as given, and a URL no column can hold (too long,
        # or with a NUL or lone surrogate from a forged payload's JSON escapes) made storing
        # the issue fail on every retry. No tracker sends such a URL: it is dropped, not cut.
        url = self.remote_url
        if isinstance(url, str) and url and (len(url) > MAX_URL_LENGTH or not _storable_url(url)):
            object.__setattr__(self, "remote_url", "")


@dataclasses.dataclass(frozen=True, slots=True)
class RemoteComment:
    external_id: str
    issue_number: str
    body: str
    author: str
    created_at: datetime | None
    updated_at: datetime | None


class _Unset:
    _instance: ClassVar[_Unset | None] = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET = _Unset()


@dataclasses.dataclass(frozen=True, slots=True)
class IssueFields:
    """Fields to write to the tracker. `None` means "leave this field alone".

    Sets are the complete desired value (never a delta): a push always sends the full
    label/assignee list, which is what keeps repeated pushes idempotent.
    """

    title: str | None = None
    body: str | None = None
    state: IssueState | None = None
    labels: frozenset[str] | None = None
    assignees: frozenset[str] | None = None
    # Milestone needs three values: leave alone (UNSET), clear (None), set (a name).
    milestone: str | _Unset | None = dataclasses.field(default_factory=lambda: UNSET)

    def is_empty(self) -> bool:
        return all(
            getattr(self, f.name) is None for f in dataclasses.fields(self) if f.name != "milestone"
        ) and isinstance(self.milestone, _Unset)


class EventKind(enum.StrEnum):
    ISSUE = "issue"  # carries the full issue state
    ISSUE_DELETED = "issue_deleted"
    COMMENT = "comment"
    IGNORED = "ignored"  # ping, branch pushes, PR events, work items that are not issues…


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookEvent:
    """One parsed delivery. `issue` holds the full state found in the payload (never a delta)."""

    kind: EventKind
    event: str  # the provider's event name, e.g. "issues", "Issue Hook"
    action: str  # "opened", "edited", "labeled", "close", … ("" when the provider has none)
    repository: str | None  # owner/name, or GitLab path_with_namespace — finds the connection
    issue: RemoteIssue | None = None
    comment: RemoteComment | None = None
    # For deletions and for events that only name an issue.
    issue_external_id: str | None = None
    issue_number: str | None = None
    reason: str = ""  # why an IGNORED event is ignored


class WebhookPayloadError(ValueError):
    """The body is not a payload this provider would send (garbage JSON, wrong shape)."""


# --- errors -------------------------------------------------------------------------------


class ProviderError(Exception):
    """Base for everything a tracker call can fail with. `permanent` says whether to retry."""

    permanent: bool = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TransientError(ProviderError):
    """Network trouble, timeouts, 5xx: worth retrying later."""

    permanent = False


class PermanentError(ProviderError):
    """401, 403, 404, 410, 422 and friends: retrying only burns the budget."""

    permanent = True


class AuthenticationError(PermanentError):
    """401: the token is missing, wrong or expired."""


class AccessDeniedError(PermanentError):
    """403 (not rate limited): the token is valid but may not do this."""


class NotFoundError(PermanentError):
    """404/410: the repository or issue does not exist (or is invisible to this token)."""


class ValidationFailedError(PermanentError):
    """422/400: the tracker refused the request body."""


class RateLimitedError(TransientError):
    """429, or 403 with an exhausted rate limit. `retry_after` seconds says when to retry."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


# --- listing --------------------------------------------------------------------------------


@dataclasses.dataclass(slots=True)
class IssuePage:
    issues: list[RemoteIssue]
    # ETag of the first page, to store for the next conditional request.
    etag: str | None = None


@dataclasses.dataclass(slots=True)
class ListResult:
    """Outcome of `list_issues`: `not_modified` means a 304 — nothing changed, nothing to read."""

    issues: list[RemoteIssue]
    not_modified: bool = False
    etag: str | None = None
    requests: int = 0


# --- the client interface -------------------------------------------------------------------


class ProviderClient(abc.ABC):
    """One tracker repository/project, reached with one token over one `requests.Session`."""

    provider: ClassVar[str]
    # The largest page size the provider allows: a full pass is one request per page of this.
    max_page_size: ClassVar[int]
    # How many issues the last listing announced (Gitea `X-Total-Count`, GitLab `X-Total`),
    # for a run's progress; None when the tracker does not say.
    listing_total: int | None = None

    def __init__(
        self,
        *,
        base_url: str,
        repository: str,
        token: str,
        timeout: float = 10.0,
        allow_create_labels: bool = False,
        max_retries: int = 3,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.repository = repository
        self.token = token
        self.timeout = timeout
        self.allow_create_labels = allow_create_labels
        self.max_retries = max_retries

    @abc.abstractmethod
    def iter_issue_pages(self, *, since: datetime | None = None) -> Iterator[list[RemoteIssue]]:
        """Yield issues (never pull requests) updated at or after `since`, oldest first, a page
        at a time at `max_page_size`, one request per page."""

    @abc.abstractmethod
    def list_issues(self, *, since: datetime | None = None, etag: str | None = None) -> ListResult:
        """All issues updated since `since`; with `etag`, a 304 answers `not_modified=True`."""

    @abc.abstractmethod
    def get_issue(self, number: str) -> RemoteIssue:
        """One issue by number; raises NotFoundError when it is gone."""

    @abc.abstractmethod
    def create_issue(self, fields: IssueFields) -> RemoteIssue:
        """Create an issue (title required) and return the tracker's state after the create."""

    @abc.abstractmethod
    def update_issue(self, number: str, fields: IssueFields) -> RemoteIssue:
        """Apply the non-None fields and return the tracker's state after the last call."""

    @abc.abstractmethod
    def check_access(self) -> None:
        """Read the repository; raise a ProviderError that says precisely what is wrong."""

    @property
    @abc.abstractmethod
    def requests_made(self) -> int:
        """HTTP requests this client has sent (what sync runs and benchmarks report)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the HTTP session."""


class WebhookVerifier(abc.ABC):
    """Webhook authenticity and parsing for one provider. Stateless; one instance per provider."""

    provider: ClassVar[str]

    @abc.abstractmethod
    def verify(self, *, secret: str, body: bytes, headers: Mapping[str, str], url: str) -> bool:
        """Constant-time check of the signature over the raw bytes (before any parsing)."""

    @abc.abstractmethod
    def event_name(self, *, headers: Mapping[str, str], payload: Mapping[str, Any] | None) -> str:
        """The event type, from headers (Gitea/GitHub/GitLab) or body (Jira, Trello, OP)."""

    @abc.abstractmethod
    def delivery_id(self, *, headers: Mapping[str, str], body: bytes) -> str:
        """A stable id for dedupe: the delivery header, else a hash of the body."""

    @abc.abstractmethod
    def is_known_event(self, event: str) -> bool:
        """Whether the event is one this provider sends at all (unknown → 204 without parsing)."""

    @abc.abstractmethod
    def parse(self, *, event: str, payload: Any, base_url: str) -> WebhookEvent:
        """Turn a decoded payload into a WebhookEvent; WebhookPayloadError for a bad shape."""
