"""The bootstrap admin key: created once, stored hashed, accepted by the API, never shown again."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from api import security
from cli.bootstrap import ADMIN_EMAIL, ensure_bootstrap_key
from models.tenancy import ApiKey, User


def test_first_call_makes_an_admin_key_later_calls_make_nothing(
    engine: Engine, settings_env: None
) -> None:
    key = ensure_bootstrap_key(engine)
    assert key is not None and key.startswith("dsk_")
    assert ensure_bootstrap_key(engine) is None
    with Session(engine) as session:
        stored = session.scalars(select(ApiKey.key_hash)).all()
        admin = session.scalar(select(User).where(User.email == ADMIN_EMAIL))
    assert stored == [security.sha256_hex(key)]  # the hash, never the value
    assert admin is not None and admin.is_admin and admin.password_hash is None


def test_concurrent_first_starts_create_one_admin(engine: Engine, settings_env: None) -> None:
    with ThreadPoolExecutor(4) as pool:
        keys = list(pool.map(lambda _: ensure_bootstrap_key(engine), range(4)))
    assert sum(k is not None for k in keys) == 1
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(User)) == 1


def test_the_api_accepts_the_key(engine: Engine, api_client_for_bootstrap: TestClient) -> None:
    key = ensure_bootstrap_key(engine)
    me = api_client_for_bootstrap.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200, me.text
    assert me.json()["email"] == ADMIN_EMAIL and me.json()["is_admin"] is True
