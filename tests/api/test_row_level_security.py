"""Row-level security through the API (issue 20): data of every kind, and a repository query
that lost its `WHERE domain_id`.

Given domain A with data of every kind (the isolation sweep's fixture) and a domain B, when a
transaction acts for one of them as the application role, then every tenant table shows exactly
that domain's rows and nothing without a domain; and when the leads query's Python scoping is
monkeypatched away, B's requests still get none of A's leads while PostgreSQL's policies are on
(and do get them with `DASHIN_RLS=off`: the monkeypatch really removes the scoping).
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from models import leads_repo
from models.leads import Lead
from runtime.settings import reset_settings_cache
from tests.api.conftest import ApiUser, MakeUser
from tests.api.helpers import connectors_registry  # noqa: F401  (fixture)
from tests.api.test_clients import Agency, agency  # noqa: F401  (fixture)
from tests.api.test_isolation import DomainA, domain_a  # noqa: F401  (fixture)
from tests.models.test_row_level_security import counts_by_domain, tenant_tables, visible_counts

API = "/api/v1"


@pytest.fixture
def domain_b(api_client: TestClient, make_user: MakeUser) -> ApiUser:
    b = make_user()
    lead = api_client.post(f"{API}/leads", json={"email": "bea@b.example"}, headers=b.headers)
    assert lead.status_code == 201, lead.text
    return b


def _rls(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DASHIN_RLS", value)
    reset_settings_cache()


#: tenant tables the data below leaves empty in A (the models test covers them without data)
UNFILLED = {"credit_ledger", "outgoing_mails"}


@pytest.mark.usefixtures("connectors_registry")
def test_every_tenant_table_shows_only_the_domain_acted_for(
    api_client: TestClient,
    domain_a: DomainA,  # noqa: F811  (the fixture imported above)
    domain_b: ApiUser,
    engine: Engine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = domain_a.manager.domain_id, domain_b.domain_id
    h = domain_a.manager.headers
    invited = api_client.post(
        f"{API}/domains/{a}/invitations", json={"email": "ivy@a.example"}, headers=h
    )
    assert invited.status_code in (201, 202), invited.text
    created = api_client.post(
        f"{API}/campaigns", json={"name": "Once"}, headers={**h, "Idempotency-Key": "k-1"}
    )
    assert created.status_code == 201, created.text
    assert api_client.get(f"/r/{domain_a.code}", follow_redirects=False).status_code == 302
    _rls(monkeypatch, "on")
    with engine.connect() as conn:
        owner = {t: counts_by_domain(conn, t, d) for t, d in tenant_tables().items()}
    # the sweep is not over empty tables
    assert {t for t, by in owner.items() if not by.get(a)} <= UNFILLED
    for domain_id in (a, b):
        assert visible_counts(engine, domain_id) == {
            t: by.get(domain_id, 0) for t, by in owner.items()
        }
    assert set(visible_counts(engine, None).values()) == {0}


def _unscoped(scope: leads_repo.LeadScope) -> object:
    return Lead.deleted_at.is_(None)  # the domain condition "forgotten"


@pytest.fixture
def unscoped(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every leads query without its domain condition; the list statement is cached, so the
    cache is emptied before (to build it unscoped) and after (no other test gets it)."""
    leads_repo._list_statement.cache_clear()
    monkeypatch.setattr(leads_repo, "visible", _unscoped)
    yield
    leads_repo._list_statement.cache_clear()


def _export_emails(api_client: TestClient, user: ApiUser) -> set[str]:
    got = api_client.get(f"{API}/leads/export", headers=user.headers)
    assert got.status_code == 200, got.text
    return {row["email"] for row in csv.DictReader(io.StringIO(got.text))}


def _list_emails(api_client: TestClient, user: ApiUser) -> set[str]:
    got = api_client.get(f"{API}/leads", headers=user.headers)
    assert got.status_code == 200, got.text
    return {item["email"] for item in got.json()["items"]}


@pytest.mark.parametrize("rls", ["on", "off"])
def test_a_query_without_its_domain_condition_leaks_nothing_with_rls_on(
    api_client: TestClient,
    make_user: MakeUser,
    domain_b: ApiUser,
    monkeypatch: pytest.MonkeyPatch,
    unscoped: None,
    rls: str,
) -> None:
    a = make_user()
    lead = api_client.post(f"{API}/leads", json={"email": "ada@a.example"}, headers=a.headers)
    assert lead.status_code == 201, lead.text
    _rls(monkeypatch, rls)
    for read in (_list_emails, _export_emails):
        seen = read(api_client, domain_b)
        assert "bea@b.example" in seen
        # off: the monkeypatch really drops the scoping, so the policies are what stops it
        assert ("ada@a.example" in seen) is (rls == "off"), read.__name__


def test_b_cannot_address_a_lead_by_id_even_unscoped(
    api_client: TestClient,
    make_user: MakeUser,
    domain_b: ApiUser,
    monkeypatch: pytest.MonkeyPatch,
    unscoped: None,
) -> None:
    a = make_user()
    lead = api_client.post(f"{API}/leads", json={"email": "ada@a.example"}, headers=a.headers)
    assert lead.status_code == 201, lead.text
    _rls(monkeypatch, "on")
    lead_id = uuid.UUID(lead.json()["id"])
    got = api_client.get(f"{API}/leads/{lead_id}", headers=domain_b.headers)
    assert got.status_code == 404, got.text
    changed = api_client.patch(
        f"{API}/leads/{lead_id}", json={"first_name": "Mallory"}, headers=domain_b.headers
    )
    assert changed.status_code == 404, changed.text
    assert api_client.get(f"{API}/leads/{lead_id}", headers=a.headers).json()["first_name"] is None


@pytest.mark.parametrize("rls", ["on", "off"])
def test_a_limited_viewer_gets_only_their_clients_leads_even_unscoped(
    api_client: TestClient,
    agency: Agency,  # noqa: F811  (the fixture imported above)
    monkeypatch: pytest.MonkeyPatch,
    unscoped: None,
    rls: str,
) -> None:
    """The role-dependent policy (migration 0027): with the leads query's Python scoping gone
    (domain, clients and all), PostgreSQL still keeps a viewer limited to Globex to Globex's
    campaign's leads."""
    _rls(monkeypatch, rls)
    seen = _list_emails(api_client, agency.viewer)
    assert "globex-lead@people.example" in seen
    others = {"initech-lead@people.example", "none-lead@people.example"}
    assert (others <= seen) is (rls == "off") and (seen & others == set()) is (rls == "on")
