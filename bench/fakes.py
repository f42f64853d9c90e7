"""The fake trackers as the benchmarks run them: the project's fakes, plus two bench-only
changes and a small control API.

* Speed at 10,000 issues: the fake Gitea renders every matching issue before slicing out a
  page, and both fakes count a milestone's issues by scanning all issues for every issue
  they render. Here Gitea slices first, keeps the filtered and sorted selection from one
  page to the next while no issue changed (a full listing was 200 filters and sorts of
  10,000 issues: two thirds of the fake's CPU, competing with ours on this machine), and a
  milestone is rendered once per request. The JSON on the wire is unchanged; only the fake's
  own cost (which a real tracker does not add to our machine) goes down.
* Control routes under `/_bench/` (same token as the API), so the harness can drive a fake
  that runs in another process: seed, edit (capturing the signed webhooks instead of
  sending them), count requests, reset the counters, set the webhook URL. They are not
  counted as API requests.

`python -m bench.fakes --provider gitea` serves one until its stdin closes (the harness
keeps the pipe; if the harness dies, the fake exits) and prints one JSON line with its URLs.
"""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import signal
import sys
import threading
from collections import Counter
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any

import requests

from integrations.fake_trackers.base import (
    FakeIssue,
    FakeTracker,
    HttpError,
    OutgoingWebhook,
    RecordedRequest,
    Response,
    Route,
    utcnow,
)
from integrations.fake_trackers.gitea import FakeGitea
from integrations.fake_trackers.github import FakeGitHub
from integrations.providers.http import parse_timestamp

CONTROL_PREFIX = "/_bench/"
USERS = ["alice", "bob", "carol", "dave"]


class BenchFakeMixin:
    """Mixed into a FakeTracker subclass (listed first, so its methods win)."""

    _bench_local: threading.local

    def _bench_setup(self) -> None:
        self._bench_local = threading.local()

    # --- speed ---------------------------------------------------------------------------

    def _respond(self, record: RecordedRequest) -> Response:
        self._bench_local.milestones = {}
        try:
            return super()._respond(record)  # type: ignore[misc]
        finally:
            self._bench_local.milestones = None

    def render_milestone(self, title: str) -> dict[str, Any]:
        cache = getattr(self._bench_local, "milestones", None)
        if cache is None:
            return super().render_milestone(title)  # type: ignore[misc]
        if title not in cache:
            cache[title] = super().render_milestone(title)  # type: ignore[misc]
        rendered: dict[str, Any] = cache[title]
        return rendered

    # --- webhooks: captured while a control call edits ----------------------------------

    def send_webhook(self, hook: OutgoingWebhook) -> None:
        capture = getattr(self._bench_local, "capture", None)
        if capture is not None:
            capture.append(hook)
            return
        super().send_webhook(hook)  # type: ignore[misc]

    # --- control routes ------------------------------------------------------------------

    def control_routes(self) -> list[Route]:
        def route(method: str, name: str, view: Any) -> Route:
            return method, re.compile(re.escape(CONTROL_PREFIX + name)), view

        return [
            route("POST", "seed", self._ctl_seed),
            route("POST", "edit", self._ctl_edit),
            route("GET", "stats", self._ctl_stats),
            route("POST", "reset", self._ctl_reset),
            route("POST", "config", self._ctl_config),
            route("GET", "state", self._ctl_state),
        ]

    def _ctl_seed(self, record: RecordedRequest, data: Any, **_: str) -> Response:
        """`count` varied issues, all last updated in the past (so a poll `since` now finds
        none of them), reproducibly."""
        tracker: FakeTracker = self  # type: ignore[assignment]
        count = int(data.get("count", 0))
        rng = random.Random(int(data.get("seed", 7)))  # noqa: S311 - test data
        start = utcnow().replace(microsecond=0) - timedelta(seconds=count + 3600)
        labels = list(tracker.known_labels[:3])
        milestones = [None, *tracker.known_milestones[:2]]
        numbers = []
        for n in range(count):
            issue = tracker.seed_issue(
                title=f"Bench issue {n + 1}",
                body=f"Body of bench issue {n + 1}.\n\nSteps to reproduce: open, save, look.",
                state="closed" if rng.random() < 0.2 else "open",
                labels=rng.sample(labels, rng.randint(0, 2)),
                assignees=rng.sample(USERS, rng.randint(0, 2)),
                milestone=rng.choice(milestones),
                updated_at=start + timedelta(seconds=n),
            )
            numbers.append(issue.number)
        return Response(HTTPStatus.OK, {"numbers": numbers})

    def _ctl_edit(self, record: RecordedRequest, data: Any, **_: str) -> Response:
        """Edit issues as a human in the tracker would; return the webhooks that produced
        (signed, not sent) when `capture` is true, else send them to the webhook URL."""
        tracker: FakeTracker = self  # type: ignore[assignment]
        capture: list[OutgoingWebhook] | None = [] if data.get("capture", True) else None
        self._bench_local.capture = capture
        try:
            for edit in data.get("edits", []):
                try:
                    tracker.edit_issue(int(edit["number"]), notify=True, **edit["changes"])
                except KeyError as exc:
                    raise HttpError(HTTPStatus.NOT_FOUND, f"no issue {edit!r}") from exc
        finally:
            self._bench_local.capture = None
        hooks = [
            {"headers": h.headers, "body": base64.b64encode(h.body).decode("ascii")}
            for h in capture or []
        ]
        return Response(HTTPStatus.OK, {"hooks": hooks})

    def _ctl_stats(self, record: RecordedRequest, data: Any, **_: str) -> Response:
        tracker: FakeTracker = self  # type: ignore[assignment]
        with tracker.lock:
            api = [r for r in tracker.requests if not r.path.startswith(CONTROL_PREFIX)]
        by_method = Counter(r.method for r in api)
        by_status = Counter(str(r.status) for r in api)
        return Response(
            HTTPStatus.OK,
            {"total": len(api), "by_method": dict(by_method), "by_status": dict(by_status)},
        )

    def _ctl_reset(self, record: RecordedRequest, data: Any, **_: str) -> Response:
        tracker: FakeTracker = self  # type: ignore[assignment]
        tracker.reset_requests()
        return Response(HTTPStatus.OK, {"ok": True})

    def _ctl_config(self, record: RecordedRequest, data: Any, **_: str) -> Response:
        tracker: FakeTracker = self  # type: ignore[assignment]
        if "webhook_url" in data:
            tracker.webhook_url = data["webhook_url"] or None
        return Response(HTTPStatus.OK, {"ok": True})

    def _ctl_state(self, record: RecordedRequest, data: Any, **_: str) -> Response:
        """Every issue's synced fields, by number (to check the mirror against)."""
        tracker: FakeTracker = self  # type: ignore[assignment]
        with tracker.lock:
            state = {str(i.number): i.snapshot() for i in tracker.issues.values()}
        return Response(HTTPStatus.OK, state)


