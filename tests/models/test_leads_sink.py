"""The lead sink against real PostgreSQL: identity resolution, merge rules, counters."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from models import Lead, LeadKey, LeadSource
from models.leads_sink import SinkResult, write_page
from records import LeadRecord
from tests.factories import make_domain, make_job, make_source


def _write(
    engine: Engine,
    ids: dict[str, uuid.UUID],
    records: list[LeadRecord],
    campaign_id: uuid.UUID | None = None,
) -> SinkResult:
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        result = write_page(
            raw,
            domain_id=ids["domain"],
            data_source_id=ids["source"],
            job_id=ids["job"],
            provider="synthetic",
            records=records,
            campaign_id=campaign_id,
        )
        raw.commit()
    return result


def _setup(engine: Engine) -> dict[str, uuid.UUID]:
    domain = make_domain(engine)
    source = make_source(engine, domain)
    return {"domain": domain, "source": source, "job": make_job(engine, domain, source)}


def test_new_matching_and_folded_records_are_counted_apart(engine: Engine) -> None:
    ids = _setup(engine)
    # Given a page with two new people, an in-page duplicate and a record without keys
    first = _write(
        engine,
        ids,
        [
            LeadRecord(first_name="Ada", email="Ada@Example.com"),
            LeadRecord(email="ada@example.com", title="CTO", linkedin_url="linkedin.com/in/ada"),
            LeadRecord(first_name="Bob", linkedin_url="https://www.linkedin.com/in/bob/"),
            LeadRecord(first_name="Nobody"),
        ],
    )
    # Then the duplicate folds (and contributes its title and LinkedIn key)
    assert (first.inserted, first.updated, first.unchanged, first.rejected) == (2, 0, 1, 1)
    assert [e.code for e in first.errors] == ["no_identity"]
    with Session(engine) as session:
        ada = session.scalar(select(Lead).where(Lead.email == "ada@example.com"))
        assert ada is not None and ada.title == "CTO" and ada.first_name == "Ada"
        keys = set(session.scalars(select(LeadKey.key).where(LeadKey.lead_id == ada.id)))
        assert keys == {"email:ada@example.com", "li:https://www.linkedin.com/in/ada"}

    # When a second page matches Ada by LinkedIn URL only and brings a phone; Bob again unchanged
    second = _write(
        engine,
        ids,
        [
            LeadRecord(linkedin_url="https://de.linkedin.com/in/ada", phone="+1 555", title="CEO"),
            LeadRecord(first_name="Robert", linkedin_url="https://www.linkedin.com/in/bob"),
        ],
    )
    assert (second.inserted, second.updated, second.unchanged, second.rejected) == (0, 1, 1, 0)
    with Session(engine) as session:
        ada = session.scalar(select(Lead).where(Lead.email == "ada@example.com"))
        assert ada is not None
        # merge fills empty fields and never overwrites: the title stays CTO
        assert (ada.phone, ada.title) == ("+1 555", "CTO")
        bob = session.scalar(select(Lead).where(Lead.linkedin_url.like("%/bob")))
        assert bob is not None and bob.first_name == "Bob"
        assert session.scalar(select(func.count()).select_from(Lead)) == 2
        # one provenance row per (job, lead), even though both pages touched both leads
        assert session.scalar(select(func.count()).select_from(LeadSource)) == 2


def test_replaying_a_page_changes_nothing(engine: Engine) -> None:
    ids = _setup(engine)
    page = [LeadRecord(email=f"p{i}@x.example", first_name=f"P{i}") for i in range(500)]
    assert _write(engine, ids, page).inserted == 500
    again = _write(engine, ids, page)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 500)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 500
        assert session.scalar(select(func.count()).select_from(LeadKey)) == 500
        assert session.scalar(select(func.count()).select_from(LeadSource)) == 500


def test_a_key_owned_by_another_lead_is_left_as_merge_candidate(engine: Engine) -> None:
    ids = _setup(engine)
    _write(
        engine,
        ids,
        [LeadRecord(email="a@x.example"), LeadRecord(linkedin_url="linkedin.com/in/bobby")],
    )
    # A record claims a's email and b's LinkedIn URL: it matches a (email has priority)
    record = LeadRecord(email="a@x.example", linkedin_url="linkedin.com/in/bobby", phone="+1 5")
    result = _write(engine, ids, [record])
    assert result.merge_candidates == 1
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 0)
    with Session(engine) as session:
        a = session.scalar(select(Lead).where(Lead.email == "a@x.example"))
        # a gains the phone but never b's LinkedIn URL
        assert a is not None and a.phone == "+1 5" and a.linkedin_url is None
        owner: str | None = session.execute(
            text(
                "SELECT l.email FROM lead_keys k JOIN leads l ON l.id = k.lead_id "
                "WHERE key LIKE 'li:%'"
            )
        ).scalar_one()
        assert owner is None  # still b's key


def test_other_domains_never_match(engine: Engine) -> None:
    ids_a = _setup(engine)
    ids_b = _setup(engine)
    record = [LeadRecord(email="same@x.example")]
    assert _write(engine, ids_a, record).inserted == 1
    assert _write(engine, ids_b, record).inserted == 1


def test_an_in_page_duplicate_does_not_carry_another_records_identity(engine: Engine) -> None:
    ids = _setup(engine)
    # Given a page where record 3 matches Cat by email but brings Ann's LinkedIn URL
    result = _write(
        engine,
        ids,
        [
            LeadRecord(first_name="Cat", email="cat@x.example"),
            LeadRecord(first_name="Ann", linkedin_url="linkedin.com/in/ann-x"),
            LeadRecord(email="cat@x.example", linkedin_url="linkedin.com/in/ann-x"),
        ],
    )
    assert (result.inserted, result.unchanged) == (2, 1)
    with Session(engine) as session:
        ann = session.scalar(select(Lead).where(Lead.first_name == "Ann"))
        cat = session.scalar(select(Lead).where(Lead.first_name == "Cat"))
        assert ann is not None and cat is not None
        # Then the LinkedIn URL stays with the lead that owns its key
        assert cat.linkedin_url is None
        assert ann.linkedin_url == "https://www.linkedin.com/in/ann-x"


def test_the_migrated_lead_columns_are_as_wide_as_the_record_declares(engine: Engine) -> None:
    """records.LeadRecord declares each lead field's width once; the migrated `leads` table, the
    ORM model and the sink's cutting must all agree with it."""
    from models.leads_sink import FIELD_LIMITS
    from records import FIELD_MAX_LEN, LEAD_FIELDS

    with engine.connect() as conn:
        widths = dict(
            conn.execute(
                text(
                    "SELECT column_name, character_maximum_length FROM information_schema.columns"
                    " WHERE table_name = 'leads' AND column_name = ANY(:names)"
                ),
                {"names": list(LEAD_FIELDS)},
            ).all()
        )
    assert widths == {name: FIELD_MAX_LEN[name] for name in LEAD_FIELDS}
    assert widths == FIELD_LIMITS
    assert {c: Lead.__table__.c[c].type.length for c in LEAD_FIELDS} == widths  # type: ignore[attr-defined]


