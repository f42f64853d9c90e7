"""A stateful fake tracker on loopback: the shared server, state, faults and webhook sender.

Each provider module subclasses `FakeTracker` with its routes, JSON shapes and webhook
signing. Tests, `make demo`, the soak and the benchmarks all run the same fakes, so what the
clients are tested against is what the engine is simulated against.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import queue
import re
import secrets
import signal
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import requests


@dataclasses.dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    # Set by a `Fault(hold=...)`: the answer is sent only once this is set (waited for
    # outside the tracker's lock, so other requests are served meanwhile).
    hold: threading.Event | None = None


@dataclasses.dataclass
class Fault:
    """An injected misbehaviour, applied to the next `count` matching requests."""

    status: int = 500
    count: int = 1
    retry_after: int | None = None
    hang_seconds: float = 0.0
    method: str | None = None  # None = any
    path_contains: str | None = None
    # Query parameters the request must carry with these values ({"page": "2"}); None = any.
    query: dict[str, str] | None = None
    # Runs when the fault fires, before the request is served: a tracker edit that lands
    # between our read and our write, or between two pages of a listing (a page shift).
    before: Callable[[], None] | None = None
    # The request is served (the write applies), then its answer is lost: `status` is sent
    # instead (a proxy's 502/504 after the tracker committed). status=0 keeps the answer.
    apply_then_fail: bool = False
    # Runs after the request was served, before its answer is sent: the tracker changes
    # (and its webhook is processed) while our answer is on the wire — a stale answer.
    after: Callable[[], None] | None = None
    # The answer waits until this is set: another delivery (our own echo) arrives first.
    hold: threading.Event | None = None

    def matches(self, method: str, path: str, query: dict[str, list[str]] | None = None) -> bool:
        if self.method and self.method != method:
            return False
        if self.path_contains and self.path_contains not in path:
            return False
        return not self.query or all(
            (query or {}).get(name, [None])[0] == value for name, value in self.query.items()
        )


@dataclasses.dataclass
class OutgoingWebhook:
    event: str
    headers: dict[str, str]
    body: bytes
    delivery_id: str


@dataclasses.dataclass
class Response:
    status: int
    body: Any = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Route = tuple[str, re.Pattern[str], Callable[..., Response]]


@dataclasses.dataclass
class FakeIssue:
    """Provider-neutral state; each fake renders it in its provider's JSON."""

    id: int
    number: int
    title: str
    body: str
    state: str  # "open" | "closed"
    labels: list[str]
    assignees: list[str]
    milestone: str | None
    created_at: datetime
    updated_at: datetime
    is_pull_request: bool = False
    author: str = "alice"

    def copy(self) -> FakeIssue:
        """A copy that shares no list with this issue: the `before` of a change."""
        return dataclasses.replace(self, labels=list(self.labels), assignees=list(self.assignees))

    def snapshot(self) -> dict[str, Any]:
        """The canonical fields, shaped as `Issue.snapshot()`: what tests compare the mirror to."""
        return {
            "title": self.title,
            "body": self.body,
            "state": self.state,
            "labels": sorted(self.labels),
            "assignees": sorted(self.assignees),
            "milestone": self.milestone,
        }


