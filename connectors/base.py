"""The connector contract (ARCHITECTURE §5).

A connector is a class with a `type`, a pydantic `Config` (per data source; secrets as
`SecretStr`, also inside maps) and `Params` (per job), a `check(config)` for "test connection",
and `pages(config, params, checkpoint, ctx)`, a generator of `Page`s. Each page carries the
checkpoint that resumes *after* it; the framework commits the page and the checkpoint together,
so a connector restarted from a checkpoint must yield exactly the records not yet committed.

`LeadRecord` and `RecordError` live in `records/` (below connectors and models) and are
re-exported here because a page carries them: a plugin needs only this module.
"""

from __future__ import annotations

import builtins
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, ClassVar, Literal, Protocol

from pydantic import BaseModel, ConfigDict, SecretStr

from records import LeadRecord, RecordError

__all__ = [
    "CheckReason",
    "CheckResult",
    "Connector",
    "ConnectorConfig",
    "ConnectorParams",
    "JobLogger",
    "LeadRecord",
    "LevelLogger",
    "Page",
    "Progress",
    "RateLimiter",
    "RecordError",
    "RunContext",
    "reveal",
    "secret_field_names",
    "split_secrets",
]

#: where a job resumes: small JSON (a page number, a cursor, a byte offset), never records;
#: None on a first run
Checkpoint = dict[str, Any] | None

CheckReason = Literal["bad_credentials", "forbidden", "unreachable", "bad_config"]


@dataclass(frozen=True, slots=True)
class Progress:
    done: int
    total: int | None = None
    #: matches found out of reach so far (a capped search's remainder no partition can fetch);
    #: cumulative like `done`. A completed job with missed matches carries a warning.
    missed: int = 0


@dataclass(frozen=True, slots=True)
class Page:
    records: list[LeadRecord]
    checkpoint: dict[str, Any]
    errors: list[RecordError] = field(default_factory=list)
    progress: Progress | None = None
    credits_used: int = 0
    #: new incremental state for the data source, adopted when the job completes
    sync_state: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Estimate:
    """What a job would fetch and spend, found without spending (`POST /jobs` with
    `"estimate": true`). `matches` None: the connector cannot count without reading it all."""

    matches: int | None
    #: the most credits the job could spend (people without an email on record cost nothing,
    #: so the real figure may be lower)
    credits: int = 0


@dataclass(frozen=True, slots=True)
class CheckResult:
    ok: bool
    reason: CheckReason | None = None
    message: str = ""
    sample: list[LeadRecord] = field(default_factory=list)


class JobLogger(Protocol):
    """Structured log calls that land in the job's log (and stdout). Event names are dotted."""

    def debug(self, event: str, **fields: Any) -> None: ...
    def info(self, event: str, **fields: Any) -> None: ...
    def warning(self, event: str, **fields: Any) -> None: ...
    def error(self, event: str, **fields: Any) -> None: ...


class LevelLogger:
    """A `JobLogger` built on one method, `_add(level, event, fields)`: the job's log buffer and
    the in-memory one of tests and checks differ only there."""

    def _add(self, level: str, event: str, fields: dict[str, Any]) -> None:
        raise NotImplementedError

    def debug(self, event: str, **fields: Any) -> None:
        self._add("debug", event, fields)

    def info(self, event: str, **fields: Any) -> None:
        self._add("info", event, fields)

    def warning(self, event: str, **fields: Any) -> None:
        self._add("warning", event, fields)

    def error(self, event: str, **fields: Any) -> None:
        self._add("error", event, fields)


class RateLimiter(Protocol):
    """A limiter shared by every worker using the same key (per data source or credential)."""

    def acquire(self, cost: int = 1) -> None:
        """Block until `cost` requests may go out; raise `RateLimited` if the wait is too long."""
        ...


