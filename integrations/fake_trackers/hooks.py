"""The repository hooks of a fake tracker: list, create, update, delete, with an `active`
flag, and the fake's deliveries going to the hook registered through the API.

A fake built with `webhook_url=` keeps delivering there until a hook is registered (the
existing suites post to the intake without registering anything); once any hook exists,
deliveries follow the first active one — its URL and secret — and stop when none is active.
"""

from __future__ import annotations

import dataclasses
from http import HTTPStatus
from typing import Any

from integrations.fake_trackers.base import FakeTracker, HttpError, Response


@dataclasses.dataclass
class FakeHook:
    id: int
    url: str
    secret: str
    events: list[str]
    active: bool = True
    content_type: str = "json"
    # Provider-specific fields the fake keeps and renders back (GitLab's flags).
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


class HookRegistry:
    """Mixed into a FakeTracker: `self.hooks` by id, and the helpers its routes call."""

    @property
    def hooks(self) -> dict[int, FakeHook]:
        # Lazily: FakeTracker.__init__ builds the routes before a subclass sets its state.
        found: dict[int, FakeHook] | None = self.__dict__.get("_hooks")
        if found is None:
            found = self.__dict__["_hooks"] = {}
        return found

    def add_hook(self, **fields: Any) -> FakeHook:
        tracker = self._tracker()
        with tracker.lock:
            hook = FakeHook(id=max(self.hooks, default=0) + 1, **fields)
            self.hooks[hook.id] = hook
            self._follow_hooks()
            return hook

    def hook_or_404(self, hook_id: str | int) -> FakeHook:
        hook = self.hooks.get(int(hook_id))
        if hook is None:
            raise HttpError(HTTPStatus.NOT_FOUND, "Not Found")
        return hook

    def delete_hook(self, hook_id: str | int) -> None:
        with self._tracker().lock:
            self.hook_or_404(hook_id)
            del self.hooks[int(hook_id)]
            self._follow_hooks()

    def set_hook_active(self, hook_id: str | int, active: bool) -> None:
        """What a tracker does to a hook whose deliveries keep failing (or a user's click)."""
        with self._tracker().lock:
            self.hook_or_404(hook_id).active = active
            self._follow_hooks()

    def changed_hook(self) -> None:
        with self._tracker().lock:
            self._follow_hooks()

    def _follow_hooks(self) -> None:
        tracker = self._tracker()
        active = [h for h in sorted(self.hooks.values(), key=lambda h: h.id) if h.active]
        if active:
            tracker.webhook_url, tracker.webhook_secret = active[0].url, active[0].secret
        else:
            tracker.webhook_url = None

    def _tracker(self) -> FakeTracker:
        assert isinstance(self, FakeTracker)
        return self

    @staticmethod
    def hook_body(data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "the body is not an object")
        return data

    @staticmethod
    def hook_url(value: Any) -> str:
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "config.url is invalid")
        return value


def _events(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(e, str) for e in value):
        raise HttpError(HTTPStatus.UNPROCESSABLE_ENTITY, "events must be a list of strings")
    return list(value)