def _versions(engine: Engine) -> dict[uuid.UUID, str]:
    """Each lead's row version: it changes whenever a statement rewrites the row."""
    with Session(engine) as session:
        rows = session.execute(text("SELECT id, xmin::text FROM leads")).all()
        return {row[0]: row[1] for row in rows}


def test_an_unchanged_page_rewrites_no_lead_but_records_provenance(engine: Engine) -> None:
    ids = _setup(engine)
    page = [
        LeadRecord(email=f"u{i}@x.example", first_name="U", linkedin_url=f"linkedin.com/in/u{i}")
        for i in range(50)
    ]
    _write(engine, ids, page)
    before = _versions(engine)
    # When a second job brings the same records again
    ids["job"] = make_job(engine, ids["domain"], ids["source"])
    again = _write(engine, ids, page)
    # Then nothing is counted as changed, no lead row is rewritten, and the job has provenance
    assert (again.inserted, again.updated, again.unchanged, again.merge_candidates) == (0, 0, 50, 0)
    assert _versions(engine) == before
    with Session(engine) as session:
        per_job = session.execute(
            select(LeadSource.job_id, func.count()).group_by(LeadSource.job_id)
        ).all()
        assert sorted(count for _, count in per_job) == [50, 50]


def test_a_match_fills_the_campaign_only_where_the_lead_has_none(engine: Engine) -> None:
    ids = _setup(engine)
    _write(engine, ids, [LeadRecord(email="c1@x.example"), LeadRecord(email="c2@x.example")])
    with Session(engine) as session, session.begin():
        campaign: uuid.UUID = session.execute(
            text(
                "INSERT INTO campaigns (domain_id, name, slug) VALUES (:d, 'c', 'c') RETURNING id"
            ),
            {"d": ids["domain"]},
        ).scalar_one()
        session.execute(
            text("UPDATE leads SET campaign_id = :c WHERE email = 'c2@x.example'"),
            {"c": campaign},
        )
    before = _versions(engine)
    records = [LeadRecord(email="c1@x.example"), LeadRecord(email="c2@x.example")]
    result = _write(engine, ids, records, campaign)
    # c1 gains the campaign (updated); c2 already has it: untouched
    assert (result.updated, result.unchanged) == (1, 1)
    after = _versions(engine)
    with Session(engine) as session:
        c1, c2 = (
            session.scalar(select(Lead).where(Lead.email == f"c{n}@x.example")) for n in (1, 2)
        )
        assert c1 is not None and c2 is not None
        assert c1.campaign_id == campaign == c2.campaign_id
        assert after[c1.id] != before[c1.id] and after[c2.id] == before[c2.id]


