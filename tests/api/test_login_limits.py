"""Sign-in limits a hostile tenant cannot turn against others (issue 14, lower findings).

- Ten wrong passwords locked the real user out for 15 minutes from anywhere: failures now back
  off per (email, client address), so the attacker's address waits and the user's does not.
- `X-Forwarded-For` was trusted from any proxy on 127.0.0.1, so rotating it escaped the limit:
  the header now counts only from `DASHIN_TRUSTED_PROXIES` (a real uvicorn server, in a thread).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.ratelimit import LoginLimits
from cli.api_server import proxy_options
from runtime.settings import load_settings
from tests.api.conftest import MakeUser
from tests.receivers import free_port

LOGIN = "/api/v1/auth/login"


def test_failures_back_off_one_address_and_leave_the_user_alone_elsewhere(
    api_client: TestClient, make_user: MakeUser
) -> None:
    user = make_user()
    wrong = {"email": user.email, "password": "wrong password"}
    right = {"email": user.email, "password": user.password}
    # Given ten wrong passwords from the attacker's address
    for _ in range(10):
        assert api_client.post(LOGIN, json=wrong).status_code in (401, 429)
    # Then that address backs off, even with the right password
    limited = api_client.post(LOGIN, json=right)
    assert limited.status_code == 429
    assert 1 <= int(limited.headers["retry-after"]) <= LoginLimits().backoff_max_s
    # But the user, from their own address, signs in at once
    app = api_client.app
    assert isinstance(app, FastAPI)
    with TestClient(app, client=("203.0.113.7", 50000)) as elsewhere:
        assert elsewhere.post(LOGIN, json=right).status_code == 200


def test_backoff_starts_after_the_free_failures_and_a_success_clears_it(
    api_client: TestClient, make_user: MakeUser
) -> None:
    api_client.app.state.login_limits = LoginLimits(free_failures=3, backoff_base_s=60)  # type: ignore[attr-defined]
    user = make_user()
    wrong = {"email": user.email, "password": "wrong password"}
    right = {"email": user.email, "password": user.password}
    assert [api_client.post(LOGIN, json=wrong).status_code for _ in range(2)] == [401, 401]
    assert api_client.post(LOGIN, json=right).status_code == 200  # clears the two failures
    statuses = [api_client.post(LOGIN, json=wrong).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]  # the third failure starts the back-off
    refused = api_client.post(LOGIN, json=right)
    assert refused.status_code == 429 and 50 <= int(refused.headers["retry-after"]) <= 60


@contextmanager
def _server(app: FastAPI, options: dict[str, Any]) -> Iterator[str]:
    """The app behind a real uvicorn server on 127.0.0.1 (a local hop, like a reverse proxy)."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as probe:
            while not server.started:  # uvicorn sets it once the socket listens
                thread.join(0.05)
                assert thread.is_alive(), "uvicorn did not start"
            probe.get("/healthz")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("trusted", ["", "127.0.0.1/32"])
def test_forwarded_for_counts_only_from_configured_proxies(
    api_client: TestClient, make_user: MakeUser, monkeypatch: pytest.MonkeyPatch, trusted: str
) -> None:
    monkeypatch.setenv("DASHIN_TRUSTED_PROXIES", trusted)
    user = make_user()
    app = api_client.app
    assert isinstance(app, FastAPI)
    app.state.login_limits = LoginLimits(backoff_base_s=60)  # no back-off ends mid-test
    wrong = {"email": user.email, "password": "wrong password"}
    with _server(app, proxy_options(load_settings())) as url, httpx.Client(base_url=url) as c:
        # When one client rotates X-Forwarded-For on every wrong password
        statuses = [
            c.post(LOGIN, json=wrong, headers={"X-Forwarded-For": f"198.51.100.{n}"}).status_code
            for n in range(1, 8)
        ]
    if trusted:  # a configured proxy names the client: each address is a new one
        assert statuses == [401] * 7
    else:  # unconfigured: the header is ignored, the peer backs off after the free failures
        assert statuses == [401] * LoginLimits().free_failures + [429] * 2