class RepoHooks(HookRegistry):
    """Gitea's and GitHub's shape: `{id, type|name, config: {url, content_type}, events,
    active}`; neither returns the secret (GitHub masks it)."""

    hook_kind_key = "type"
    provider_hook_kind = "gitea"
    masked_secret: str | None = None

    def render_hook(self, hook: FakeHook) -> dict[str, Any]:
        config: dict[str, Any] = {"url": hook.url, "content_type": hook.content_type}
        if self.masked_secret is not None and hook.secret:
            config["secret"] = self.masked_secret
        return {
            "id": hook.id,
            self.hook_kind_key: self.provider_hook_kind,
            "config": config,
            "events": list(hook.events),
            "active": hook.active,
        }

    def list_hooks_view(self) -> Response:
        with self._tracker().lock:
            return Response(HTTPStatus.OK, [self.render_hook(h) for h in self.hooks.values()])

    def create_hook_view(self, data: Any) -> Response:
        body = self.hook_body(data)
        config = self.hook_body(body.get("config"))
        hook = self.add_hook(
            url=self.hook_url(config.get("url")),
            secret=str(config.get("secret") or ""),
            events=_events(body.get("events")) or ["push"],
            active=bool(body.get("active", True)),
            content_type=str(config.get("content_type") or "form"),
        )
        return Response(HTTPStatus.CREATED, self.render_hook(hook))

    def update_hook_view(self, data: Any, hook_id: str) -> Response:
        body = self.hook_body(data)
        with self._tracker().lock:
            hook = self.hook_or_404(hook_id)
            config = body.get("config")
            if config is not None:
                config = self.hook_body(config)
                if "url" in config:
                    hook.url = self.hook_url(config["url"])
                if "secret" in config:
                    hook.secret = str(config["secret"] or "")
                if "content_type" in config:
                    hook.content_type = str(config["content_type"])
            if "events" in body:
                hook.events = _events(body["events"])
            if "active" in body:
                hook.active = bool(body["active"])
            self.changed_hook()
            return Response(HTTPStatus.OK, self.render_hook(hook))

    def get_hook_view(self, hook_id: str) -> Response:
        with self._tracker().lock:
            return Response(HTTPStatus.OK, self.render_hook(self.hook_or_404(hook_id)))

    def delete_hook_view(self, hook_id: str) -> Response:
        self.delete_hook(hook_id)
        return Response(HTTPStatus.NO_CONTENT)


class ProjectHooks(HookRegistry):
    """GitLab's shape: `{id, url, issues_events, note_events, push_events, alert_status}`;
    the secret (`token`) is write-only. A disabled hook has `alert_status: "disabled"`;
    saving it (PUT) makes it executable again, as on GitLab."""

    flags = ("issues_events", "note_events", "push_events", "confidential_issues_events")

    def render_hook(self, hook: FakeHook) -> dict[str, Any]:
        return {
            "id": hook.id,
            "url": hook.url,
            **{flag: flag in hook.events for flag in self.flags},
            "enable_ssl_verification": True,
            "alert_status": "executable" if hook.active else "disabled",
        }

    def _flags(self, body: dict[str, Any], current: list[str]) -> list[str]:
        events = set(current)
        for flag in self.flags:
            if flag in body:
                (events.add if body[flag] else events.discard)(flag)
        return sorted(events)

    def list_hooks_view(self) -> Response:
        with self._tracker().lock:
            return Response(HTTPStatus.OK, [self.render_hook(h) for h in self.hooks.values()])

    def create_hook_view(self, data: Any) -> Response:
        body = self.hook_body(data)
        hook = self.add_hook(
            url=self.hook_url(body.get("url")),
            secret=str(body.get("token") or ""),
            events=self._flags(body, ["push_events"]),
        )
        return Response(HTTPStatus.CREATED, self.render_hook(hook))

    def update_hook_view(self, data: Any, hook_id: str) -> Response:
        body = self.hook_body(data)
        with self._tracker().lock:
            hook = self.hook_or_404(hook_id)
            hook.url = self.hook_url(body.get("url"))  # GitLab's PUT requires the url
            if "token" in body:
                hook.secret = str(body["token"] or "")
            hook.events = self._flags(body, hook.events)
            hook.active = True
            self.changed_hook()
            return Response(HTTPStatus.OK, self.render_hook(hook))

    def get_hook_view(self, hook_id: str) -> Response:
        with self._tracker().lock:
            return Response(HTTPStatus.OK, self.render_hook(self.hook_or_404(hook_id)))

    def delete_hook_view(self, hook_id: str) -> Response:
        self.delete_hook(hook_id)
        return Response(HTTPStatus.NO_CONTENT)
