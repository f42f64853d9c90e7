"""The provider contract: typed values and the client interface every tracker implements.

Provider code parses tracker JSON into these small frozen dataclasses at the edge, so the
sync engine never sees a raw payload. Nothing here imports Django: providers are plain
Python, testable against a fake tracker on loopback without a database.
"""

from __future__ import annotations

import abc
import contextlib
import dataclasses
import enum
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol

from integrations.providers.prefetch import prefetched

# The canonical issue's fields (SPEC §4), defined once: the merge, the mirror and the API use
# these; the sets among them are merged element by element.
FIELDS: tuple[str, ...] = ("title", "body", "state", "labels", "assignees", "milestone")
SET_FIELDS: frozenset[str] = frozenset({"labels", "assignees"})


class IssueState(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"


# The merge's policies (SPEC §5), defined here once so that the pure merge (issues.merge) and
# the models' choices (integrations.models, Django) share one set of values.
class ConflictPolicy(enum.StrEnum):
    MANUAL = "manual"
    LAST_WRITER_WINS = "last_writer_wins"
    REMOTE_WINS = "remote_wins"
    LOCAL_WINS = "local_wins"


class DeletePolicy(enum.StrEnum):
    DELETE_WINS = "delete_wins"
    UPDATE_WINS = "update_wins"


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


# --- the create marker ----------------------------------------------------------------------
# A local create carries a token the tracker keeps and users do not see, so an issue whose
# create answer was lost is found again by identity, not by matching title and body.
MARKER_PREFIX = "syndarix:create:"
_MARKER_RE = re.compile(r"(?:\n\n)?<!-- syndarix:create:([A-Za-z0-9_.-]{1,64}) -->\s*\Z")
_MARKER_VALUE = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def body_with_marker(body: str | None, marker: str | None) -> str:
    """The body to write: `body`, then the marker as a trailing HTML comment (markdown
    trackers keep it and never render it). Exactly what `split_marker` undoes."""
    text = body or ""
    if not marker:
        return text
    if not _MARKER_VALUE.fullmatch(marker):
        raise ValueError(f"a create marker is 1-64 letters, digits, '.', '_' or '-': {marker!r}")
    comment = f"<!-- {MARKER_PREFIX}{marker} -->"
    return f"{text}\n\n{comment}" if text else comment


def split_marker(body: str) -> tuple[str, str | None]:
    """(body without the trailing marker comment, the marker) — (body, None) without one."""
    if "<!-- syndarix:create:" not in body:
        return body, None
    found = _MARKER_RE.search(body)
    if found is None:
        return body, None
    return body[: found.start()], found.group(1)


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
    # The create marker found in the tracker's body (stripped from `body`), if any.
    marker: str | None = None
    # The tracker's own workflow status when it has more than open/closed (SPEC §6).
    tracker_status: str = ""

    def __post_init__(self) -> None:
        # Why here: every provider builds RemoteIssue from client reads and from webhooks, so
        # stripping the marker once here means no parser can forget it.
        if self.marker is None and isinstance(self.body, str):
            body, marker = split_marker(self.body)
            if marker is not None:
                object.__setattr__(self, "body", body)
                object.__setattr__(self, "marker", marker)
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

    def names(self) -> frozenset[str]:
        """The canonical fields this write sets."""
        names = {
            f.name
            for f in dataclasses.fields(self)
            if f.name != "milestone" and getattr(self, f.name) is not None
        }
        if not isinstance(self.milestone, _Unset):
            names.add("milestone")
        return frozenset(names)


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
    """Base for everything a tracker call can fail with. `permanent` says whether to retry.

    `field` names the canonical field a refusal concerns ("assignees", "labels", …) when the
    client can tell, so the outbox can split a refused field from the rest of a push.
    """

    permanent: bool = False
    # The fields of an update whose requests were never sent (an update split into several
    # requests failed before theirs): they cannot have landed, whatever the failure was.
    unsent: frozenset[str] = frozenset()

    def __init__(
        self, message: str, *, status: int | None = None, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@contextlib.contextmanager
def unsent_on_failure(fields: IssueFields) -> Iterator[set[str]]:
    """For an update sent as several requests: the block adds each field to the yielded set
    before the first request that writes it goes out; a ProviderError leaving the block
    carries the fields of `fields` that were never sent (`ProviderError.unsent`)."""
    sent: set[str] = set()
    try:
        yield sent
    except ProviderError as exc:
        exc.unsent = fields.names() - sent
        raise


def born_closed(fields: IssueFields) -> frozenset[str]:
    """{"state"} for a create of a closed issue, which most trackers make open and then
    close by a second call; else nothing."""
    return frozenset({"state"}) if fields.state is IssueState.CLOSED else frozenset()


class TransientError(ProviderError):
    """Network trouble, timeouts, 5xx: worth retrying later."""

    permanent = False


class MalformedAnswerError(TransientError):
    """The tracker answered 2xx with a document of the wrong shape (garbage JSON, a proxy's
    HTML page, a missing field). The same class on every provider: transient, because a
    half-deployed tracker or a captive proxy recovers, and the outbox's budget bounds it."""


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


class ConflictingWriteError(TransientError):
    """The tracker refused a conditional write because the issue changed after `current` was
    read (OpenProject: 409 on a stale `lockVersion`). Transient, and never retried as is: the
    outbox's next attempt reads the issue again and merges before it writes."""


class RateLimitedError(TransientError):
    """429, or 403 with an exhausted rate limit. `retry_after` seconds says when to retry."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class RateLimitGate(Protocol):
    """The one gate every tracker call of a connection passes (integrations.ratelimit)."""

    def check(self) -> None:
        """Raise RateLimitedError(retry_after=remaining) without sending while paused."""

    def hold(self, seconds: float) -> None:
        """A response said: rate limited for `seconds`; pause every call of the connection."""

    def release_thread(self) -> None:
        """The calling thread makes no more calls (a listing's prefetch thread ends): free
        what `check`/`hold` bound to it."""


# --- capabilities ---------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class Capabilities:
    """What a tracker can hold and how it stores values: read by the API (refusing what the
    tracker cannot hold), the admin and the engine, instead of `if provider == …`."""

    webhooks: bool = True
    deletion_in_webhooks: bool = True
    max_assignees: int | None = None  # None = unbounded
    max_labels: int | None = None
    milestones: bool = True
    labels_predefined: bool = True  # labels must exist (or be created) before use
    conditional_writes: bool = False
    set_delta_writes: bool = False  # label/assignee add/remove endpoints
    label_case_insensitive: bool = False
    assignee_case_insensitive: bool = False
    body_crlf_to_lf: bool = False
    # Scalar fields written by a request of their own (Jira's state: a transition after the
    # edit's PUT). The other scalars go in one request, so one of them showing our value
    # proves the rest landed with it; a field written apart is proven by nothing but itself.
    written_apart: frozenset[str] = frozenset()
    # The token can create and repair the tracker's webhook through its API
    # (`ensure_webhook`, integrations/providers/hooks.py); else the admin shows manual steps.
    webhook_registration: bool = False

    def canonical(self, field: str, value: Any) -> Any:
        """The comparison key of a canonical field value on this tracker: two values are the
        same on this tracker iff their keys are equal (GitHub's `BUG` is its `bug`)."""
        if value is None:
            return None
        if field == "labels":
            names = value if isinstance(value, str) else frozenset(value)
            if isinstance(names, str):
                names = frozenset({names})
            return frozenset(n.casefold() for n in names) if self.label_case_insensitive else names
        if field == "assignees":
            logins = frozenset({value}) if isinstance(value, str) else frozenset(value)
            if self.assignee_case_insensitive:
                return frozenset(login.casefold() for login in logins)
            return logins
        if field == "body" and isinstance(value, str) and self.body_crlf_to_lf:
            return value.replace("\r\n", "\n")
        if isinstance(value, enum.Enum):
            return value.value
        return value

    def refusals(self, values: Mapping[str, Any]) -> dict[str, str]:
        """Canonical field → why this tracker cannot hold the value (SPEC §3: refused by the
        API with a 400 naming the field, never accepted and then failed in the outbox)."""
        problems: dict[str, str] = {}
        for field, limit in (("assignees", self.max_assignees), ("labels", self.max_labels)):
            value = values.get(field)
            if value is not None and limit is not None and len(set(value)) > limit:
                problems[field] = f"This tracker holds at most {limit}."
        if values.get("milestone") and not self.milestones:
            problems["milestone"] = "This tracker has no milestones."
        return problems

    def same(self, field: str, a: Any, b: Any) -> bool:
        return bool(self.canonical(field, a) == self.canonical(field, b))


def set_delta(
    current: frozenset[str], desired: frozenset[str], *, fold: bool = False
) -> tuple[frozenset[str], frozenset[str]]:
    """(to add, to remove) to turn `current` into `desired`; `fold` compares casefolded (a
    tracker that matches names case-insensitively keeps its own spelling, so `BUG` wanted and
    `bug` held is no change)."""

    def key(name: str) -> str:
        return name.casefold() if fold else name

    held = {key(n) for n in current}
    wanted = {key(n) for n in desired}
    return (
        frozenset(n for n in desired if key(n) not in held),
        frozenset(n for n in current if key(n) not in wanted),
    )


# --- provider options (Connection.config_json) ------------------------------------------------


@dataclasses.dataclass(frozen=True, slots=True)
class ConfigOption:
    """One key of a provider's `config_json` (SPEC §6: Jira `email`, Trello `api_key`, …):
    validated on write, shown as a form field in the admin."""

    name: str
    label: str
    kind: type = str  # str, bool or int
    required: bool = False
    help_text: str = ""


def validate_config(options: tuple[ConfigOption, ...], data: Any) -> dict[str, Any]:
    """`data` checked against `options`; ValueError naming every bad key (unknown keys too)."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ValueError("config_json must be an object")
    known = {option.name: option for option in options}
    problems = [f"{key}: unknown option" for key in sorted(set(data) - known.keys())]
    for option in options:
        value = data.get(option.name)
        if value is None or value == "":
            if option.required:
                problems.append(f"{option.name}: required")
            continue
        kind_ok = (
            isinstance(value, bool)
            if option.kind is bool
            else isinstance(value, option.kind) and not isinstance(value, bool)
        )
        if not kind_ok:
            problems.append(f"{option.name}: must be a {option.kind.__name__}")
    if problems:
        raise ValueError("; ".join(str(p) for p in problems))
    return {key: value for key, value in data.items() if value is not None and value != ""}


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
    # Stored only for a listing that fit in one page (a 304 on page 1 says nothing of page 2).
    etag: str | None = None
    requests: int = 0
    # The tracker's clock (its `Date` header) when the listing was read, for cursors.
    server_time: datetime | None = None


# --- the client interface -------------------------------------------------------------------


class ProviderClient(abc.ABC):
    """One tracker repository/project, reached with one token over one `requests.Session`."""

    provider: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    # The provider's own connection options (Connection.config_json); none by default.
    config_options: ClassVar[tuple[ConfigOption, ...]] = ()
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
        gate: RateLimitGate | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        self.config: Mapping[str, Any] = config or {}
        self.base_url = base_url.rstrip("/")
        self.repository = repository
        self.token = token
        self.timeout = timeout
        self.allow_create_labels = allow_create_labels
        self.max_retries = max_retries
        self.gate = gate

    def iter_issue_pages(self, *, since: datetime | None = None) -> Iterator[list[RemoteIssue]]:
        """Yield issues (never pull requests) updated at or after `since`, oldest first, a page
        at a time at `max_page_size`, one request per page — each page requested in the
        background as the one before is handed over, so the caller's work on page n overlaps
        the tracker's answer for page n+1 (`prefetch.prefetched`: the same requests in the
        same order, errors raised at the page that failed). For a pass over everything (the
        full reconciliation); a caller that may stop early uses `fetch_issue_pages`."""
        return prefetched(self.fetch_issue_pages(since=since), on_thread_exit=self.release_thread)

    @abc.abstractmethod
    def fetch_issue_pages(self, *, since: datetime | None = None) -> Iterator[list[RemoteIssue]]:
        """What `iter_issue_pages` yields, fetched in the calling thread only when the caller
        asks for the next page."""

    def release_thread(self) -> None:
        """Run by a prefetch thread as it ends: free what this client's calls bound to that
        thread (the rate-limit gate's database connection)."""
        if self.gate is not None:
            self.gate.release_thread()

    @abc.abstractmethod
    def list_issues(self, *, since: datetime | None = None, etag: str | None = None) -> ListResult:
        """All issues updated since `since`; with `etag`, a 304 answers `not_modified=True`."""

    @abc.abstractmethod
    def get_issue(self, number: str) -> RemoteIssue:
        """One issue by number; raises NotFoundError when it is gone (404/410) or when the
        number cannot name an issue."""

    @abc.abstractmethod
    def create_issue(self, fields: IssueFields, *, marker: str | None = None) -> RemoteIssue:
        """Create an issue (title required) carrying `marker` where the tracker keeps it and
        users do not see it; return the tracker's state after the create."""

    @abc.abstractmethod
    def update_issue(
        self, number: str, fields: IssueFields, *, current: RemoteIssue | None = None
    ) -> RemoteIssue:
        """Write the non-None fields (their full desired values) against `current`, the state
        the caller read just before; no second read before writing. Labels and assignees go
        as additions and removals where the tracker has such endpoints, so a concurrent
        tracker addition survives. Returns the tracker's state after the last call.

        `current=None` (tools and tests only) reads the issue once first."""

    def find_by_marker(self, marker: str, *, since: datetime | None = None) -> RemoteIssue | None:
        """The issue we created with `marker` (its create answer was lost), or None.

        One listing of issues updated since `since`: a tracker with a marker search of its
        own may override this."""
        # Sequential: the search stops at the page that has it, with no page requested ahead.
        for page in self.fetch_issue_pages(since=since):
            for issue in page:
                if issue.marker == marker:
                    return issue
        return None

    def refused_value(self, field: str, value: Any) -> str | None:
        """Why the tracker cannot hold `value` in `field` (a predefined value it lacks: a
        Redmine label value, version or non-member), or None. The API asks before queueing a
        write, so a value the tracker would refuse is a 400, not a failed push. Default: no
        lookup (trackers that create labels on use, or whose limits the capabilities say)."""
        return None

    @abc.abstractmethod
    def check_access(self) -> None:
        """Read the repository; raise a ProviderError that says precisely what is wrong."""

    @property
    @abc.abstractmethod
    def requests_made(self) -> int:
        """HTTP requests this client has sent (what sync runs and benchmarks report)."""

    @property
    def last_server_time(self) -> datetime | None:
        """The tracker's clock (`Date` header) of the last response, for cursors."""
        return None

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
