"""The connector error list. Its class decides what the runner does (ARCHITECTURE §5)::

ConnectorError (DashinError)
├── AuthError          config     bad credentials: fail the job at once
├── ForbiddenError     config     plan or scope lacks access: fail at once
├── ConfigError        config     the data source or job params are wrong: fail at once
│   └── ResponseTooLarge config   a provider answer past DASHIN_MAX_RESPONSE_BYTES: fail at once
├── RateLimited        transient  the provider says wait `retry_after` seconds
├── BudgetExhausted    transient  the job's credit budget is spent: pause until it is raised
└── TransientError     transient  retries in the HTTP layer are spent: fail, keep checkpoint
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import ClassVar

from runtime.errors import DashinError, ErrorKind


class ConnectorError(DashinError):
    kind: ClassVar[ErrorKind] = "system"
    code = "connector_error"
    #: the `CheckResult.reason` this error maps to
    reason = "unreachable"
    permanent = False


class AuthError(ConnectorError):
    kind = "config"
    code = "bad_credentials"
    reason = "bad_credentials"
    permanent = True


class ForbiddenError(ConnectorError):
    kind = "config"
    code = "forbidden"
    reason = "forbidden"
    permanent = True


class ConfigError(ConnectorError):
    kind = "config"
    code = "bad_config"
    reason = "bad_config"
    permanent = True


class ResponseTooLarge(ConfigError):
    """The memory guard: one provider answer would take more memory than a page may.

    Asking again brings the same answer, so it is permanent; a smaller page size (or a higher
    `DASHIN_MAX_RESPONSE_BYTES`) is the way out."""

    code = "response_too_large"


class RateLimited(ConnectorError):
    kind = "transient"
    code = "rate_limited"
    reason = "unreachable"

    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited: retry after {retry_after:.1f}s")
        self.retry_after = max(0.0, float(retry_after))

    @property
    def resume_at(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.retry_after)


class BudgetExhausted(ConnectorError):
    """The next paid call would pass the job's credit budget (the data source's per-job or
    monthly budget). Raised after the people already paid for are yielded; the runner pauses
    the job (`budget_exhausted`), and a resume after the budget is raised carries on from the
    checkpoint without paying for anyone twice."""

    kind = "transient"
    code = "budget_exhausted"
    reason = "forbidden"


class TransientError(ConnectorError):
    kind = "transient"
    code = "transient"
    reason = "unreachable"
