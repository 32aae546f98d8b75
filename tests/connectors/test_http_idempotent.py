"""Which provider calls may be sent twice: searches yes, paid enrichment never.

The transport fails chosen calls the way a provider that went quiet after receiving them does
(`httpx.ReadTimeout`), so each test can count what reached the "provider" and what was paid.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from ipaddress import ip_network

import httpx
import pytest

from connectors.errors import TransientError
from connectors.kit import http, ssrf
from connectors.kit.testing import LocalRunContext
from connectors.providers.apollo import ApolloConfig, ApolloConnector, ApolloParams
from connectors.providers.generic_api.config import GenericApiConfig
from connectors.providers.generic_api.connector import GenericApiConnector
from connectors.providers.zoominfo.connector import (
    ZoomInfoConfig,
    ZoomInfoConnector,
    ZoomInfoParams,
)

Handler = Callable[[httpx.Request], httpx.Response]


@dataclass
class QuietContext(LocalRunContext):
    """Records waits instead of sleeping through backoffs."""

    waits: list[float] = field(default_factory=list)

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)


@dataclass
class Provider:
    """A scripted provider: counts calls per path; the listed call numbers time out on read."""

    answer: Handler
    time_out: dict[str, set[int]] = field(default_factory=dict)
    calls: Counter[str] = field(default_factory=Counter)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path.rsplit("/", 2)[-2:]
        key = "/".join(path)
        self.calls[key] += 1
        if self.calls[key] in self.time_out.get(key, set()):
            # the provider received (and may have processed) it, then went quiet
            raise httpx.ReadTimeout("timed out", request=request)
        return self.answer(request)


@pytest.fixture
def use_transport(monkeypatch: pytest.MonkeyPatch) -> Callable[[Provider], None]:
    def install(provider: Provider) -> None:
        make_client = http.make_client
        monkeypatch.setattr(
            http,
            "make_client",
            lambda *a, transport=None, **kw: make_client(
                *a, **kw, transport=httpx.MockTransport(provider)
            ),
        )

    return install


def apollo_answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/people/bulk_match"):
        details = json.loads(request.content)["details"]
        matches = [{"id": d["id"], "email": f"{d['id']}@example.com"} for d in details]
        return httpx.Response(200, json={"matches": matches, "credits_consumed": len(matches)})
    people = [{"id": f"p{i}", "first_name": f"P{i}"} for i in range(25)]
    return httpx.Response(200, json={"total_entries": 25, "people": people})


APOLLO = ApolloConfig(api_key="k", base_url="https://api.example/api/v1", enrich=True)


def test_apollo_search_that_timed_out_is_asked_again(
    use_transport: Callable[[Provider], None],
) -> None:
    provider = Provider(apollo_answer, time_out={"mixed_people/api_search": {1}})
    use_transport(provider)
    cfg = APOLLO.model_copy(update={"enrich": False})
    pages = list(ApolloConnector().pages(cfg, ApolloParams(per_page=25), None, QuietContext()))
    assert provider.calls["mixed_people/api_search"] == 2
    assert sum(len(p.records) for p in pages) == 25


def test_apollo_match_that_timed_out_is_not_paid_twice(
    use_transport: Callable[[Provider], None],
) -> None:
    # Given 25 people to enrich in three match calls, the second of which times out on read
    provider = Provider(apollo_answer, time_out={"people/bulk_match": {2}})
    use_transport(provider)
    ctx = QuietContext()
    pages = ApolloConnector().pages(APOLLO, ApolloParams(per_page=25), None, ctx)
    # Then the page comes with what was matched and the credits that were spent
    page = next(pages)
    assert provider.calls["people/bulk_match"] == 2  # the timed-out call was not sent again
    assert page.credits_used == 10 and page.checkpoint["credits"] == 10
    assert sum(1 for r in page.records if r.email) == 10
    assert len(page.records) == 25
    # and then the job fails with a readable error instead of matching anyone again
    with pytest.raises(TransientError) as exc:
        next(pages)
    message = str(exc.value)
    assert "apollo enrichment stopped" in message and "ReadTimeout" in message
    assert "15 people not enriched" in message and "not sent again" in message
    assert provider.calls["people/bulk_match"] == 2
    assert "apollo.enrich_failed" in ctx.log.events("error")


def zoominfo_answer(request: httpx.Request) -> httpx.Response:
    if request.url.path.endswith("/authenticate"):
        return httpx.Response(200, json={"jwt": "token"})
    if request.url.path.endswith("/enrich/contact"):
        inputs = json.loads(request.content)["matchPersonInput"]
        result = [
            {"input": i, "data": [{"id": i["personId"], "email": f"{i['personId']}@ex.com"}]}
            for i in inputs
        ]
        return httpx.Response(200, json={"data": {"result": result}})
    contacts = [{"id": f"c{i}", "firstName": f"C{i}"} for i in range(30)]
    return httpx.Response(200, json={"totalResults": 30, "data": contacts})


def zoominfo_config() -> ZoomInfoConfig:
    # a new user each time: ZoomInfo tokens are cached per credential in the process
    return ZoomInfoConfig(
        base_url="https://api.example",
        username=f"u-{uuid.uuid4().hex[:8]}",
        password="p",
        enrich=True,
    )


def test_zoominfo_search_is_asked_again_and_enrichment_is_not(
    use_transport: Callable[[Provider], None],
) -> None:
    # Given a search that times out once and a page whose second enrich call times out
    provider = Provider(zoominfo_answer, time_out={"search/contact": {1}, "enrich/contact": {2}})
    use_transport(provider)
    ctx = QuietContext()
    pages = ZoomInfoConnector().pages(zoominfo_config(), ZoomInfoParams(rpp=30), None, ctx)
    page = next(pages)
    assert provider.calls["search/contact"] == 2
    assert provider.calls["enrich/contact"] == 2
    assert page.credits_used == 25 and sum(1 for r in page.records if r.email) == 25
    with pytest.raises(TransientError, match="5 contacts not enriched"):
        next(pages)
    assert provider.calls["enrich/contact"] == 2


def generic_answer(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json=[{"id": 1, "email": "a@example.com"}])


@pytest.mark.parametrize(("idempotent", "sent"), [(True, 2), (False, 1)])
def test_generic_api_post_is_asked_again_only_when_idempotent(idempotent: bool, sent: int) -> None:
    provider = Provider(generic_answer, time_out={"v1/leads": {1}})
    cfg = GenericApiConfig(
        url="https://api.example/v1/leads", method="POST", body={}, idempotent=idempotent
    )
    connector = GenericApiConnector(transport=httpx.MockTransport(provider))
    run = connector.pages(cfg, connector.Params(), None, QuietContext())
    if idempotent:
        assert [r.email for p in run for r in p.records] == ["a@example.com"]
    else:
        with pytest.raises(TransientError, match="not sent again"):
            list(run)
    assert provider.calls["v1/leads"] == sent


# --- DNS resolution is bounded by the connect timeout -------------------------------------------


@pytest.fixture
def stuck_dns(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """A resolver that never answers until the test ends (a dead DNS server)."""
    release = threading.Event()
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[ssrf.IPAddress]:
        asked.append(host)
        release.wait(30)
        raise OSError("resolver gave up")

    monkeypatch.setattr(ssrf, "resolve", resolve)
    yield asked
    release.set()


def test_a_stuck_resolver_is_a_connect_timeout_and_retried(stuck_dns: list[str]) -> None:
    ctx = QuietContext()
    with (
        http.make_client(
            "http://provider.example", ssrf_allow=[ip_network("127.0.0.1/32")], connect_timeout=0.2
        ) as client,
        pytest.raises(TransientError, match="3 attempts: ConnectTimeout") as exc,
    ):
        # a POST too: nothing was sent, so sending again is safe
        http.request(client, "POST", "/people/bulk_match", ctx=ctx, max_attempts=3, json={})
    assert "resolving provider.example took longer than 0.2s" in str(exc.value)
    assert stuck_dns == ["provider.example"] * 3
    assert len(ctx.waits) == 2