def utcnow() -> datetime:
    return datetime.now(UTC)


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeTracker:
    """Threaded HTTP server holding one repository's issues.

    Subclasses fill `routes()` and the rendering/webhook hooks. All state is guarded by
    `self.lock`; handlers run in the server's threads.
    """

    provider = "fake"
    max_page_size = 50
    default_page_size = 30
    # How often serve_forever looks for a shutdown request: stop() waits up to this long, and
    # test suites start and stop a fake per test (the standard library's 0.5 s adds up).
    poll_interval = 0.05
    # Whether answers carry a `Date` header on the tracker's clock (Redmine behind thin sends
    # none: its cursor can only come from the issues' own timestamps).
    sends_date = True

    def __init__(
        self,
        *,
        repository: str = "acme/widgets",
        token: str = "test-token",  # noqa: S107 - the fake's own credential
        webhook_url: str | None = None,
        webhook_secret: str = "",
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.repository = repository
        self.token = token
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.lock = threading.RLock()
        self.issues: dict[int, FakeIssue] = {}  # by number
        self.known_labels: list[str] = ["bug", "feature", "docs"]
        self.known_milestones: list[str] = ["v1", "v2"]
        self.known_users: set[str] = {"alice", "bob", "carol", "dave"}
        self.next_id = 1000
        self.next_number = 1
        self.requests: list[RecordedRequest] = []
        self.faults: list[Fault] = []
        self.sent_webhooks: list[OutgoingWebhook] = []
        # Tests replace the sink to drop, duplicate or reorder deliveries.
        self.webhook_sink: Callable[[OutgoingWebhook], None] | None = None
        self._webhook_queue: queue.Queue[OutgoingWebhook | None] = queue.Queue()
        self._clock_offset = 0.0
        self._last_timestamp: datetime | None = None
        # Real trackers stamp to the second and do not bump equal stamps: with this off, two
        # writes in one second share `updated_at` (the simulation turns it off).
        self.strictly_increasing_clock = True
        self._routes = self.routes()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    # --- lifecycle -----------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The web root (what a connection's base_url is for Gitea and GitLab)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        serve = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self.poll_interval},
            daemon=True,
        )
        send = threading.Thread(target=self._deliver_webhooks, daemon=True)
        self._threads = [serve, send]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._webhook_queue.put(None)
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- state helpers used by tests and by the routes -----------------------------------

    def now(self) -> datetime:
        """The tracker's clock: 1-s resolution, skewed by `advance_clock`; strictly increasing
        unless `strictly_increasing_clock` is off."""
        with self.lock:
            current = (utcnow() + timedelta(seconds=self._clock_offset)).replace(microsecond=0)
            if (
                self.strictly_increasing_clock
                and self._last_timestamp is not None
                and current <= self._last_timestamp
            ):
                current = self._last_timestamp + timedelta(seconds=1)
            self._last_timestamp = current
            return current

    def advance_clock(self, seconds: float) -> None:
        with self.lock:
            self._clock_offset += seconds

    def server_date(self) -> str:
        """The `Date` header: the tracker's clock, as HTTP dates are (1-s resolution)."""
        return format_datetime(self.now_unbumped(), usegmt=True)

    def now_unbumped(self) -> datetime:
        return (utcnow() + timedelta(seconds=self._clock_offset)).replace(microsecond=0)

    def seed_issue(
        self,
        *,
        title: str,
        body: str = "",
        state: str = "open",
        labels: list[str] | None = None,
        assignees: list[str] | None = None,
        milestone: str | None = None,
        is_pull_request: bool = False,
        updated_at: datetime | None = None,
        notify: bool = False,
    ) -> FakeIssue:
        """Create an issue as if a human did it in the tracker's UI."""
        with self.lock:
            stamp = updated_at or self.now()
            issue = FakeIssue(
                id=self.next_id,
                number=self.next_number,
                title=title,
                body=body,
                state=state,
                labels=sorted(set(labels or [])),
                assignees=sorted(set(assignees or [])),
                milestone=milestone,
                created_at=stamp,
                updated_at=stamp,
                is_pull_request=is_pull_request,
            )
            self.next_id += 1
            self.next_number += 1
            self.issues[issue.number] = issue
            for label in issue.labels:
                if label not in self.known_labels:
                    self.known_labels.append(label)
            if milestone and milestone not in self.known_milestones:
                self.known_milestones.append(milestone)
        if notify:
            self.emit_issue_event(issue, "opened")
        return issue

    def edit_issue(self, number: int, *, notify: bool = True, **changes: Any) -> FakeIssue:
        """Change an issue as a human in the tracker would, and send the webhooks it would."""
        with self.lock:
            issue = self.issues[number]
            before = issue.copy()
            for key, value in changes.items():
                setattr(issue, key, sorted(set(value)) if key in ("labels", "assignees") else value)
            issue.updated_at = self.now()
        if notify:
            self.emit_change_events(before, issue)
        return issue

    def delete_issue(self, number: int, *, notify: bool = True) -> None:
        with self.lock:
            issue = self.issues.pop(number)
        if notify:
            self.emit_issue_event(issue, "deleted")

    def issue_list(self, *, include_pull_requests: bool = True) -> list[FakeIssue]:
        with self.lock:
            return [
                i for i in self.issues.values() if include_pull_requests or not i.is_pull_request
            ]

    def count_requests(self, method: str | None = None, path_contains: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for r in self.requests
                if (method is None or r.method == method)
                and (path_contains is None or path_contains in r.path)
            )

    def reset_requests(self) -> None:
        with self.lock:
            self.requests.clear()

    def inject(self, fault: Fault) -> None:
        with self.lock:
            self.faults.append(fault)

    # --- webhooks ------------------------------------------------------------------------

    def emit_issue_event(self, issue: FakeIssue, action: str, **extra: Any) -> None:
        hook = self.build_webhook(issue, action, **extra)
        if hook is not None:
            self.send_webhook(hook)

    def emit_change_events(self, before: FakeIssue, after: FakeIssue) -> None:
        """Send the events the real tracker sends for this change (one per kind of change)."""
        actions: list[str] = []
        if before.title != after.title or before.body != after.body:
            actions.append("edited")
        if before.state != after.state:
            actions.append("closed" if after.state == "closed" else "reopened")
        if before.labels != after.labels:
            actions.append("label_updated")
        if before.assignees != after.assignees:
            actions.append("assigned" if after.assignees else "unassigned")
        if before.milestone != after.milestone:
            actions.append("milestoned" if after.milestone else "demilestoned")
        for action in actions:
            self.emit_issue_event(after, action, before=before)

    def build_webhook(self, issue: FakeIssue, action: str, **extra: Any) -> OutgoingWebhook | None:
        """Provider hook: the signed delivery for this event, or None if it sends none."""
        return None

    def send_webhook(self, hook: OutgoingWebhook) -> None:
        with self.lock:
            self.sent_webhooks.append(hook)
        self._webhook_queue.put(hook)

    def _deliver_webhooks(self) -> None:
        session = requests.Session()
        while True:
            hook = self._webhook_queue.get()
            if hook is None:
                return
            try:
                self._deliver_one(session, hook)
            finally:
                self._webhook_queue.task_done()

    def _deliver_one(self, session: requests.Session, hook: OutgoingWebhook) -> None:
        sink = self.webhook_sink
        if sink is not None:
            try:
                sink(hook)
            except Exception:  # noqa: BLE001 - a failing sink must not kill the delivery thread
                return
            return
        if not self.webhook_url:
            return
        try:
            session.post(self.webhook_url, data=hook.body, headers=hook.headers, timeout=10)
        except requests.RequestException:
            return  # like a real tracker: the delivery is lost, polling must catch it

    def drain_webhooks(self, timeout: float = 5.0) -> None:
        """Wait until every queued webhook has been handed to the sink or posted."""
        deadline = time.monotonic() + timeout
        while self._webhook_queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    @staticmethod
    def new_delivery_id() -> str:
        return str(uuid.uuid4())

    # --- HTTP plumbing -------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return []

    def authorized(self, headers: dict[str, str]) -> bool:
        return True

    def etag_for(self, payload: bytes) -> str:
        return '"' + hashlib.sha1(payload).hexdigest() + '"'  # noqa: S324 - not security

    def rate_limit_headers(self) -> dict[str, str]:
        return {}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        tracker = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else ~40 ms per keep-alive answer

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _handle(self) -> None:
                tracker._dispatch(self)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = do_HEAD = _handle

        return Handler

    def _take_fault(
        self, method: str, path: str, query: dict[str, list[str]] | None = None
    ) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.count > 0 and fault.matches(method, path, query):
                    fault.count -= 1
                    if fault.count == 0:
                        self.faults.remove(fault)
                    return fault
        return None

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        split = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = RecordedRequest(
            method=handler.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={k: v for k, v in handler.headers.items()},
            body=body,
        )
        with self.lock:
            self.requests.append(record)
        response = self._respond(record)
        if record.hold is not None:
            record.hold.wait(30)
        record.status = response.status
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        headers = {
            "Content-Type": "application/json;charset=utf-8",
            **({"Date": self.server_date()} if self.sends_date else {}),
            **response.headers,
        }
        try:
            # Not send_response(): its Date is the machine's clock, ours is the tracker's.
            handler.send_response_only(response.status)
            handler.send_header("Server", handler.version_string())
            for name, value in headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            return

    def _respond(self, record: RecordedRequest) -> Response:
        fault = self._take_fault(record.method, record.path, record.query)
        if fault is not None:
            if fault.before is not None:
                fault.before()
            if fault.hang_seconds:
                time.sleep(fault.hang_seconds)
            if fault.apply_then_fail or fault.hold is not None or fault.after is not None:
                response = self._serve(record)
                if fault.after is not None:
                    fault.after()
                record.hold = fault.hold
                if fault.apply_then_fail and fault.status:
                    return Response(fault.status, {"message": "answer lost"})
                return response
            if fault.status:
                headers = dict(self.rate_limit_headers())
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                return Response(fault.status, {"message": f"injected {fault.status}"}, headers)
        return self._serve(record)

    def _serve(self, record: RecordedRequest) -> Response:
        if not self.authorized(record.headers):
            return Response(HTTPStatus.UNAUTHORIZED, {"message": "Bad credentials"})
        for method, pattern, view in self._routes:
            if method != record.method:
                continue
            match = pattern.fullmatch(record.path)
            if match is None:
                continue
            try:
                data: Any = json.loads(record.body) if record.body else None
            except ValueError:
                return Response(HTTPStatus.BAD_REQUEST, {"message": "Problems parsing JSON"})
            try:
                response = view(record, data, **match.groupdict())
            except HttpError as exc:
                return Response(exc.status, {"message": exc.message})
            response.headers = {**self.rate_limit_headers(), **response.headers}
            if record.method == "GET" and response.status == 200:
                etag = self.etag_for(json.dumps(response.body, sort_keys=True).encode())
                response.headers.setdefault("ETag", etag)
                if record.headers.get("If-None-Match") == etag:
                    return Response(HTTPStatus.NOT_MODIFIED, None, response.headers)
            return response
        return Response(HTTPStatus.NOT_FOUND, {"message": "Not Found"})

    # --- paging helper -------------------------------------------------------------------

    def paginate(
        self, record: RecordedRequest, items: list[Any], *, page_param: str, size_param: str
    ) -> tuple[list[Any], int, int, int]:
        """Slice `items` by the request's page/size; returns (page_items, page, size, pages)."""
        try:
            page = max(1, int(record.query.get(page_param, ["1"])[0]))
        except ValueError:
            page = 1
        try:
            size = int(record.query.get(size_param, [str(self.default_page_size)])[0])
        except ValueError:
            size = self.default_page_size
        size = max(1, min(size, self.max_page_size))
        pages = max(1, -(-len(items) // size))
        start = (page - 1) * size
        return items[start : start + size], page, size, pages

    def page_url(self, record: RecordedRequest, page: int) -> str:
        query = {k: v[0] for k, v in record.query.items()}
        query["page"] = str(page)
        return f"{self.url}{record.path}?{urlencode(query)}"

    def link_header(self, record: RecordedRequest, page: int, pages: int) -> str:
        links = []
        if page < pages:
            links.append(f'<{self.page_url(record, page + 1)}>; rel="next"')
            links.append(f'<{self.page_url(record, pages)}>; rel="last"')
        if page > 1:
            links.append(f'<{self.page_url(record, 1)}>; rel="first"')
            links.append(f'<{self.page_url(record, page - 1)}>; rel="prev"')
        return ", ".join(links)


# --- running a fake on its own (`python -m integrations.fake_trackers.<provider>`) -----------


def cli_parser(
    description: str,
    *,
    default_token: str | None = None,
    secret_help: str = "webhook secret",  # noqa: S107 - a help text, not a credential
) -> argparse.ArgumentParser:
    """The options every fake's command line takes; a provider adds its own before parsing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081, help="0 picks a free port")
    parser.add_argument("--repository", default="acme/widgets")
    parser.add_argument(
        "--token",
        default=default_token,
        help="the accepted API token" + (" (random when omitted)" if default_token is None else ""),
    )
    parser.add_argument("--webhook-url", default=None, help="where to send the webhooks")
    parser.add_argument("--secret", default="", help=secret_help)
    parser.add_argument("--seed", type=int, default=0, help="number of issues to create")
    return parser


def tracker_options(args: argparse.Namespace) -> dict[str, Any]:
    """`FakeTracker` keyword arguments from the options of `cli_parser`."""
    return {
        "repository": args.repository,
        "token": args.token or secrets.token_hex(20),
        "webhook_url": args.webhook_url,
        "webhook_secret": args.secret,
        "host": args.host,
        "port": args.port,
    }


def serve_cli(
    fake: FakeTracker, describe: Callable[[], list[str]], *, webhook_url: str | None = None
) -> int:
    """A fake's command line after parsing: start it, say where it serves (`describe` runs
    once the port is known), and serve until SIGTERM or Ctrl-C."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    fake.start()
    for line in describe():
        print(line, flush=True)
    if webhook_url:
        print(f"webhooks → {webhook_url}", flush=True)
    serve_until_interrupted(fake, stop)
    print("stopped", flush=True)
    return 0


def serve_until_interrupted(fake: FakeTracker, stop: threading.Event | None = None) -> None:
    """Block until Ctrl-C (or until `stop` is set), then stop the fake."""
    try:
        (stop or threading.Event()).wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
