"""Maintained lead counts per domain, campaign and UTC time bucket: what analytics read.

Why: the analytics endpoints count the leads *created* in a period (a cohort) by status and
qualification, per local day / week / month in the caller's time zone. Counting `leads` for that
is a scan of every lead in the period — hundreds of thousands of rows for `1y` on a big domain.
`lead_stats` holds the same counts pre-aggregated, kept exact by statement-level triggers on
`leads` (migration 0003), so a year is a few thousand rows.

Why three grains (`grain` in minutes: 15, 60 and 1440, each a UTC-aligned bucket starting at
`bucket`): every time zone in use today has an offset that is a whole number of quarter hours
(+05:30 Kolkata, +05:45 Kathmandu, +08:45 Eucla), so every local midnight falls on a UTC
quarter-hour boundary and any local day, week or month is an exact union of 15-minute buckets.
Reading only quarters would cost 96 rows per day per campaign, so coarser grains cover the
inside of a range: a range is cut into quarters up to the first whole hour, hours up to the first
whole UTC day, whole days, then hours and quarters again (`models.analytics_repo.plan`). A
boundary that is not on a quarter hour (historical local mean time offsets) and the last partial
quarter before `now` are counted from `leads` directly, so results are exact in every case.

Columns: `leads` counts live (not soft-deleted) leads; one column per status; `q1`..`q5` count
qualification scores 1..5 (`qualification->>'score'`), `q_other` any other non-null score (then
the distribution falls back to `leads`), and unqualified is `leads - q1 - ... - q5 - q_other`.
`campaign_id` NULL means "no campaign"; the key treats NULLs as equal (PostgreSQL 15
`NULLS NOT DISTINCT`). There is no foreign key to `campaigns`: deleting a campaign sets its leads'
`campaign_id` to NULL, an UPDATE that the triggers fold into moving the counts to NULL.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, SmallInteger, text
from sqlalchemy.orm import Mapped, mapped_column

from models.base import Base

#: bucket widths in minutes, finest first
GRAINS = (15, 60, 1440)
#: the counted columns, in table order
STAT_COLUMNS = (
    "leads",
    "new",
    "contacted",
    "responded",
    "qualified",
    "rejected",
    "converted",
    "q1",
    "q2",
    "q3",
    "q4",
    "q5",
    "q_other",
)


def _count() -> Mapped[int]:
    return mapped_column(BigInteger, server_default=text("0"))


class LeadStats(Base):
    """One bucket of lead counts; written only by the triggers of migration 0003."""

    __tablename__ = "lead_stats"
    __table_args__ = (
        CheckConstraint("grain IN (15, 60, 1440)", name="grain_valid"),
        Index(
            "ux_lead_stats_key",
            "domain_id",
            "grain",
            "bucket",
            "campaign_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )
    # The table has no primary key (campaign_id is nullable); the ORM needs one to map the class.
    __mapper_args__ = {"primary_key": ["domain_id", "grain", "bucket", "campaign_id"]}

    domain_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("domains.id", ondelete="CASCADE"), nullable=False
    )
    campaign_id: Mapped[uuid.UUID | None] = mapped_column(nullable=True)
    grain: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    bucket: Mapped[datetime] = mapped_column(nullable=False)
    leads: Mapped[int] = _count()
    new: Mapped[int] = _count()
    contacted: Mapped[int] = _count()
    responded: Mapped[int] = _count()
    qualified: Mapped[int] = _count()
    rejected: Mapped[int] = _count()
    converted: Mapped[int] = _count()
    q1: Mapped[int] = _count()
    q2: Mapped[int] = _count()
    q3: Mapped[int] = _count()
    q4: Mapped[int] = _count()
    q5: Mapped[int] = _count()
    q_other: Mapped[int] = _count()
