"""job outcome: warnings, error codes, missed matches; data-source metrics recounted from jobs

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 16:45:00

A job that completes having rejected records, or having left matches a partitioned search could
not reach, says so in `jobs.warnings` (`[{"code", "count", "message"}]`); `jobs.error_code` is
the machine-readable code of a failure (`all_records_rejected`, ...); `jobs.progress_missed` the
matches out of reach (`Progress.missed`). `data_sources.last_warnings` shows the last finished
job's warnings on the source.

`leads_total`, `jobs_total` and `jobs_failed` were bumped at finish with the last run segment's
figures only (a paused and resumed job undercounted): they are recounted here from the jobs, the
same definition `models.source_metrics` keeps from now on. The SQL below is frozen on purpose.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RECOUNT = """
UPDATE data_sources d SET
    leads_total = coalesce(j.inserted, 0),
    jobs_total = coalesce(j.ended, 0),
    jobs_failed = coalesce(j.failed, 0)
FROM data_sources s LEFT JOIN (
    SELECT data_source_id,
           sum(inserted) AS inserted,
           count(*) FILTER (WHERE status IN ('completed', 'failed', 'cancelled')) AS ended,
           count(*) FILTER (WHERE status = 'failed') AS failed
    FROM jobs GROUP BY data_source_id
) j ON j.data_source_id = s.id
WHERE d.id = s.id
"""


def _json_list(name: str) -> sa.Column[object]:
    return sa.Column(
        name,
        postgresql.JSONB(astext_type=sa.Text()),
        server_default=sa.text("'[]'::jsonb"),
        nullable=False,
    )


def upgrade() -> None:
    op.add_column("jobs", _json_list("warnings"))
    op.add_column("jobs", sa.Column("error_code", sa.String(length=64), nullable=True))
    op.add_column(
        "jobs",
        sa.Column("progress_missed", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("data_sources", _json_list("last_warnings"))
    op.execute(RECOUNT)


def downgrade() -> None:
    op.drop_column("data_sources", "last_warnings")
    op.drop_column("jobs", "progress_missed")
    op.drop_column("jobs", "error_code")
    op.drop_column("jobs", "warnings")
