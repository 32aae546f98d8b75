"""The `RunContext` of a source check: what a job of the source would read, and nothing a job
does.

`POST /data-sources/{id}/test` calls `connector.check_in(config, params, ctx)` with this: a CSV
source's check then opens the upload a job would read through `open_upload`, the same
`models.upload_reader` stream a job's context gives (from the database, chunk by chunk, no
copy). A check is not a job: it has no job id, writes no log, spends no credits and changes no
configuration, so those calls are quiet no-ops, and it has no rate limiter to share.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping, Sequence
from typing import IO, Any

from sqlalchemy import Engine

from connectors.base import JobLogger, LevelLogger, RateLimiter
from connectors.errors import ConfigError
from models import upload_reader
from records import LeadRecord


class _Unlogged(LevelLogger):
    def _add(self, level: str, event: str, fields: dict[str, Any]) -> None:
        return None  # a check answers with its result, not with job log lines


class CheckContext:
    """A `RunContext` for one check of one data source of one domain."""

    job_id = ""
    credit_budget: int | None = 0  # a check pays for nothing

    def __init__(self, engine: Engine, domain_id: uuid.UUID, data_source_id: uuid.UUID) -> None:
        self._engine = engine
        self._domain_id = domain_id
        self._source_id = data_source_id
        self.data_source_id = str(data_source_id)
        self.sync_state: dict[str, Any] = {}
        self._log = _Unlogged()

    @property
    def log(self) -> JobLogger:
        return self._log

    def heartbeat(self) -> None:
        return None

    def should_stop(self) -> bool:
        return False

    def wait(self, seconds: float) -> None:
        time.sleep(seconds)

    def rate_limiter(self, name: str, limit: int, period_s: float) -> RateLimiter:
        raise ConfigError("a source check has no rate limiter: check with free calls only")

    def open_upload(self, file_id: str) -> IO[bytes]:
        return upload_reader.open_upload(
            self._engine, file_id, self._domain_id, self._source_id, missing=ConfigError
        )

    def suppressed(self, records: Sequence[LeadRecord], provider: str) -> list[bool]:
        return [False] * len(records)  # nothing is enriched or written

    def report_balance(self, remaining: int) -> None:
        return None

    def save_config(self, changes: Mapping[str, str | int | None]) -> None:
        return None
