"""`--local` reads for `dashin logs` and `dashin sources`: the database directly, no API.

The operator's way in when the API is down, as for `dashin jobs --local` (`cli.jobs.LocalJobs`):
the same repositories the API uses, every domain (no scoping), and the API's wire shapes
(`LogLineOut`, `DataSourceOut`), so `--json` output does not depend on the path taken.
Following a log locally polls the table twice a second: a person watching, nothing decided on it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

POLL_S = 0.5


def _configure() -> None:
    from runtime.logging import configure_logging
    from runtime.settings import get_settings

    configure_logging(get_settings())


def latest_job_id() -> str:
    """The newest job of any domain (`dashin logs latest --local`)."""
    from models import jobs_query
    from runtime.db import session_scope
    from runtime.errors import NotFound

    _configure()
    with session_scope() as session:
        found = jobs_query.newest_job_id(session)
    if found is None:
        raise NotFound("there are no jobs yet")
    return str(found)


def log_lines(job_id: str, after_seq: int, level: str | None) -> tuple[str, list[dict[str, Any]]]:
    """(the job's status, its log lines after `after_seq`), read in one transaction."""
    from api.schemas.logs import LogLineOut
    from models import job_logs, jobs_repo
    from runtime.db import session_scope

    _configure()
    with session_scope() as session:
        status = jobs_repo.get_job(session, uuid.UUID(job_id)).status
        lines = job_logs.tail(
            session, uuid.UUID(job_id), after_seq=after_seq, min_level=level, limit=1000
        )
        return status, [LogLineOut.build(line).model_dump(mode="json") for line in lines]


def print_log(
    job_id: str,
    level: str | None,
    write: Callable[[dict[str, Any]], None],
    *,
    follow: bool,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Write every line (and with `follow`, new ones until the job ends); the job's status."""
    from models.job_statuses import TERMINAL_STATUSES

    after = 0
    while True:
        status, lines = log_lines(job_id, after, level)
        for line in lines:
            write(line)
            after = int(line["seq"])
        if lines:
            continue
        # no line after `after` in a transaction that saw `status`: a terminal status is final
        if not follow or status in TERMINAL_STATUSES:
            return status
        sleep(POLL_S)


def list_sources(type_: str | None) -> list[dict[str, Any]]:
    """Every data source of every domain, by name, in the API's shape."""
    from api import source_configs
    from api.schemas.data_sources import DataSourceOut
    from models import sources_repo
    from runtime.db import session_scope

    _configure()
    with session_scope() as session:
        return [
            DataSourceOut.build(s, source_configs.secrets_set(s)).model_dump(mode="json")
            for s in sources_repo.every_source(session, type_)
        ]