class BenchFakeGitea(BenchFakeMixin, FakeGitea):
    def __init__(self, **kwargs: Any) -> None:
        self._bench_setup()
        self._bench_stamps = 0
        self._bench_listing: tuple[tuple[Any, ...], list[FakeIssue]] | None = None
        super().__init__(**kwargs)

    def now(self) -> datetime:
        # Every change to an issue stamps it from this clock (a seed with its own stamp also
        # adds an issue): counted, it tells the listing that its selection may be stale.
        with self.lock:
            self._bench_stamps += 1
            return super().now()

    def routes(self) -> list[Route]:
        return [*super().routes(), *self.control_routes()]

    def _list_issues(self, record: RecordedRequest, data: Any, owner: str, repo: str) -> Response:
        """FakeGitea's listing (same filters, order, headers and JSON), rendering only the
        page asked for."""
        self._repo_guard(owner, repo)
        state = self._query(record, "state") or "open"
        if state not in ("open", "closed", "all"):
            state = "open"
        kind = self._query(record, "type")
        bounds = {}
        for name in ("since", "before"):
            raw = self._query(record, name)
            bounds[name] = parse_timestamp(raw) if raw else None
            if raw and bounds[name] is None:
                raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, f"invalid {name}: {raw!r}")
        since, before = bounds["since"], bounds["before"]
        with self.lock:
            # The issues unchanged since the last page was listed (no stamp taken from the
            # clock, none added or removed): the same selection, not filtered and sorted again.
            key = (state, kind, since, before, self._bench_stamps, len(self.issues), self.next_id)
            if self._bench_listing is not None and self._bench_listing[0] == key:
                selected = self._bench_listing[1]
            else:
                selected = [
                    issue
                    for issue in self.issues.values()
                    if state in ("all", issue.state)
                    and not (kind == "issues" and issue.is_pull_request)
                    and not (kind == "pulls" and not issue.is_pull_request)
                    and (since is None or issue.updated_at >= since)
                    and (before is None or issue.updated_at <= before)
                ]
                selected.sort(key=lambda i: (i.created_at, i.id), reverse=True)
                self._bench_listing = (key, selected)
            response = self._paged(record, selected)
            response.body = [self.render_issue(issue) for issue in response.body]
        return response


