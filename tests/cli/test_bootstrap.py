"""The bootstrap admin key: created once, stored hashed, accepted by the API, never shown again."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from api import security
from cli.bootstrap import ADMIN_EMAIL, ensure_bootstrap_key
from cli.main import app
from models.tenancy import ApiKey, User
from runtime.embedded import read_env_file


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


def test_admin_key_makes_another_working_key_and_keeps_it_for_the_cli(
    engine: Engine, api_client_for_bootstrap: TestClient
) -> None:
    # Given the bootstrap admin, whose first key was printed and lost
    from runtime.settings import env_file_path, reset_settings_cache

    first = ensure_bootstrap_key(engine)
    # When `dashin admin-key` runs where the database is configured
    result = CliRunner().invoke(app, ["admin-key"])
    assert result.exit_code == 0, result.output
    key = result.stdout.strip().removeprefix("export DASHIN_API_KEY=")
    # Then it is a new key of the admin, accepted by the API, and recorded for the CLI
    assert key.startswith("dsk_") and key != first
    me = api_client_for_bootstrap.get("/api/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200 and me.json()["email"] == ADMIN_EMAIL
    assert read_env_file(env_file_path())["DASHIN_API_KEY"] == key
    reset_settings_cache()


def test_admin_key_before_any_dashin_up_says_what_to_do(engine: Engine, settings_env: None) -> None:
    result = CliRunner().invoke(app, ["admin-key"])
    assert result.exit_code == 1
    assert "run `dashin up` first" in str(result.exception)
