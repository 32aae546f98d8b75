"""The one error root of Dashin.

Every error we raise on purpose descends from `DashinError`; its `kind` tells callers whether
retrying can help, so policy (retry, fail the job, answer 4xx) is decided once, at the edge::

    DashinError                      kind
    ├── ConfigurationError           config     settings or a data source's config are wrong
    ├── NotFound                     client     a row does not exist (or is not visible to you)
    ├── Conflict                     client     the request contradicts the current state
    │   └── InvalidTransition        client     a job move not allowed from its current status
    ├── PermissionDenied             client     the caller's role does not allow it
    ├── ValidationFailed             client     input is malformed (carries field errors)
    ├── TransientFailure             transient  a dependency is briefly unavailable; retry
    └── SystemFailure                system     a bug or an invariant broke; do not retry blindly

Connector errors (`connectors.errors`) form their own tree under `DashinError` with the same kinds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

ErrorKind = Literal["config", "client", "transient", "system"]


class DashinError(Exception):
    kind: ClassVar[ErrorKind] = "system"
    code: ClassVar[str] = "error"

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message or self.__class__.__name__


class ConfigurationError(DashinError):
    kind = "config"
    code = "configuration"


class ClientError(DashinError):
    """The caller's mistake or limit (a 4xx answer): what they sent, or what they may not do."""

    kind = "client"


class NotFound(ClientError):
    code = "not_found"


class Conflict(ClientError):
    code = "conflict"


class InvalidTransition(Conflict):
    """A job move that the state machine does not allow from the job's current status."""

    code = "invalid_transition"

    def __init__(self, job_id: object, move: str, current_status: str | None) -> None:
        super().__init__(f"cannot {move} job {job_id} while it is {current_status or 'missing'}")
        self.job_id = job_id
        self.move = move
        self.current_status = current_status


class PermissionDenied(ClientError):
    code = "forbidden"


@dataclass(frozen=True)
class FieldError:
    field: str
    code: str
    message: str


class ValidationFailed(ClientError):
    code = "validation"

    def __init__(self, message: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(message)
        self.errors: list[FieldError] = list(errors or [])


class TransientFailure(DashinError):
    kind = "transient"
    code = "transient"


class SystemFailure(DashinError):
    kind = "system"
    code = "system"
