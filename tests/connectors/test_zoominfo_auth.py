"""ZoomInfo `/authenticate` spacing (`connectors/providers/zoominfo/auth.py`): the documented
limit is one request per second per account, so a renewal right after a sign-in waits out the
rest of that second, and other credentials do not wait for it."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import SecretStr

from connectors.providers.zoominfo.auth import AUTH_SPACING_S, TokenSource
from connectors.providers.zoominfo.connector import ZoomInfoConfig


class _Waits:
    """A run context that records the waits asked of it instead of sleeping."""

    def __init__(self) -> None:
        self.asked: list[float] = []

    def wait(self, seconds: float) -> None:
        self.asked.append(seconds)


def _source(username: str, ctx: _Waits, sent: list[str]) -> TokenSource:
    config = ZoomInfoConfig(
        base_url=f"https://zoominfo.test/{uuid.uuid4().hex}",  # a credential no other test shares
        username=username,
        password=SecretStr("secret"),
    )

    def send(path: str, limiter: Any, **kwargs: Any) -> dict[str, Any]:
        sent.append(kwargs["json"]["username"])
        return {"jwt": f"jwt-{len(sent)}"}

    return TokenSource(config, ctx, send=send, limiter=None)  # type: ignore[arg-type]


def test_a_renewal_right_after_a_sign_in_waits_out_the_second_of_the_same_credential() -> None:
    ctx, sent = _Waits(), list[str]()
    source = _source("ada@example.com", ctx, sent)
    # Given a first sign-in (nothing to wait for)
    first = source.token()
    assert ctx.asked == [] and sent == ["ada@example.com"]
    # When the token answers 401 at once and is renewed
    second = source.token(stale=first)
    # Then the renewal asked to wait out (almost) the whole spacing before authenticating again
    assert second != first and len(sent) == 2
    assert len(ctx.asked) == 1 and AUTH_SPACING_S - 0.5 < ctx.asked[0] <= AUTH_SPACING_S


def test_another_credential_does_not_wait_for_the_first_ones_second() -> None:
    ctx, sent = _Waits(), list[str]()
    _source("ada@example.com", ctx, sent).token()
    _source("bob@example.com", ctx, sent).token()
    assert sent == ["ada@example.com", "bob@example.com"] and ctx.asked == []