class BenchFakeGitHub(BenchFakeMixin, FakeGitHub):
    def __init__(self, **kwargs: Any) -> None:
        self._bench_setup()
        kwargs.setdefault("rate_limit", 10**9)  # the budget is not what is measured
        super().__init__(**kwargs)

    def routes(self) -> list[Route]:
        return [*super().routes(), *self.control_routes()]


FAKES: dict[str, type[FakeTracker]] = {"gitea": BenchFakeGitea, "github": BenchFakeGitHub}


def base_url_of(fake: FakeTracker) -> str:
    """What a connection's base_url is: the web root (Gitea), the API root (GitHub)."""
    return getattr(fake, "api_url", fake.url)


class FakeHandle:
    """The harness's view of one fake, in this process or another: control over HTTP."""

    def __init__(
        self,
        *,
        provider: str,
        url: str,
        base_url: str,
        token: str,
        repository: str,
        secret: str,
        max_page_size: int,
        stop: Any = None,
    ) -> None:
        self.provider = provider
        self.url = url
        self.base_url = base_url
        self.token = token
        self.repository = repository
        self.secret = secret
        self.max_page_size = max_page_size
        self._stop = stop
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"token {token}"

    def _call(self, method: str, name: str, payload: Any = None) -> Any:
        response = self._session.request(
            method, self.url + CONTROL_PREFIX + name, json=payload, timeout=300
        )
        response.raise_for_status()
        return response.json()

    def seed(self, count: int, *, seed: int = 7) -> list[int]:
        numbers: list[int] = self._call("POST", "seed", {"count": count, "seed": seed})["numbers"]
        return numbers

    def edit(self, edits: list[dict[str, Any]], *, capture: bool = True) -> list[OutgoingWebhook]:
        """Apply edits ({"number", "changes"}); the signed webhooks they produced."""
        hooks = self._call("POST", "edit", {"edits": edits, "capture": capture})["hooks"]
        return [
            OutgoingWebhook(
                event=h["headers"].get("X-Gitea-Event-Type")
                or h["headers"].get("X-GitHub-Event", ""),
                headers=h["headers"],
                body=base64.b64decode(h["body"]),
                delivery_id="",
            )
            for h in hooks
        ]

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "stats")
        return result

    def reset(self) -> None:
        self._call("POST", "reset")

    def set_webhook_url(self, url: str | None) -> None:
        self._call("POST", "config", {"webhook_url": url})

    def state(self) -> dict[str, dict[str, Any]]:
        result: dict[str, dict[str, Any]] = self._call("GET", "state")
        return result

    def close(self) -> None:
        self._session.close()
        if self._stop is not None:
            self._stop()
            self._stop = None


def make_fake(
    provider: str, *, token: str, secret: str, repository: str = "bench/widgets"
) -> FakeTracker:
    fake = FAKES[provider](repository=repository, token=token, webhook_secret=secret)
    fake.known_users.update(USERS)
    return fake


def start_in_process(
    provider: str, *, token: str, secret: str, repository: str = "bench/widgets"
) -> FakeHandle:
    fake = make_fake(provider, token=token, secret=secret, repository=repository).start()
    return FakeHandle(
        provider=provider,
        url=fake.url,
        base_url=base_url_of(fake),
        token=token,
        repository=repository,
        secret=secret,
        max_page_size=fake.max_page_size,
        stop=fake.stop,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A bench fake tracker on loopback.")
    parser.add_argument("--provider", choices=sorted(FAKES), required=True)
    parser.add_argument("--repository", default="bench/widgets")
    parser.add_argument("--token", required=True)
    parser.add_argument("--secret", required=True)
    args = parser.parse_args(argv)
    fake = make_fake(
        args.provider, token=args.token, secret=args.secret, repository=args.repository
    ).start()
    print(
        json.dumps(
            {"url": fake.url, "base_url": base_url_of(fake), "max_page_size": fake.max_page_size}
        ),
        flush=True,
    )
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        sys.stdin.read()  # until the harness closes the pipe (or dies)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