def test_a_second_record_matching_the_same_lead_only_brings_its_new_keys(engine: Engine) -> None:
    ids = _setup(engine)
    _write(engine, ids, [LeadRecord(email="ann@x.example", linkedin_url="linkedin.com/in/ann")])
    # Two records of one page match Ann: by email, and by LinkedIn URL with a new email
    result = _write(
        engine,
        ids,
        [
            LeadRecord(email="ann@x.example", title="CEO"),
            LeadRecord(email="ann2@x.example", linkedin_url="linkedin.com/in/ann", city="Oslo"),
        ],
    )
    # The first applies its fields; the second folds into it but attaches its unowned key
    assert (result.inserted, result.updated, result.unchanged) == (0, 1, 1)
    with Session(engine) as session:
        ann = session.scalar(select(Lead).where(Lead.email == "ann@x.example"))
        assert ann is not None and ann.title == "CEO" and ann.city is None
        keys = set(session.scalars(select(LeadKey.key).where(LeadKey.lead_id == ann.id)))
        assert "email:ann2@x.example" in keys
        assert session.scalar(select(func.count()).select_from(Lead)) == 1


def _blocked_by(engine: Engine, pid: int) -> int:
    with Session(engine) as session:
        query = "SELECT count(*) FROM pg_stat_activity WHERE :pid = ANY(pg_blocking_pids(pid))"
        return int(session.execute(text(query), {"pid": pid}).scalar_one())


