"""The shared client core every REST provider stands on.

A provider module keeps what is its own (URLs, JSON ↔ canonical mapping, signatures, event
parsing) and declares the rest: its API root and auth headers, its paging style. What is the
same for every tracker lives here once: the transport (one session, the rate-limit gate, the
status → typed error mapping), answer parsing (a malformed answer is MalformedAnswerError on
every provider), the same-origin rule for next links, paging and the ETag rule.
"""

from __future__ import annotations

import abc
import enum
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import requests

from integrations.providers.base import (
    AccessDeniedError,
    AuthenticationError,
    ListResult,
    MalformedAnswerError,
    NotFoundError,
    PermanentError,
    ProviderClient,
    RateLimitedError,
    RateLimitGate,
    RemoteIssue,
    TransientError,
    ValidationFailedError,
)
from integrations.providers.hooks import HookOutcome, RemoteHook, ensure_hook
from integrations.providers.http import HttpTransport, RateLimit, parse_link_header
from integrations.providers.shapes import ShapeError

T = TypeVar("T")
V = TypeVar("V")
_EPOCH = datetime.min.replace(tzinfo=UTC)


# str.isdigit() and int() accept other scripts' digits ("٣" is 3); an issue number is ASCII.
_ASCII_DIGITS = re.compile(r"[0-9]+")


def positive_number(number: str | int, *, what: str) -> int:
    """The issue number `number` names, or NotFoundError: like every provider, a number that
    cannot name an issue (not plain ASCII digits, or not positive) names no issue. `what`
    names the number in the message ("a GitLab issue number")."""
    text = str(number).strip()
    if not _ASCII_DIGITS.fullmatch(text) or int(text) <= 0:
        raise NotFoundError(f"{what} is a positive integer, got {text[:40]!r}")
    return int(text)


def at_most_one(values: frozenset[str], *, field: str, refusal: str) -> str | None:
    """The one value of a set field the tracker holds one of at most (a work package's
    category, a Redmine assignee), None for none; more is ValidationFailedError(`refusal`)
    naming `field`, so the outbox can split it from the rest of the push."""
    if len(values) > 1:
        raise ValidationFailedError(refusal, field=field)
    return next(iter(values), None)


def listing_key(issue: RemoteIssue) -> tuple[datetime, int]:
    """Oldest change first, then by number (numbers are digits on every tracker we list)."""
    number = int(issue.number) if issue.number.isdigit() else 0
    return issue.updated_at or _EPOCH, number


class Paging(enum.Enum):
    """How a tracker says where the next page is."""

    # `Link: rel="next"` names the next page; it is requested again against *our* API root
    # with that page number (Gitea builds the link from its ROOT_URL, which may be another
    # host). Without a Link (a proxy stripped it), the total count says whether more follow.
    PAGE_NUMBER = "page_number"
    # Follow `Link: rel="next"` as given (GitHub): same origin only, never in a loop.
    LINK = "link"
    # `X-Next-Page` (GitLab; empty on the last page), else `Link: rel="next"` as given.
    NEXT_PAGE_HEADER = "next_page_header"


class NameCache(Generic[V]):
    """A tracker's labels or milestones by name, loaded on first use and reloaded once on a
    miss (someone may have created one since). Names are casefolded where the tracker
    matches them so. `forget()` after a failed write: a cached id may be what failed."""

    def __init__(self, load: Callable[[], dict[str, V]], *, fold: bool = False) -> None:
        self._load = load
        self._fold = fold
        self._known: dict[str, V] | None = None

    def _key(self, name: str) -> str:
        return name.casefold() if self._fold else name

    def resolve(self, names: Iterable[str]) -> tuple[dict[str, V], list[str]]:
        """({name: value} for the names found, [names missing even after one reload])."""
        wanted = list(names)
        fresh = self._known is None
        known = self._reload() if self._known is None else self._known
        if not fresh and any(self._key(n) not in known for n in wanted):
            known = self._reload()
        found = {n: known[self._key(n)] for n in wanted if self._key(n) in known}
        return found, sorted(n for n in wanted if n not in found)

    def _reload(self) -> dict[str, V]:
        loaded = self._load()
        self._known = {}
        for name, value in loaded.items():
            self._known.setdefault(self._key(name), value)
        return self._known

    def add(self, name: str, value: V) -> None:
        """Note a name the tracker now has (created, or seen in an answer)."""
        if self._known is not None:
            self._known.setdefault(self._key(name), value)

    def forget(self) -> None:
        self._known = None


