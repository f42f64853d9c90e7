"""Where tracker requests may go: refused addresses, checked at connect time, and redirects.

Why: a connection's `base_url` is chosen by whoever may write connections, and the scheduler
calls it with the stored token within seconds. Link-local and cloud-metadata addresses
(169.254.0.0/16 — 169.254.169.254 is the metadata service of AWS, GCP, Azure —, fe80::/10,
fd00:ec2::254, `metadata.google.internal`) are never a tracker: they are refused, plus
whatever `TRACKER_DENY_NETWORKS` adds. Loopback and private ranges stay allowed on purpose
(self-hosted trackers, the demo and the tests).

The check runs on the RESOLVED address inside the connection, and the socket connects to
exactly the address that was checked: a name that resolved to an allowed address when the
connection was saved and to 169.254.169.254 now (DNS rebinding) is refused, because there is
no second lookup between the check and the connect (the approach of Sentry's
`safe_socket_connect`).

Redirects: a tracker answer may redirect within its own origin (scheme, host and port), never
to another one: credentials (GitLab's `PRIVATE-TOKEN`, which requests does not strip) must
not leave the connection's origin.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family
from urllib3.util.timeout import _DEFAULT_TIMEOUT

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_DENIED_NETWORKS = ("169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128")
# Names of metadata services, refused before any lookup (they may resolve to anything).
DENIED_HOSTNAMES = frozenset({"metadata.google.internal", "metadata.goog", "metadata"})

# The resolver, a module attribute so that a test can stand in for DNS (rebinding).
resolve = socket.getaddrinfo


class AddressRefused(Exception):
    """A tracker address is on the deny list. Not an OSError on purpose: urllib3 must not
    retry it as a connection failure."""


class RedirectRefused(Exception):
    """A tracker answered with a redirect to another origin; it was not followed."""


@cache
def _parse_networks(extra: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(
        ipaddress.ip_network(text.strip(), strict=False)
        for text in (*DEFAULT_DENIED_NETWORKS, *extra)
        if text.strip()
    )


def denied_networks() -> tuple[IPNetwork, ...]:
    """The built-in ranges plus `TRACKER_DENY_NETWORKS` (read per call: a test or an operator
    changing the setting takes effect at once)."""
    from django.conf import settings

    extra = tuple(getattr(settings, "TRACKER_DENY_NETWORKS", ()) or ())
    return _parse_networks(extra)


def is_denied_address(address: str | IPAddress) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0] if isinstance(address, str) else address)
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)  # ::ffff:169.254.169.254 is 169.254.169.254
    return any(c in network for c in candidates for network in denied_networks())


def is_denied_hostname(host: str) -> bool:
    return host.rstrip(".").lower() in DENIED_HOSTNAMES


def check_host(host: str, port: int | None = None) -> None:
    """Raise AddressRefused if `host` is a refused name, or resolves to a refused address.
    A name that does not resolve passes: the connect-time check decides when it does."""
    if is_denied_hostname(host):
        raise AddressRefused(f"{host} is a cloud metadata address")
    try:
        infos = resolve(host, port or 443, 0, socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return
    for *_, sockaddr in infos:
        if is_denied_address(str(sockaddr[0])):
            raise AddressRefused(f"{host} resolves to {sockaddr[0]}, a refused address")


def check_url(url: str) -> None:
    """For a connection's base_url: http/https only, and not a refused address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise AddressRefused("only http and https URLs are allowed")
    if not parts.hostname:
        raise AddressRefused("the URL has no host")
    try:
        port = parts.port
    except ValueError:
        raise AddressRefused("the URL's port is not a number") from None
    check_host(parts.hostname, port)


def guarded_connect(
    address: tuple[str, int],
    timeout: Any = _DEFAULT_TIMEOUT,
    source_address: tuple[str, int] | None = None,
    socket_options: Any = None,
) -> socket.socket:
    """urllib3's create_connection, except that every resolved address is checked and the
    socket connects to exactly the address checked (no second lookup)."""
    host, port = address
    host = host.strip("[]")
    if is_denied_hostname(host):
        raise AddressRefused(f"{host} is a cloud metadata address")
    infos = resolve(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    # All of them first: a name that resolves to a refused address is refused outright,
    # whichever address would have answered.
    for *_, sockaddr in infos:
        if is_denied_address(str(sockaddr[0])):
            raise AddressRefused(f"{host} resolves to {sockaddr[0]}, a refused address")
    error: OSError | None = None
    for family, socktype, proto, _canonname, sockaddr in infos:
        sock = None
        try:
            sock = socket.socket(family, socktype, proto)
            for option in socket_options or ():
                sock.setsockopt(*option)
            if timeout is not _DEFAULT_TIMEOUT:
                sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(sockaddr)
            return sock
        except OSError as exc:
            error = exc
            if sock is not None:
                sock.close()
    raise error or OSError(f"getaddrinfo returned nothing for {host}")


class _GuardedConnectionMixin:
    """urllib3's HTTPConnection._new_conn with guarded_connect in place of create_connection."""

    host: str
    port: int
    timeout: Any
    source_address: tuple[str, int] | None
    socket_options: Any
    _dns_host: str

    def _new_conn(self) -> socket.socket:
        try:
            return guarded_connect(
                (self._dns_host, self.port),
                self.timeout,
                source_address=self.source_address,
                socket_options=self.socket_options,
            )
        except socket.gaierror as exc:
            raise NameResolutionError(self.host, self, exc) from exc  # type: ignore[arg-type]
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={self.timeout})"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(
                self,  # type: ignore[arg-type]
                f"Failed to establish a new connection: {exc}",
            ) from exc


class GuardedHTTPConnection(_GuardedConnectionMixin, HTTPConnection):
    pass


class GuardedHTTPSConnection(_GuardedConnectionMixin, HTTPSConnection):
    pass


class GuardedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = GuardedHTTPConnection


class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = GuardedHTTPSConnection


class GuardedAdapter(HTTPAdapter):
    """An HTTPAdapter whose connections check the resolved address before connecting."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": GuardedHTTPConnectionPool,
            "https": GuardedHTTPSConnectionPool,
        }

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        # Through a proxy the proxy connects, and nothing here could check where to.
        raise AddressRefused("tracker requests do not go through proxies")


def origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


class SameOriginSession(requests.Session):
    """Follows a redirect only within the origin of the request that got it; a redirect to
    any other origin raises RedirectRefused (nothing is sent there, credentials least of all)."""

    def __init__(self) -> None:
        super().__init__()
        # No proxies from the environment (see GuardedAdapter) and no ~/.netrc credentials
        # added to requests: every header a tracker request carries is set by its client.
        self.trust_env = False
        # What trust_env would also drop: a CA bundle named in the environment, which
        # self-hosted trackers behind a private CA rely on.
        bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE")
        if bundle:
            self.verify = bundle

    def get_redirect_target(self, response: requests.Response) -> str | None:
        target = super().get_redirect_target(response)
        if target is None:
            return None
        absolute = requests.compat.urljoin(response.url, target)
        if origin(absolute) != origin(response.url):
            raise RedirectRefused(
                f"the tracker redirected to another origin ({origin(absolute)[1] or '?'}); "
                "not followed"
            )
        return target