def test_a_writer_waiting_for_the_domain_sees_the_keys_committed_before_it(
    engine: Engine,
) -> None:
    """Keys are attached with a plain INSERT: safe only because owners are read after the lock."""
    ids = _setup(engine)
    page = [LeadRecord(email=f"w{i}@x.example", first_name="W") for i in range(20)]
    second: list[SinkResult] = []
    with engine.connect() as first_conn:
        first_raw: Any = first_conn.connection.driver_connection
        # Given a first writer holding the domain's lock with its keys not yet committed
        write_page(
            first_raw,
            domain_id=ids["domain"],
            data_source_id=ids["source"],
            job_id=ids["job"],
            provider="synthetic",
            records=page,
        )
        pid = first_raw.info.backend_pid
        thread = threading.Thread(target=lambda: second.append(_write(engine, ids, page)))
        thread.start()
        # When a second writer of the same records waits for the lock
        deadline = time.monotonic() + 10
        while not _blocked_by(engine, pid):
            assert time.monotonic() < deadline, "the second writer never waited for the lock"
        first_raw.commit()
        thread.join(10)
    # Then it matches every lead the first one made: no duplicate, no key collision
    assert len(second) == 1
    assert (second[0].inserted, second[0].unchanged) == (0, 20)
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 20
        assert session.scalar(select(func.count()).select_from(LeadKey)) == 20


def test_owners_are_probed_per_key_not_found_by_scanning_the_domain(engine: Engine) -> None:
    from models.leads_sink import _OWNERS

    ids = _setup(engine)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE lead_keys"))  # statistics of an empty table: stale from now
        conn.commit()
    _write(engine, ids, [LeadRecord(email=f"s{i}@x.example") for i in range(2000)])
    keys = [f"email:s{i}@x.example" for i in range(0, 2000, 10)]
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute(
                "EXPLAIN (ANALYZE, COSTS OFF) " + _OWNERS,
                {"domain_id": ids["domain"], "keys": keys},
            )
            plan = "\n".join(row[0] for row in cur.fetchall())
        raw.rollback()
    # one index probe per key: no row of the domain is read and thrown away
    assert "Index Cond: ((domain_id = " in plan and "(key = k.key)" in plan, plan
    assert "Rows Removed by Filter" not in plan, plan


def _rows_read_from(plan: dict[str, Any], table: str) -> int:
    """Rows the scan nodes of `plan` (EXPLAIN ANALYZE, FORMAT JSON) read from `table`."""
    scans = plan.get("Relation Name") == table and plan["Node Type"] != "ModifyTable"
    own = plan["Actual Rows"] * plan["Actual Loops"] if scans else 0
    return own + sum(_rows_read_from(child, table) for child in plan.get("Plans", []))


def test_filling_matched_leads_probes_them_by_key_whatever_the_statistics(engine: Engine) -> None:
    from models import row_security
    from models.leads_sink import _FILL_EMPTY, LEAD_COLUMNS

    ids = _setup(engine)
    with engine.connect() as conn:
        conn.execute(text("ANALYZE leads"))  # statistics from before the domain had a lead
        conn.commit()
    _write(engine, ids, [LeadRecord(email=f"f{i}@x.example") for i in range(3000)])
    with Session(engine) as session:
        lead_ids = list(session.scalars(select(Lead.id).where(Lead.domain_id == ids["domain"])))
    fill = lead_ids[::15]
    params: dict[str, Any] = {"domain_id": ids["domain"], "campaign_id": None, "lead_id": fill}
    for column in LEAD_COLUMNS:
        params[column] = ["Ada" if column == "first_name" else None for _ in fill]
    with engine.connect() as conn:
        row_security.apply(conn, ids["domain"])  # under the domain's policies, as the runner
        raw: Any = conn.connection.driver_connection
        with raw.cursor() as cur:
            cur.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + _FILL_EMPTY, params)
            plan = cur.fetchone()[0][0]["Plan"]
            cur.execute("SELECT count(*) FROM leads WHERE first_name = 'Ada'")
            filled = cur.fetchone()[0]
        raw.rollback()
    # every chosen lead filled, and no lead of the domain read beyond those
    assert filled == len(fill) == 200
    assert _rows_read_from(plan, "leads") <= len(fill), plan
