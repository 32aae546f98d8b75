"""`synthetic`: a deterministic, offline connector for demos, tests and benchmarks.

Lead `i` always has the same fields, so an interrupted run resumed from any checkpoint can be
compared with an uninterrupted one. Optional delay per page and a page on which it crashes the
whole process (to test poison-job handling).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

from pydantic import Field

from connectors.base import (
    Checkpoint,
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorParams,
    Page,
    Progress,
    RunContext,
)
from records import LeadRecord, RecordError

_COMPANIES = ("Contoso", "Fabrikam", "Northwind", "Proseware", "Tailspin", "Woodgrove")
_TITLES = ("Founder", "CTO", "Head of Sales", "Growth Lead", "Operations Manager")


def synthetic_lead(i: int, *, seed: str = "s") -> LeadRecord:
    company = _COMPANIES[i % len(_COMPANIES)]
    return LeadRecord(
        first_name=f"First{i}",
        last_name=f"Last{i}",
        email=f"person{i}.{seed}@{company.lower()}.example",
        title=_TITLES[i % len(_TITLES)],
        company_name=company,
        company_domain=f"{company.lower()}.example",
        external_id=f"{seed}-{i}",
        raw={"i": i},
    )


class SyntheticConfig(ConnectorConfig):
    seed: str = "s"
    total: int = Field(1000, ge=0)
    page_size: int = Field(100, ge=1, le=10_000)


class SyntheticParams(ConnectorParams):
    total: int | None = Field(None, ge=0)
    page_size: int | None = Field(None, ge=1, le=10_000)
    delay_s: float = Field(0.0, ge=0, le=60)
    #: every n-th record is invalid (no key) and becomes a row error; 0 = none
    bad_every: int = Field(0, ge=0)
    #: SIGKILL our own process when this page is about to be yielded (poison input)
    crash_on_page: int | None = None


class SyntheticConnector(Connector):
    type = "synthetic"
    Config = SyntheticConfig
    Params = SyntheticParams
    test_only = True  # crash_on_page kills the worker: never offered to tenants

    def check(self, config: SyntheticConfig) -> CheckResult:
        sample = [synthetic_lead(i, seed=config.seed) for i in range(min(5, config.total))]
        return CheckResult(ok=True, message="synthetic source is always reachable", sample=sample)

    def pages(
        self,
        config: SyntheticConfig,
        params: SyntheticParams,
        checkpoint: Checkpoint,
        ctx: RunContext,
    ) -> Iterator[Page]:
        total = params.total if params.total is not None else config.total
        size = params.page_size or config.page_size
        start = int((checkpoint or {}).get("next", 0))
        page_no = start // size
        while start < total and not ctx.should_stop():
            if params.crash_on_page is not None and page_no == params.crash_on_page:
                os.kill(os.getpid(), 9)
            if params.delay_s:
                time.sleep(params.delay_s)
            end = min(total, start + size)
            records: list[LeadRecord] = []
            errors: list[RecordError] = []
            for i in range(start, end):
                if params.bad_every and (i + 1) % params.bad_every == 0:
                    errors.append(
                        RecordError(
                            code="no_identity",
                            message="record has no email or LinkedIn URL",
                            record=i + 1,
                            field="email",
                            raw=f"record {i}",
                        )
                    )
                else:
                    records.append(synthetic_lead(i, seed=config.seed))
            yield Page(
                records=records,
                errors=errors,
                checkpoint={"next": end},
                progress=Progress(done=end, total=total),
            )
            start = end
            page_no += 1
