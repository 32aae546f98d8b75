"""Settings: errors name the variable, secrets are masked, `.dashin/env` fills unset variables."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.crypto import decrypt_json, encrypt_json, generate_key
from runtime.errors import ConfigurationError, SystemFailure
from runtime.settings import load_settings


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "DATABASE_URL",
        "REDIS_URL",
        "BROKER_URL",
        "DASHIN_SECRET_KEY",
        "DASHIN_SSRF_ALLOW",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DASHIN_HOME", str(tmp_path / ".dashin"))


def test_a_bad_value_names_the_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHIN_MAX_ATTEMPTS", "zero")
    with pytest.raises(ConfigurationError, match="DASHIN_MAX_ATTEMPTS"):
        load_settings()
    monkeypatch.setenv("DASHIN_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("DATABASE_URL", "mysql://x")
    with pytest.raises(ConfigurationError, match=r"DATABASE_URL: .*postgresql"):
        load_settings()


def test_env_file_fills_unset_variables_only(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / ".dashin"
    home.mkdir()
    (home / "env").write_text(
        "DATABASE_URL=postgresql://a@127.0.0.1:1/x\nREDIS_URL=redis://127.0.0.1:2/0\n"
    )
    monkeypatch.setenv("REDIS_URL", "redis://override:6379/0")
    settings = load_settings()
    assert settings.database_url == "postgresql+psycopg://a@127.0.0.1:1/x"
    assert settings.redis_url == "redis://override:6379/0"
    assert settings.effective_broker_url() == "redis://override:6379/0"


def test_masked_settings_hide_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:hunter2@db/x")
    monkeypatch.setenv("DASHIN_SECRET_KEY", "s" * 40)
    monkeypatch.setenv("DASHIN_SSRF_ALLOW", "127.0.0.0/8, 10.1.0.0/16")
    shown = load_settings().masked()
    assert "hunter2" not in str(shown) and "s" * 40 not in str(shown)
    assert shown["DASHIN_SECRET_KEY"] == "********"
    assert shown["DASHIN_SSRF_ALLOW"] == "127.0.0.0/8,10.1.0.0/16"


def test_missing_database_url_says_what_to_do() -> None:
    with pytest.raises(ConfigurationError, match="dashin up"):
        load_settings().require_database_url()


def test_credentials_round_trip_and_wrong_key_is_a_clear_error() -> None:
    token = encrypt_json("k" * 32, {"api_key": "sk-live-123"})
    assert b"sk-live-123" not in token
    assert decrypt_json("k" * 32, token) == {"api_key": "sk-live-123"}
    fernet_key = generate_key()
    assert decrypt_json(fernet_key, encrypt_json(fernet_key, {"a": 1})) == {"a": 1}
    with pytest.raises(SystemFailure, match="DASHIN_SECRET_KEY"):
        decrypt_json("j" * 32, token)
    with pytest.raises(ConfigurationError):
        encrypt_json("short", {})


def test_production_is_the_default_and_dashin_up_runs_development(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Issue 14: development (which logged tokens) was the default everywhere
    from cli.procs import child_env

    monkeypatch.delenv("DASHIN_ENV", raising=False)
    assert load_settings().env == "production"
    assert child_env()["DASHIN_ENV"] == "development"  # the local stack's children
    monkeypatch.setenv("DASHIN_ENV", "production")
    assert child_env()["DASHIN_ENV"] == "production"  # an explicit choice wins


def test_trusted_proxies_are_networks_and_none_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHIN_TRUSTED_PROXIES", raising=False)
    assert load_settings().trusted_proxies == []
    monkeypatch.setenv("DASHIN_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.5")
    assert [str(n) for n in load_settings().trusted_proxies] == ["10.0.0.0/8", "192.168.1.5/32"]
