"""Lead search and the tag filter under row-level security (issue 20, migration 0026).

Given leads in two domains, when A searches by text and by tag with the policies on and off,
with a selective search (resolved to ids by `lead_search_hits` / `lead_tag_hits`) and a broad
one (past the cap: the plain condition), then every list, export and bulk selection answers the
same leads of A only; and the hits functions themselves return nothing without a domain.
"""

from __future__ import annotations

import csv
import io
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from models import leads_repo, row_security
from runtime.settings import reset_settings_cache
from tests.api.conftest import ApiUser, MakeUser

API = "/api/v1"


def _lead(client: TestClient, user: ApiUser, email: str, **fields: Any) -> uuid.UUID:
    made = client.post(f"{API}/leads", json={"email": email, **fields}, headers=user.headers)
    assert made.status_code == 201, made.text
    return uuid.UUID(made.json()["id"])


def _listed(client: TestClient, user: ApiUser, query: str) -> set[str]:
    got = client.get(f"{API}/leads?{query}", headers=user.headers)
    assert got.status_code == 200, got.text
    return {item["email"] for item in got.json()["items"]}


def _exported(client: TestClient, user: ApiUser, query: str) -> set[str]:
    got = client.get(f"{API}/leads/export?{query}", headers=user.headers)
    assert got.status_code == 200, got.text
    return {row["email"] for row in csv.DictReader(io.StringIO(got.text))}


def _bulk_selected(client: TestClient, user: ApiUser, search: dict[str, str]) -> int:
    got = client.post(
        f"{API}/leads/bulk",
        json={"action": "update", "filter": search, "update": {"priority": "high"}},
        headers=user.headers,
    )
    assert got.status_code == 200, got.text
    return int(got.json()["succeeded"])


@pytest.mark.parametrize("rls", ["on", "off"])
@pytest.mark.parametrize("cap", [leads_repo.SEARCH_HITS_CAP, 1])
def test_search_and_tags_answer_the_same_with_the_policies_on_or_off(
    api_client: TestClient,
    make_user: MakeUser,
    monkeypatch: pytest.MonkeyPatch,
    rls: str,
    cap: int,
) -> None:
    a, b = make_user(), make_user()
    _lead(api_client, a, "ada@lovelace.example", first_name="Ada", tags=["vip"])
    _lead(api_client, a, "adam@smith.example", first_name="Adam")
    _lead(api_client, a, "grace@hopper.example", first_name="Grace", tags=["vip"])
    _lead(api_client, b, "ada@other.example", first_name="Ada", tags=["vip"])
    monkeypatch.setenv("DASHIN_RLS", rls)
    reset_settings_cache()
    monkeypatch.setattr(leads_repo, "SEARCH_HITS_CAP", cap)
    narrowed: list[leads_repo.LeadFilter] = []
    narrow = leads_repo.narrow

    def spy(db: Any, f: leads_repo.LeadFilter) -> leads_repo.LeadFilter:
        narrowed.append(narrow(db, f))
        return narrowed[-1]

    monkeypatch.setattr(leads_repo, "narrow", spy)

    ada = {"ada@lovelace.example", "adam@smith.example"}
    vip = {"ada@lovelace.example", "grace@hopper.example"}
    assert _listed(api_client, a, "q=ada") == ada
    assert _listed(api_client, a, "tag=vip") == vip
    assert _listed(api_client, a, "q=ada&tag=vip") == ada & vip
    assert _listed(api_client, a, "q=nobody") == set()
    assert _exported(api_client, a, "q=ada") == ada
    assert _exported(api_client, a, "tag=vip") == vip
    assert _bulk_selected(api_client, a, {"q": "ada", "tag": "vip"}) == 1
    # with the policies on, a search within the cap is resolved to ids; past it, or off, never
    # (with a cap of 1, only `q=nobody`, 4th, finds few enough)
    resolved = [f.ids is not None for f in narrowed]
    if rls == "off":
        assert resolved == [False] * 7
    else:
        assert resolved == (
            [True] * 7 if cap > 1 else [False, False, False, True, False, False, False]
        )


def test_the_hits_functions_answer_only_the_domain_acted_for(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    a, b = make_user(), make_user()
    mine = _lead(api_client, a, "ada@lovelace.example", tags=["vip"])
    _lead(api_client, b, "ada@other.example", tags=["vip"])
    calls = ("lead_search_hits('%ada%', 10)", "lead_tag_hits('vip', 10)")
    with engine.connect() as conn, conn.begin():
        conn.execute(text(f"SET LOCAL ROLE {row_security.APP_ROLE}"))
        for call in calls:  # no domain set: nothing, like the policies
            assert conn.execute(text(f"SELECT {call}")).scalars().all() == []
        conn.execute(text("SELECT set_config('app.domain_id', :d, true)"), {"d": str(a.domain_id)})
        for call in calls:
            assert conn.execute(text(f"SELECT {call}")).scalars().all() == [mine]


def test_a_transaction_acting_for_no_domain_keeps_its_plain_search(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    """The owner's transactions pass the policies, and the hits functions would find nothing
    there (no domain set): `narrow` leaves their search as it is."""
    a = make_user()
    mine = _lead(api_client, a, "ada@lovelace.example")
    search = leads_repo.LeadFilter(q="ada")
    with Session(engine) as session:
        assert leads_repo.narrow(session, search) is search
    with row_security.domain_session(engine, a.domain_id) as session:
        assert leads_repo.narrow(session, search).ids == (mine,)
