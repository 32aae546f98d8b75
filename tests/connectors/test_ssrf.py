"""The SSRF guard: which addresses are refused, what the message says, and that the check is
made on the very address the socket connects to (so DNS rebinding cannot slip past it)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from ipaddress import ip_address, ip_network

import pytest

from connectors.errors import ConfigError
from connectors.kit import http, ssrf
from tests.connectors.test_http import LocalServer, Reply

LOCAL = [ip_network("127.0.0.1/32")]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    with LocalServer() as srv:
        yield srv


@pytest.fixture
def fake_dns(monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """Stand in for DNS: `fake_dns(name, answers...)`; each call may return the next answer set.

    Returns the list of host names looked up, in order.
    """
    answers: dict[str, list[list[str]]] = {}
    lookups: list[str] = []

    def resolve(host: str, port: int) -> list[ssrf.IPAddress]:
        lookups.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        sets = answers[host]
        current = sets.pop(0) if len(sets) > 1 else sets[0]
        return [ip_address(a) for a in current]

    def add(host: str, *answer_sets: list[str]) -> list[str]:
        answers[host] = list(answer_sets)
        return lookups

    monkeypatch.setattr(ssrf, "resolve", resolve)
    return add


@pytest.mark.parametrize(
    ("address", "category"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.1.1", "private"),
        ("fd12:3456::1", "private"),
        ("169.254.169.254", "cloud metadata"),
        ("fd00:ec2::254", "cloud metadata"),
        ("169.254.10.10", "link-local"),
        ("fe80::1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("::", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped
        ("64:ff9b::a00:1", "private"),  # NAT64 of 10.0.0.1
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_classify(address: str, category: str | None) -> None:
    assert ssrf.classify(ip_address(address)) == category


@pytest.mark.parametrize(
    ("url", "address", "category"),
    [
        ("http://127.0.0.1:8080/x", "127.0.0.1", "loopback"),
        ("http://10.0.0.7/api", "10.0.0.7", "private"),
        ("http://169.254.169.254/latest/meta-data/iam/", "169.254.169.254", "cloud metadata"),
        ("http://[::1]:9000/", "::1", "loopback"),
        ("https://[fd00:ec2::254]/", "fd00:ec2::254", "cloud metadata"),
        ("http://2130706433/", "2130706433", "loopback"),  # decimal 127.0.0.1: shown as typed
    ],
)
def test_internal_addresses_are_refused_with_the_reason(
    url: str, address: str, category: str
) -> None:
    with pytest.raises(ConfigError) as exc:
        ssrf.check_url(url, [])
    message = str(exc.value)
    assert address in message
    assert f"{category} address" in message
    assert "DASHIN_SSRF_ALLOW" in message


def test_odd_spellings_are_refused() -> None:
    with pytest.raises(ConfigError, match="invalid URL"):
        ssrf.check_url("http://0177.0.0.1/", [])  # octal 127.0.0.1: httpx will not parse it


def test_localhost_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"localhost: it resolves to a loopback") as exc:
        ssrf.check_url("http://localhost:8000/", [])
    assert "127.0.0.1" not in str(exc.value) and "::1" not in str(exc.value)


def test_allowed_networks_pass() -> None:
    ssrf.check_url("http://127.0.0.1:8080/x", LOCAL)
    ssrf.check_url("http://10.0.0.7/", [ip_network("10.0.0.0/8")])
    ssrf.check_url("http://[::1]/", [ip_network("::1/128")])
    # an allowed network of the other family does not open a door
    with pytest.raises(ConfigError):
        ssrf.check_url("http://[::1]/", [ip_network("0.0.0.0/0")])


def test_any_private_answer_refuses_the_host(fake_dns: Callable[..., list[str]]) -> None:
    fake_dns("mixed.example", ["93.184.216.34", "10.0.0.1"])
    # The refusal names the rule, not the internal address the name resolved to (issue 14)
    with pytest.raises(ConfigError, match=r"mixed\.example: .*SSRF rule: no private") as exc:
        ssrf.check_url("https://mixed.example/", [])
    assert "10.0.0.1" not in str(exc.value)


def test_public_names_pass(fake_dns: Callable[..., list[str]]) -> None:
    fake_dns("api.apollo.io", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
    ssrf.check_url("https://api.apollo.io/api/v1/auth/health", [])


@pytest.mark.parametrize("url", ["ftp://example.com/", "file:///etc/passwd", "gopher://x/"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="scheme"):
        ssrf.check_url(url, [ip_network("0.0.0.0/0")])


def test_unresolvable_host_is_a_config_error(fake_dns: Callable[..., list[str]]) -> None:
    with pytest.raises(ConfigError, match=r"cannot resolve host nowhere\.invalid"):
        ssrf.check_url("http://nowhere.invalid/", [])


def test_client_refuses_before_connecting(server: LocalServer) -> None:
    with (
        http.make_client(server.url, ssrf_allow=[]) as client,
        pytest.raises(ConfigError, match=r"127\.0\.0\.1: it is a loopback address"),
    ):
        http.request(client, "GET", "/leads")
    assert server.seen() == []
    with http.make_client(server.url, ssrf_allow=LOCAL) as client:
        assert http.request(client, "GET", "/leads").status_code == 200
    assert len(server.seen("/leads")) == 1


def test_client_defaults_to_the_setting(
    server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from runtime.settings import reset_settings_cache

    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.1/32")
    reset_settings_cache()
    try:
        with http.make_client(server.url) as client:
            assert http.request(client, "GET", "/ok").status_code == 200
    finally:
        reset_settings_cache()


def test_connection_goes_to_the_checked_address(
    server: LocalServer, fake_dns: Callable[..., list[str]]
) -> None:
    # Given a name only our resolver knows, answering 127.0.0.1 once and 10.9.9.9 afterwards
    lookups = fake_dns("rebind.test", ["127.0.0.1"], ["10.9.9.9"])
    url = f"http://rebind.test:{server.port}"
    # When a client fetches it, the checked answer is the address connected to (the system
    # resolver does not know the name at all), and the Host header keeps the name
    with http.make_client(url, ssrf_allow=LOCAL) as client:
        assert http.request(client, "GET", "/first").status_code == 200
    assert lookups == ["rebind.test"]
    assert server.seen("/first")[0].headers["Host"] == f"rebind.test:{server.port}"
    # Then when the name re-binds to a private address, the next connection is refused
    with (
        http.make_client(url, ssrf_allow=LOCAL) as client,
        pytest.raises(ConfigError, match=r"rebind\.test: it resolves to a private") as exc,
    ):
        http.request(client, "GET", "/second")
    assert "10.9.9.9" not in str(exc.value)
    assert lookups == ["rebind.test", "rebind.test"]
    assert server.seen("/second") == []


def test_redirects_are_guarded_too(server: LocalServer) -> None:
    server.script("/go", Reply(302, {"Location": f"http://127.0.0.2:{server.port}/inside"}))
    with (
        http.make_client(server.url, ssrf_allow=LOCAL) as client,
        pytest.raises(ConfigError, match=r"127\.0\.0\.2: it is a loopback address"),
    ):
        http.request(client, "GET", "/go", follow_redirects=True)
    assert server.seen("/inside") == []


def test_guarded_transport_refuses_proxies() -> None:
    # Through a proxy the guard would check the proxy's address instead of the target's.
    with pytest.raises(ConfigError, match="proxies"):
        ssrf.GuardedTransport(LOCAL, proxy="http://10.0.0.1:3128")
