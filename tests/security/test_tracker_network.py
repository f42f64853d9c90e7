"""SPEC §8: tracker requests never follow a redirect to another origin and never send
credentials anywhere but the connection's own origin; link-local and cloud-metadata addresses
are refused as tracker addresses, checked on the resolved address at connect time (DNS
rebinding); loopback and private ranges stay allowed; TRACKER_DENY_NETWORKS adds ranges.

Issue 11 finding 3 (repro): base_url accepted http://169.254.169.254/…, and GitLab's
PRIVATE-TOKEN went with a 302 to another origin. Every listener here is on loopback; no test
connects to a refused address (the refusal comes before any connect).
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from django.test import Client, override_settings

from integrations import providers
from integrations.providers.base import PermanentError, ProviderClient
from integrations.providers.http import build_session
from tests.api.conftest import World, client_with
from tests.security.listeners import listening

SECRET = "sx-tracker-secret-0123456789"
REFUSED_URLS = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.169.254/latest/meta-data/",
    "http://169.254.1.1:3000",
    "http://[fe80::1]:3000",
    "http://[fd00:ec2::254]/",
    "http://[::ffff:169.254.169.254]/",
    "http://metadata.google.internal/computeMetadata/v1/",
]


def _client(provider: str, base_url: str) -> ProviderClient:
    return providers.client_class(provider)(
        base_url=base_url, repository="acme/widgets", token=SECRET, timeout=5, max_retries=0
    )


# --- base_url on write -----------------------------------------------------------------------


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_refused_address_cannot_be_saved_through_the_api(world: World, url: str) -> None:
    client = client_with(world.staff_key)
    created = client.post(
        "/api/v1/sync/configs/",
        {"name": "n", "provider": "gitea", "base_url": url, "repository": "a/b", "api_token": "t"},
        format="json",
    )
    assert created.status_code == 400 and "base_url" in created.json(), created.content
    moved = client.patch(
        f"/api/v1/sync/configs/{world.alpha.pk}/",
        {"base_url": url, "api_token": "t"},
        format="json",
    )
    assert moved.status_code == 400 and "base_url" in moved.json()
    world.alpha.refresh_from_db()
    assert world.alpha.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_x"])
def test_only_http_and_https_base_urls(world: World, url: str) -> None:
    response = client_with(world.staff_key).patch(
        f"/api/v1/sync/configs/{world.alpha.pk}/",
        {"base_url": url, "api_token": "t"},
        format="json",
    )
    assert response.status_code == 400


def test_a_refused_address_cannot_be_saved_in_the_admin(world: World, admin_client: Client) -> None:
    from tests.security.test_connection_writes import _admin_form

    response = admin_client.post(
        f"/admin/integrations/connection/{world.alpha.pk}/change/",
        _admin_form(world.alpha, base_url="http://169.254.169.254/", api_token="t"),
    )
    assert response.status_code == 200 and "Not a tracker address" in response.content.decode()
    world.alpha.refresh_from_db()
    assert world.alpha.base_url == "http://127.0.0.1:9"


@pytest.mark.parametrize("url", ["http://127.0.0.1:3000", "http://10.1.2.3", "http://[::1]:3000"])
def test_loopback_and_private_addresses_stay_allowed(world: World, url: str) -> None:
    response = client_with(world.staff_key).patch(
        f"/api/v1/sync/configs/{world.alpha.pk}/",
        {"base_url": url, "api_token": "t"},
        format="json",
    )
    assert response.status_code == 200, response.content


# --- at connect time -------------------------------------------------------------------------


@pytest.mark.parametrize("url", REFUSED_URLS)
def test_a_client_never_connects_to_a_refused_address(url: str) -> None:
    client = _client("gitea", url)
    with pytest.raises(PermanentError, match="refused"):
        client.get_issue("1")


def test_dns_rebinding_is_refused_at_connect_time(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name resolves to loopback when the connection is saved, and to the metadata
    address when the client connects: the check inside the connection refuses it."""
    from integrations.providers import netguard  # here: the repro must run on the old code

    answers = iter(["127.0.0.1", "169.254.169.254"])

    def rebinding(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "rebind.test":
            return socket.getaddrinfo(host, port, *args, **kwargs)
        address = next(answers)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 80)))]

    monkeypatch.setattr(netguard, "resolve", rebinding)
    saved = client_with(world.staff_key).patch(
        f"/api/v1/sync/configs/{world.alpha.pk}/",
        {"base_url": "http://rebind.test:3000", "api_token": SECRET},
        format="json",
    )
    assert saved.status_code == 200, saved.content
    with pytest.raises(PermanentError, match=r"169\.254\.169\.254"):
        _client("gitea", "http://rebind.test:3000").get_issue("1")


def test_tracker_deny_networks_adds_ranges() -> None:
    with listening() as tracker:
        with override_settings(TRACKER_DENY_NETWORKS=["127.0.0.0/8"]):
            with pytest.raises(PermanentError, match="refused"):
                _client("gitea", tracker.url).get_issue("1")
        assert tracker.seen == []  # not even a connection carried a request


# --- redirects -------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["gitea", "github", "gitlab"])
def test_no_credential_follows_a_redirect_to_another_origin(provider: str) -> None:
    with listening() as elsewhere, listening() as tracker:
        tracker.answer = lambda seen: (302, {"Location": f"{elsewhere.url}/steal"}, b"")
        with pytest.raises(PermanentError, match="another origin"):
            _client(provider, tracker.url).get_issue("1")
        assert len(tracker.seen) == 1
        assert any(SECRET in header for header in tracker.credentials_seen())
        assert elsewhere.seen == []  # nothing sent there, credentials least of all


def test_a_redirect_within_the_origin_is_followed() -> None:
    with listening() as tracker:

        def answer(seen: Any) -> tuple[int, dict[str, str], bytes]:
            if seen.path == "/old":
                return 301, {"Location": "/new"}, b""
            return 200, {"Content-Type": "application/json"}, b'{"ok": true}'

        tracker.answer = answer
        session = build_session(max_retries=0)
        session.headers["PRIVATE-TOKEN"] = SECRET
        response = session.get(f"{tracker.url}/old", timeout=5)
        assert response.json() == {"ok": True}
        assert [s.path for s in tracker.seen] == ["/old", "/new"]


def test_a_redirect_to_another_scheme_on_the_same_host_is_another_origin() -> None:
    with listening() as tracker:
        port = tracker.url.rsplit(":", 1)[1]
        tracker.answer = lambda seen: (302, {"Location": f"https://127.0.0.1:{port}/x"}, b"")
        with pytest.raises(PermanentError, match="another origin"):
            _client("gitlab", tracker.url).get_issue("1")
        assert len(tracker.seen) == 1


def test_a_ca_bundle_from_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    """trust_env is off (no proxies, no ~/.netrc), but a private CA keeps working."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    assert build_session().verify == "/etc/ssl/certs/ca-certificates.crt"
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert build_session().trust_env is False


def test_the_listener_sees_the_credentials_it_should() -> None:
    """The recorder itself works: the tracker's own origin gets its token."""
    with listening() as tracker:
        tracker.answer = lambda seen: (404, {}, b"{}")
        with pytest.raises(PermanentError):
            _client("gitlab", tracker.url).get_issue("1")
        assert [c for c in tracker.credentials_seen() if SECRET in c]
