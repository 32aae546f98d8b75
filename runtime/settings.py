"""Twelve-factor settings, read from the environment and, for unset variables, `./.dashin/env`.

`dashin up` writes the embedded services' URLs (and a generated secret key) to `.dashin/env`, so
every other command run from the same directory finds them without exporting anything.
Validation errors name the environment variable, never the Python attribute.
"""

from __future__ import annotations

import os
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_network
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from runtime.errors import ConfigurationError

SECRET_FIELDS = frozenset({"secret_key", "api_key", "sentry_dsn"})
URL_FIELDS = frozenset({"database_url", "redis_url", "broker_url", "smtp_url"})


def dashin_home() -> Path:
    """The directory holding embedded data and the env file (`DASHIN_HOME`, default ./.dashin)."""
    return Path(os.environ.get("DASHIN_HOME") or ".dashin").absolute()


def env_file_path() -> Path:
    return dashin_home() / "env"


def sqlalchemy_url(url: str) -> str:
    """Point a plain `postgresql://` URL at the psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The same URL without SQLAlchemy's driver suffix, for psycopg and pg_dump."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


def _https_or_loopback(url: str) -> str:
    """Keys and identities come from these URLs: plain HTTP only to this machine (tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url
    if parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS:
        return url
    raise ValueError(f"{url!r} must be an https:// URL")


class OidcIssuer(BaseModel):
    """An identity provider whose ID tokens sign people in (one item of `DASHIN_OIDC_ISSUERS`).

    `issuer` is compared exactly with the token's `iss`; `audience` is the client id (or the
    audience of a Clerk JWT template) the token must be issued for; `jwks_url` skips discovery
    (`<issuer>/.well-known/openid-configuration`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    issuer: str = Field(min_length=1, max_length=300)
    audience: tuple[str, ...] = Field(min_length=1)
    jwks_url: str | None = None

    @field_validator("audience", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("issuer", "jwks_url")
    @classmethod
    def _secure_url(cls, value: str | None) -> str | None:
        return None if value is None else _https_or_loopback(value)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", populate_by_name=True)

    database_url: str | None = Field(None, validation_alias="DATABASE_URL")
    redis_url: str | None = Field(None, validation_alias="REDIS_URL")
    broker_url: str | None = Field(None, validation_alias="BROKER_URL")
    secret_key: SecretStr | None = Field(None, validation_alias="DASHIN_SECRET_KEY")
    ssrf_allow: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list, validation_alias="DASHIN_SSRF_ALLOW"
    )
    heartbeat_timeout_s: float = Field(15.0, gt=0, validation_alias="DASHIN_HEARTBEAT_TIMEOUT_S")
    queued_grace_s: float = Field(60.0, gt=0, validation_alias="DASHIN_QUEUED_GRACE_S")
    reap_interval_s: float = Field(3.0, gt=0, validation_alias="DASHIN_REAP_INTERVAL_S")
    max_attempts: int = Field(5, ge=1, validation_alias="DASHIN_MAX_ATTEMPTS")
    rate_limit_park_s: float = Field(120.0, ge=0, validation_alias="DASHIN_RATE_LIMIT_PARK_S")
    #: fair share (docs/jobs.md): a job hands its thread back after this long, at a page's end
    job_slice_s: float = Field(30.0, gt=0, validation_alias="DASHIN_JOB_SLICE_S")
    #: jobs of one domain holding worker threads at once
    max_running_per_domain: int = Field(4, ge=1, validation_alias="DASHIN_MAX_RUNNING_PER_DOMAIN")
    #: a connector page not delivered within this fails the job (`page_timeout`)
    page_timeout_s: float = Field(300.0, gt=0, validation_alias="DASHIN_PAGE_TIMEOUT_S")
    #: memory guard: a provider answer (decoded) larger than this fails the job
    #: (`response_too_large`) instead of filling the worker's memory
    max_response_bytes: int = Field(32 << 20, ge=1024, validation_alias="DASHIN_MAX_RESPONSE_BYTES")
    upload_max_bytes: int = Field(1 << 30, gt=0, validation_alias="DASHIN_UPLOAD_MAX_BYTES")
    allow_server_paths: bool = Field(False, validation_alias="DASHIN_ALLOW_SERVER_PATHS")
    #: register test-only connectors (`synthetic`); never in a deployment tenants can reach
    test_connectors: bool = Field(False, validation_alias="DASHIN_TEST_CONNECTORS")
    allow_any_domain_name: bool = Field(False, validation_alias="DASHIN_ALLOW_ANY_DOMAIN_NAME")
    #: domains founded or renamed through the API need a DNS TXT proof before paid providers
    require_domain_proof: bool = Field(True, validation_alias="DASHIN_REQUIRE_DOMAIN_PROOF")
    #: an unverified name claimed (founded, renamed to) longer ago than this goes to the next
    #: founder who claims it
    unverified_domain_release_days: float = Field(
        7.0, gt=0, validation_alias="DASHIN_UNVERIFIED_DOMAIN_RELEASE_DAYS"
    )
    jwt_ttl_s: int = Field(3600, gt=0, validation_alias="DASHIN_JWT_TTL_S")
    #: a refresh token unused for this long expires (each use issues a new one)
    refresh_ttl_s: int = Field(14 * 86400, gt=0, validation_alias="DASHIN_REFRESH_TTL_S")
    #: identity providers whose ID tokens `POST /auth/oidc` accepts: a JSON list of
    #: {"issuer", "audience", "jwks_url"?}
    oidc_issuers: list[OidcIssuer] = Field(
        default_factory=list, validation_alias="DASHIN_OIDC_ISSUERS"
    )
    #: clock skew tolerated on an ID token's `exp`, `iat` and `nbf`
    oidc_leeway_s: float = Field(30.0, ge=0, le=300, validation_alias="DASHIN_OIDC_LEEWAY_S")
    #: how long a provider's signing keys are cached before they are fetched again
    oidc_jwks_ttl_s: float = Field(3600.0, gt=0, validation_alias="DASHIN_OIDC_JWKS_TTL_S")
    #: a token signed by an unknown key refetches the keys (rotation), at most this often
    oidc_jwks_min_refresh_s: float = Field(
        30.0, ge=0, validation_alias="DASHIN_OIDC_JWKS_MIN_REFRESH_S"
    )
    api_url: str = Field("http://127.0.0.1:8000", validation_alias="DASHIN_API_URL")
    api_key: SecretStr | None = Field(None, validation_alias="DASHIN_API_KEY")
    sentry_dsn: SecretStr | None = Field(None, validation_alias="SENTRY_DSN")
    #: the scheduler's leader backs the database up here on `backup_cron` (unset: no backups)
    backup_dir: Path | None = Field(None, validation_alias="DASHIN_BACKUP_DIR")
    #: when backups run (crontab, UTC); nightly by default
    backup_cron: str = Field("15 2 * * *", validation_alias="DASHIN_BACKUP_CRON")
    #: rotation: the newest backup of each of this many days, and of each of this many ISO weeks
    backup_keep_daily: int = Field(7, ge=1, validation_alias="DASHIN_BACKUP_KEEP_DAILY")
    backup_keep_weekly: int = Field(4, ge=0, validation_alias="DASHIN_BACKUP_KEEP_WEEKLY")
    #: share of requests and job runs traced for Sentry's performance view (0: errors only)
    sentry_traces_sample_rate: float = Field(
        0.0, ge=0.0, le=1.0, validation_alias="SENTRY_TRACES_SAMPLE_RATE"
    )
    #: production unless said otherwise: only `dashin up` (and the test suite) run development
    env: Literal["development", "production"] = Field("production", validation_alias="DASHIN_ENV")
    #: development without SMTP_URL: also log mail bodies (they hold invitation and reset tokens)
    log_mail_bodies: bool = Field(False, validation_alias="DASHIN_LOG_MAIL_BODIES")
    #: reverse proxies whose `X-Forwarded-For` names the client (CIDRs); unset: trust none
    trusted_proxies: Annotated[list[IPv4Network | IPv6Network], NoDecode] = Field(
        default_factory=list, validation_alias="DASHIN_TRUSTED_PROXIES"
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", validation_alias="DASHIN_LOG_FORMAT"
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", validation_alias="DASHIN_LOG_LEVEL"
    )
    #: browser origins allowed to call the API cross-origin (comma-separated; `*` for any)
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="DASHIN_CORS_ORIGINS"
    )
    #: row-level security (`models.row_security`): transactions acting for a domain run as
    #: the `dashin_app` role, which PostgreSQL shows only that domain's rows (`on`/`off`).
    #: On by default; `off` keeps the policies but never leaves the owner (docs/operations.md)
    rls: bool = Field(True, validation_alias="DASHIN_RLS")
    #: PostgreSQL `statement_timeout` of the API's connections: no request costs unbounded work
    api_statement_timeout_s: float = Field(
        15.0, ge=0, validation_alias="DASHIN_API_STATEMENT_TIMEOUT_S"
    )
    #: bound of one `GET /leads/export` (a single `COPY … TO STDOUT` statement, so the API's
    #: statement timeout above would cut off any export that streams longer than it)
    export_timeout_s: float = Field(3600.0, gt=0, validation_alias="DASHIN_EXPORT_TIMEOUT_S")
    #: the API answers 503 `request_timeout` when a request has not started its response by
    #: then (streams are exempt once they started); 0: no deadline
    request_timeout_s: float = Field(30.0, ge=0, validation_alias="DASHIN_REQUEST_TIMEOUT_S")
    #: outgoing mail (invitations, password resets): `smtp://` (STARTTLS when offered) or
    #: `smtps://`, with `user:password@`; unset: mails are only logged (refused in production)
    smtp_url: str | None = Field(None, validation_alias="SMTP_URL")
    mail_from: str = Field("Dashin <no-reply@localhost>", validation_alias="DASHIN_MAIL_FROM")
    #: outbound webhooks: first retry after this, doubling (with jitter) up to `max_delay`
    webhook_retry_base_s: float = Field(5.0, gt=0, validation_alias="DASHIN_WEBHOOK_RETRY_BASE_S")
    webhook_retry_max_delay_s: float = Field(
        6 * 3600.0, gt=0, validation_alias="DASHIN_WEBHOOK_RETRY_MAX_DELAY_S"
    )
    #: a message not delivered this long after its event is given up
    webhook_retry_window_s: float = Field(
        24 * 3600.0, gt=0, validation_alias="DASHIN_WEBHOOK_RETRY_WINDOW_S"
    )
    #: an endpoint whose every attempt failed for this long is disabled (managers notified)
    webhook_disable_after_s: float = Field(
        5 * 24 * 3600.0, gt=0, validation_alias="DASHIN_WEBHOOK_DISABLE_AFTER_S"
    )
    webhook_timeout_s: float = Field(10.0, gt=0, validation_alias="DASHIN_WEBHOOK_TIMEOUT_S")

    @field_validator("ssrf_allow", "trusted_proxies", mode="before")
    @classmethod
    def _split_cidrs(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [
                ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()
            ]
        return value

    @field_validator("smtp_url")
    @classmethod
    def _smtp_scheme(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("smtp://", "smtps://")):
            raise ValueError("must be an smtp:// or smtps:// URL")
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            origins = [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
            for origin in origins:
                if origin != "*" and not origin.startswith(("http://", "https://")):
                    raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
            return origins
        return value

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not value.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            raise ValueError("must be a postgresql:// URL")
        return sqlalchemy_url(value)

    @field_validator("redis_url")
    @classmethod
    def _redis_only(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis:// URL")
        return value

    @field_validator("broker_url")
    @classmethod
    def _broker_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("redis://", "rediss://", "amqp://", "amqps://")
        ):
            raise ValueError("must be a redis:// or amqp:// URL")
        return value

    # Accessors that fail with a message an operator can act on.
    def require_database_url(self) -> str:
        if not self.database_url:
            raise ConfigurationError(
                "DATABASE_URL is not set and no embedded database is running here: "
                "run `dashin up` (embedded services) or export DATABASE_URL"
            )
        return self.database_url

    def require_redis_url(self) -> str:
        if not self.redis_url:
            raise ConfigurationError(
                "REDIS_URL is not set and no embedded Redis is running here: "
                "run `dashin up` (embedded services) or export REDIS_URL"
            )
        return self.redis_url

    def effective_broker_url(self) -> str:
        return self.broker_url or self.require_redis_url()

    def require_secret_key(self) -> str:
        if self.secret_key is None:
            raise ConfigurationError(
                "DASHIN_SECRET_KEY is not set: export a Fernet key or 32+ characters "
                "(`dashin up` generates one into .dashin/env)"
            )
        return self.secret_key.get_secret_value()

    def masked(self) -> dict[str, str]:
        """Effective settings for `dashin config`: secrets and URL passwords masked."""
        out: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            env_name = str(info.validation_alias)
            value = getattr(self, name)
            if value is None:
                shown = "(unset)"
            elif name in SECRET_FIELDS:
                shown = "********"
            elif name in URL_FIELDS:
                shown = mask_url_password(str(value))
            elif isinstance(value, list):
                shown = ",".join(str(v) for v in value) or "(none)"
            else:
                shown = str(value)
            out[env_name] = shown
        return out


def mask_url_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":****@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def load_settings(**overrides: Any) -> Settings:
    """Build settings from the environment, then `.dashin/env`; raise naming the bad variable."""
    try:
        env_file = env_file_path()
        return Settings(_env_file=env_file if env_file.exists() else None, **overrides)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = ".".join(str(p) for p in err["loc"]) or "settings"
            problems.append(f"{loc}: {err['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()


def reset_settings_cache() -> None:
    get_settings.cache_clear()
