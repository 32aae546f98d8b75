"""SSRF guard: connectors fetch URLs that operators type in, so they must not reach inside.

A data source's `base_url` (or a generic API's `url`) is user input. Without a guard, a job
could read a cloud metadata endpoint (`169.254.169.254` hands out instance credentials), the
database port on localhost, or any service on the private network. The rule: every address a
host name resolves to must be public, unless an operator allowed its network in
`DASHIN_SSRF_ALLOW` (tests and `dashin up --demo` allow 127.0.0.1 for the emulators).

Checking a URL once and then letting the HTTP library resolve the name again leaves a hole: a
hostile DNS server can answer with a public address for the check and a private one for the
connection (DNS rebinding). So the check lives where the socket is opened: `GuardedTransport`
is an `httpx.HTTPTransport` whose network backend resolves the name once, refuses the connection
if ANY answer is not allowed, and connects to the checked address itself. TLS still verifies
the certificate against the host name (httpcore passes the origin host as SNI), redirects open
new connections through the same backend, and environment proxies are off (a proxy would make
the guard check the proxy instead of the target). `getaddrinfo` takes no timeout (a dead resolver
can hold it for tens of seconds), so the guard resolves in a small thread pool and gives up after
the connect timeout: a `ConnectTimeout`, which the HTTP layer retries (nothing was sent).

`check_url` is the same check for a URL without connecting, for validating configuration early.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network
from typing import Any

import httpcore
import httpx

from connectors.errors import ConfigError

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

__all__ = ["GuardedTransport", "IPNetwork", "check_url", "classify", "resolve_checked"]

ALLOWED_SCHEMES = frozenset({"http", "https"})

#: instance metadata services: AWS/GCP/Azure/OpenStack/DigitalOcean, AWS over IPv6, Alibaba
METADATA_ADDRESSES = frozenset(
    {ip_address("169.254.169.254"), ip_address("fd00:ec2::254"), ip_address("100.100.100.200")}
)
_CGNAT = ip_network("100.64.0.0/10")
_NAT64 = ip_network("64:ff9b::/96")


def classify(address: IPAddress) -> str | None:
    """Why `address` must not be reached (a category name), or None when it is public."""
    if isinstance(address, IPv6Address):
        embedded = address.ipv4_mapped or _nat64_embedded(address)
        if embedded is not None:
            return classify(embedded)
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    checks = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("carrier-grade NAT", isinstance(address, IPv4Address) and address in _CGNAT),
        ("reserved", address.is_reserved),
        ("private", address.is_private),
        ("non-global", not address.is_global),
    )
    for category, hit in checks:
        if hit:
            return category
    return None


def _nat64_embedded(address: IPv6Address) -> IPv4Address | None:
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _allowed(address: IPAddress, allow: Iterable[IPNetwork]) -> bool:
    return any(address.version == net.version and address in net for net in allow)


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in resolver order (IP literals resolve to themselves).

    A module-level seam so tests can stand in for DNS; raises `OSError` when resolution fails.
    """
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    out: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ip_address(str(sockaddr[0]).split("%", 1)[0])  # drop an IPv6 scope id
        if address not in out:
            out.append(address)
    return out


def resolve_checked(host: str, port: int, allow: Sequence[IPNetwork]) -> list[IPAddress]:
    """Resolve `host` and return its addresses if ALL may be reached, else raise `ConfigError`."""
    addresses = resolve(host, port)
    if not addresses:
        raise OSError(f"{host} resolved to no address")
    for address in addresses:
        category = classify(address)
        if category is not None and not _allowed(address, allow):
            raise ConfigError(_refusal(host, address, category))
    return addresses


def _refusal(host: str, address: IPAddress, category: str) -> str:
    """The refusal names the host and the rule it broke, never the address a name resolved to:
    the message reaches tenants (a data source test, a job's error), and internal addresses
    are what an attacker probing through us wants to learn (issue 14)."""
    rule = f"no {category} addresses"
    if host.strip("[]") == str(address):  # the caller typed the address: nothing is revealed
        return (
            f"refusing to connect to {host}: it is a {category} address (SSRF rule: {rule}); "
            "an operator can allow its network with DASHIN_SSRF_ALLOW"
        )
    return (
        f"refusing to connect to {host}: it resolves to a {category} address (SSRF rule: "
        f"{rule}); an operator can allow its network with DASHIN_SSRF_ALLOW"
    )


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def check_scheme(url: httpx.URL) -> None:
    if url.scheme not in ALLOWED_SCHEMES:
        raise ConfigError(f"refusing URL scheme {url.scheme or '(none)'!r}: only http and https")
    if not url.host:
        raise ConfigError("refusing URL without a host")


def check_url(url: str, allow: Sequence[IPv4Network | IPv6Network]) -> None:
    """Refuse (`ConfigError`) a URL that is not http(s) or whose host reaches a non-public address.

    Resolution failure is a `ConfigError` here too (the URL cannot be used as configured); the
    transport treats it as a connect error instead, which the HTTP layer retries.
    """
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"invalid URL: {exc}") from exc
    check_scheme(parsed)
    port = parsed.port or _default_port(parsed.scheme)
    try:
        resolve_checked(parsed.host, port, allow)
    except OSError as exc:
        raise ConfigError(f"cannot resolve host {parsed.host}: {exc}") from exc


#: resolutions that outlive their timeout keep a thread until the resolver answers; a small pool
#: bounds how many (further lookups then wait their own timeout in its queue)
_resolver = ThreadPoolExecutor(max_workers=8, thread_name_prefix="dashin-dns")


def _resolve_within(
    host: str, port: int, allow: Sequence[IPNetwork], timeout: float | None
) -> list[IPAddress]:
    """`resolve_checked` bounded by `timeout` seconds (an IP literal needs no resolver)."""
    try:
        ip_address(host)
    except ValueError:
        pass
    else:
        return resolve_checked(host, port, allow)
    if timeout is None:
        return resolve_checked(host, port, allow)
    future = _resolver.submit(resolve_checked, host, port, allow)
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout:g}s") from None


class _GuardedBackend(httpcore.NetworkBackend):
    """Opens TCP connections only to checked addresses: resolve once, check, connect to the IP."""

    def __init__(self, allow: Sequence[IPNetwork]) -> None:
        self._allow = tuple(allow)
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        try:
            addresses = _resolve_within(host, port, self._allow, timeout)
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        options = list(socket_options or [])
        last: Exception | None = None
        for address in addresses:
            try:
                return self._inner.connect_tcp(str(address), port, timeout, local_address, options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        raise ConfigError("refusing to connect to a unix socket")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """`httpx.HTTPTransport` whose every new connection goes through the SSRF guard."""

    def __init__(self, allow: Sequence[IPNetwork], **kwargs: Any) -> None:
        if kwargs.get("proxy") is not None or kwargs.get("uds") is not None:
            raise ConfigError("the SSRF-guarded transport does not support proxies or sockets")
        super().__init__(trust_env=False, **kwargs)
        pool = self._pool
        if not isinstance(pool, httpcore.ConnectionPool):  # pragma: no cover - httpx changed
            raise TypeError("unexpected httpx transport internals; cannot install SSRF guard")
        # httpx builds its pool without a backend argument; swap in ours before any connection.
        pool._network_backend = _GuardedBackend(allow)