class RunContext(Protocol):
    """What a connector may touch outside itself while a job runs."""

    job_id: str
    data_source_id: str
    sync_state: dict[str, Any]
    credit_budget: int | None

    @property
    def log(self) -> JobLogger:
        """Structured lines that land in the job's log (read-only, so any logger type fits)."""
        ...

    def heartbeat(self) -> None:
        """Prove the job is alive; call during long waits. Cheap: throttled by the framework."""
        ...

    def should_stop(self) -> bool:
        """True when the job was paused, cancelled or the worker is shutting down."""
        ...

    def wait(self, seconds: float) -> None:
        """Sleep with heartbeats; returns early when `should_stop()` becomes true."""
        ...

    def rate_limiter(self, name: str, limit: int, period_s: float) -> RateLimiter:
        """The shared limiter `name` for this data source: `limit` requests per `period_s`."""
        ...

    def open_upload(self, file_id: str) -> IO[bytes]:
        """A seekable binary stream over a file uploaded to this data source."""
        ...

    def suppressed(self, records: Sequence[LeadRecord], provider: str) -> list[bool]:
        """Which of `records` the domain's suppression list names (by any identity key, or the
        email's domain). Asked before paying to enrich them: a suppressed person is never
        enriched, and the sink rejects them anyway."""
        ...

    def report_balance(self, remaining: int) -> None:
        """The provider's credits left, as its usage headers say: stored on the data source as
        the last known balance."""
        ...

    def save_config(self, changes: Mapping[str, str | int | None]) -> None:
        """Store config fields the connector renewed itself (a refreshed OAuth token) on the data
        source: secret fields encrypted with its credentials, the others merged into its config.
        Later jobs start from them; the connector keeps using its own copy meanwhile."""
        ...


class ConnectorConfig(BaseModel):
    """Base for `Config` models: unknown keys are errors, so typos are caught on save."""

    model_config = ConfigDict(extra="forbid")


class ConnectorParams(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Connector(ABC):
    type: ClassVar[str]
    Config: ClassVar[builtins.type[ConnectorConfig]]
    Params: ClassVar[builtins.type[ConnectorParams]]
    #: Dramatiq queue for this connector's jobs; one per provider so none starves the others
    queue: ClassVar[str | None] = None
    #: registered only where `DASHIN_TEST_CONNECTORS` is on (tests, benchmarks): such a connector
    #: may take parameters that hurt the worker on purpose (`synthetic`'s `crash_on_page`)
    test_only: ClassVar[bool] = False

    @classmethod
    def queue_name(cls) -> str:
        return cls.queue or cls.type

    @abstractmethod
    def check(self, config: Any) -> CheckResult: ...

    def check_in(self, config: Any, params: Any, ctx: RunContext) -> CheckResult:
        """`check`, given what a job of the source would get: its params as the engine fills
        them and a `RunContext`. A connector whose input only the context reaches (the CSV
        connector's uploads) overrides it, so a check reads what a job would read, the way it
        would read it. Default: `check(config)`."""
        return self.check(config)

    @abstractmethod
    def pages(
        self, config: Any, params: Any, checkpoint: Checkpoint, ctx: RunContext
    ) -> Iterator[Page]: ...

    def estimate(self, config: Any, params: Any) -> Estimate:
        """Matches and credits of a job, from free calls only. Default: unknown, nothing paid."""
        return Estimate(matches=None, credits=0)


def secret_field_names(model: type[BaseModel]) -> set[str]:
    """Top-level fields holding secrets (SecretStr, or maps/lists of SecretStr)."""
    names = set()
    for name, info in model.model_fields.items():
        if "SecretStr" in repr(info.annotation):
            names.add(name)
    return names


def split_secrets(
    model: type[BaseModel], data: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split raw config into (public config, secrets) for storage: secrets get encrypted."""
    secret_names = secret_field_names(model)
    public = {k: v for k, v in data.items() if k not in secret_names}
    secrets = {k: v for k, v in data.items() if k in secret_names}
    return public, secrets


def reveal(value: Any) -> Any:
    """Turn SecretStr (also nested in dicts/lists) back into plain values, e.g. for storage."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value