class RestClient(ProviderClient):
    """A ProviderClient over one HttpTransport. Subclasses implement `_setup` (check and
    keep their repository form), `api_root` and `auth_headers`, and set `paging`."""

    paging: Paging = Paging.LINK
    # The query parameter names of page number and size.
    page_param: str = "page"
    size_param: str = "per_page"
    # The header with the total count, when the tracker sends one.
    total_header: str | None = None

    def __init__(
        self,
        *,
        base_url: str,
        repository: str,
        token: str,
        timeout: float = 10.0,
        allow_create_labels: bool = False,
        max_retries: int = 3,
        backoff_factor: float = 0.5,
        gate: RateLimitGate | None = None,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            base_url=base_url,
            repository=repository,
            token=token,
            timeout=timeout,
            allow_create_labels=allow_create_labels,
            max_retries=max_retries,
            gate=gate,
            config=config,
        )
        self._setup()
        self.transport = HttpTransport(
            api_root=self.api_root(),
            headers=self.auth_headers(token),
            timeout=timeout,
            max_retries=max_retries,
            backoff_factor=backoff_factor,
            gate=gate,
        )

    # --- what a provider declares ------------------------------------------------------------

    def _setup(self) -> None:
        """Normalise and check base_url/repository; raise a ProviderError when unusable."""

    @abc.abstractmethod
    def api_root(self) -> str:
        """The API root every path is relative to."""

    @abc.abstractmethod
    def auth_headers(self, token: str) -> dict[str, str]:
        """The headers that carry the token (and the media type)."""

    # --- shared plumbing -----------------------------------------------------------------------

    @property
    def requests_made(self) -> int:
        return self.transport.requests_made

    @property
    def last_server_time(self) -> datetime | None:
        return self.transport.last_server_time

    @property
    def rate_limit(self) -> RateLimit | None:
        return self.transport.rate_limit

    def close(self) -> None:
        self.transport.close()

    # --- listing issues, the same for every tracker --------------------------------------------

    @abc.abstractmethod
    def issue_listing(self, since: datetime | None) -> tuple[str, dict[str, Any], str]:
        """(path, query parameters, description) of the issue listing updated since `since`,
        oldest change first where the tracker can sort."""

    @abc.abstractmethod
    def page_issues(self, items: list[Any], *, what: str) -> list[RemoteIssue]:
        """One page of listing JSON → issues (pull requests and other kinds dropped)."""

    def fetch_issue_pages(self, *, since: datetime | None = None) -> Iterator[list[RemoteIssue]]:
        path, params, what = self.issue_listing(since)
        for _, items in self.pages(path, params, what=what):
            yield self.page_issues(items, what=what)

    def list_issues(self, *, since: datetime | None = None, etag: str | None = None) -> ListResult:
        path, params, what = self.issue_listing(since)
        before = self.requests_made
        by_id: dict[str, RemoteIssue] = {}
        first: requests.Response | None = None
        pages = first_size = 0
        for response, items in self.pages(path, params, what=what, etag=etag):
            if response.status_code == 304:
                return ListResult(
                    issues=[],
                    not_modified=True,
                    etag=etag,
                    requests=self.requests_made - before,
                    server_time=self.last_server_time,
                )
            pages += 1
            if pages == 1:
                first, first_size = response, len(items)
            # An issue edited while we page moves across a page boundary: keep one copy,
            # the newest.
            for issue in self.page_issues(items, what=what):
                known = by_id.get(issue.external_id)
                if known is None or listing_key(issue) >= listing_key(known):
                    by_id[issue.external_id] = issue
        return ListResult(
            issues=sorted(by_id.values(), key=listing_key),
            etag=self.single_page_etag(first, pages, first_size),
            requests=self.requests_made - before,
            server_time=self.last_server_time,
        )

    def parse_answer(self, parse: Callable[[Any], T], data: Any, *, what: str) -> T:
        """`parse(data)`; a ShapeError is MalformedAnswerError, the same on every provider."""
        try:
            return parse(data)
        except ShapeError as exc:
            raise MalformedAnswerError(f"{what}: unexpected answer: {exc}") from exc

    def ensure_hook_at(
        self,
        *,
        path: str,
        what: str,
        url: str,
        events: Iterable[str],
        parse: Callable[[Any], RemoteHook],
        create: Mapping[str, Any],
        repair: Mapping[str, Any],
        repair_method: str = "PATCH",
    ) -> HookOutcome:
        """Webhook registration over a hooks collection at `path`: list it (paged), POST
        `create` when ours is missing, `repair_method` `repair` to `path/<id>` when it is
        broken. Every answer is parsed with `parse`; a wrong shape is MalformedAnswerError."""

        def answer(response: requests.Response) -> RemoteHook:
            return self.parse_answer(parse, self.transport.json(response, what=what), what=what)

        def listing() -> list[RemoteHook]:
            return [
                self.parse_answer(parse, item, what=what)
                for _, items in self.pages(path, {}, what=what)
                for item in items
            ]

        def create_hook() -> RemoteHook:
            return answer(self.transport.request("POST", path, what=what, json=dict(create)))

        def repair_hook(hook: RemoteHook) -> RemoteHook:
            target = f"{path}/{hook.id}"
            return answer(
                self.transport.request(repair_method, target, what=what, json=dict(repair))
            )

        return ensure_hook(
            url=url, events=events, listing=listing, create=create_hook, update=repair_hook
        )

    def same_origin(self, url: str) -> bool:
        """Whether `url` is on our API's scheme and host: the token goes wherever a request
        goes, so a next link elsewhere is never followed."""
        ours, theirs = urlsplit(self.transport.api_root), urlsplit(url)
        return (ours.scheme, ours.netloc) == (theirs.scheme, theirs.netloc)

    # --- the connection check, the same ladder for every tracker --------------------------------

    # How this tracker and its repository are named in messages, and what the repository
    # document's "issues enabled" key is.
    tracker_name: str = "the tracker"
    repository_noun: str = "repository"
    issues_enabled_key: str = "has_issues"
    # What a 403 on the repository usually means on this tracker.
    access_hint: str = ""

    @abc.abstractmethod
    def access_path(self) -> str:
        """The repository (project, board…) document the connection check reads."""

    def is_repository(self, data: Any) -> bool:
        """Whether the answer looks like this tracker's repository document."""
        return isinstance(data, Mapping) and "id" in data

    def check_access(self) -> None:
        """Read the repository; raise a ProviderError that says precisely what is wrong."""
        where = f"{self.tracker_name} at {self.base_url}"
        noun = f"{self.repository_noun} {self.repository}"
        try:
            response = self.transport.request("GET", self.access_path(), what=where)
        except AuthenticationError as exc:
            raise AuthenticationError(
                f"{where} rejected the token (HTTP 401): the API token is wrong, expired "
                "or revoked",
                status=exc.status,
            ) from exc
        except AccessDeniedError as exc:
            raise AccessDeniedError(
                f"the token may not read {noun} (HTTP 403){self.access_hint}: {exc}",
                status=exc.status,
            ) from exc
        except NotFoundError as exc:
            raise NotFoundError(
                f"repository {self.repository} not found at {self.base_url} "
                "(or the token cannot see it)",
                status=exc.status,
            ) from exc
        except RateLimitedError:
            raise
        except PermanentError as exc:
            if exc.status is None:  # no HTTP status: a TLS failure
                raise PermanentError(f"{where}: TLS error: {exc.__cause__ or exc}") from exc
            raise
        except TransientError as exc:
            if exc.status is None and isinstance(exc.__cause__, requests.exceptions.Timeout):
                raise TransientError(f"{where} did not answer within {self.timeout:g}s") from exc
            if exc.status is None:
                raise TransientError(
                    f"{where} is unreachable (cannot connect to {self.base_url}): "
                    f"{exc.__cause__ or exc}"
                ) from exc
            raise
        data = self.transport.json(response, what=where)
        if not self.is_repository(data):
            raise PermanentError(
                f"{where}: the answer for {self.repository} is not a {self.tracker_name} "
                f"{self.repository_noun} (is the base URL right?)"
            )
        if data.get(self.issues_enabled_key) is False:
            raise AccessDeniedError(f"issues are disabled in {noun}")

    def pages(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        what: str,
        etag: str | None = None,
    ) -> Iterator[tuple[requests.Response, list[Any]]]:
        """GET a paged listing, one request per page at `max_page_size`, yielding
        (response, items). Only the first page is conditional: a 304 on it is yielded with
        no items and ends the listing."""
        page, seen_items = 1, 0
        url: str | None = None
        seen_urls: set[str] = set()
        headers = {"If-None-Match": etag} if etag else None
        while True:
            page_what = f"{what} (page {page})"
            if url is None:
                query = {**params, self.page_param: page, self.size_param: self.max_page_size}
                response = self.transport.request(
                    "GET",
                    path,
                    what=page_what,
                    params=query,
                    headers=headers,
                    ok_not_modified=headers is not None,
                )
            else:
                response = self.transport.request(
                    "GET", url, what=page_what, headers=headers, ok_not_modified=headers is not None
                )
            if response.status_code == 304:
                yield response, []
                return
            headers = None
            items = self.transport.json(response, what=page_what)
            if not isinstance(items, list):
                raise MalformedAnswerError(f"{page_what}: unexpected answer: not a list")
            if page == 1 and self.total_header:
                total = response.headers.get(self.total_header, "").strip()
                self.listing_total = int(total) if total.isascii() and total.isdigit() else None
            yield response, items
            seen_items += len(items)
            step = self._next(response, page, len(items), seen_items, what=page_what)
            if step is None:
                return
            page, url = step
            if url is not None:
                if url in seen_urls:
                    raise MalformedAnswerError(f"{page_what}: the next-page link repeats")
                seen_urls.add(url)

    def _next(
        self, response: requests.Response, page: int, received: int, seen: int, *, what: str
    ) -> tuple[int, str | None] | None:
        """(next page number, URL to follow or None) or None at the end."""
        if self.paging is Paging.NEXT_PAGE_HEADER:
            raw = response.headers.get("X-Next-Page")
            if raw is not None:
                raw = raw.strip()
                if not raw:
                    return None
                if not (raw.isascii() and raw.isdigit()) or int(raw) <= page:
                    raise MalformedAnswerError(f"{what}: x-next-page {raw[:20]!r} does not advance")
                return int(raw), None
        link = parse_link_header(response.headers.get("Link")).get("next")
        if self.paging is Paging.PAGE_NUMBER:
            if received == 0:
                return None
            if response.headers.get("Link"):
                if link is None:
                    return None
                values = parse_qs(urlsplit(link).query).get(self.page_param, [])
                number = values[0] if values else ""
                if number.isascii() and number.isdigit() and int(number) > page:
                    return int(number), None
                return None
            total = response.headers.get(self.total_header or "", "").strip()
            if total.isascii() and total.isdigit() and int(total) > seen:
                return page + 1, None
            return None
        if not link:
            return None
        if not self.same_origin(link):
            # Following it would hand our token to another host.
            raise PermanentError(
                f"{what}: the next-page link points off {self.transport.api_root}: {link}"
            )
        return page + 1, link

    def list_named(
        self, path: str, params: Mapping[str, Any], *, what: str, name_key: str, value_key: str
    ) -> dict[str, Any]:
        """A paged listing of named things (labels, milestones) → {name: item[value_key]}."""
        found: dict[str, Any] = {}
        for _, items in self.pages(path, params, what=what):
            for item in items:
                if not isinstance(item, Mapping):
                    raise MalformedAnswerError(f"{what}: unexpected answer: an item is no object")
                name, value = item.get(name_key), item.get(value_key)
                if not isinstance(name, str) or value is None or isinstance(value, bool):
                    raise MalformedAnswerError(f"{what}: unexpected answer: an item lacks a name")
                found.setdefault(name, value)
        return found

    def name_cache(
        self,
        path: str,
        params: Mapping[str, Any],
        *,
        what: str,
        name_key: str,
        value_key: str,
        fold: bool = False,
    ) -> NameCache[Any]:
        """A NameCache over one listing of named things (labels, milestones)."""
        return NameCache(
            lambda: self.list_named(
                path, params, what=what, name_key=name_key, value_key=value_key
            ),
            fold=fold,
        )

    def single_page_etag(
        self, response: requests.Response | None, pages: int, first_size: int
    ) -> str | None:
        """Page 1's ETag vouches for the whole listing only when page 1 held all of it with
        room to spare: otherwise a change can land on page 2 and leave page 1 (and its ETag)
        as it was, and the next poll's 304 would hide it (issue 12 #9)."""
        if response is None or pages != 1 or first_size >= self.max_page_size:
            return None
        return response.headers.get("ETag")
