"""Retention purge: each domain's expired data goes in small batches, never in a running job's way.

Old data is made by back-dating rows (no clock tricks): a finished job of 200 days ago with log
lines, row errors and raw payloads, an old upload, next to a running job of today.
"""

from __future__ import annotations

import threading
import uuid

import psycopg
import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from models import job_states
from models.job_logs import LogLine
from models.job_states import append_log as append
from scheduler.purge import BATCH_ROWS, purge
from tests.factories import make_domain, make_job, make_source, make_upload, make_user

OLD = "now() - interval '200 days'"


def _old_job(engine: Engine, domain_id: uuid.UUID, source_id: uuid.UUID, lines: int) -> uuid.UUID:
    job_id = make_job(engine, domain_id, source_id, {}, make_user(engine, domain_id))
    with Session(engine) as session, session.begin():
        session.execute(
            text(
                f"UPDATE jobs SET status = 'completed', created_at = {OLD}, "
                f"started_at = {OLD}, finished_at = {OLD}, log_seq = :n WHERE id = :j"
            ),
            {"j": job_id, "n": lines},
        )
        session.execute(
            text(
                "INSERT INTO job_logs (job_id, seq, ts, level, event, message) "
                f"SELECT :j, g, {OLD}, 'info', 'old.line', 'old' FROM generate_series(1, :n) g"
            ),
            {"j": job_id, "n": lines},
        )
        session.execute(
            text(
                "INSERT INTO job_record_errors (job_id, record, code, message, raw) "
                "SELECT :j, g, 'invalid', 'bad', 'old-row' FROM generate_series(1, 5) g"
            ),
            {"j": job_id},
        )
    return job_id


def _running_job(engine: Engine, domain_id: uuid.UUID, source_id: uuid.UUID) -> uuid.UUID:
    job_id = make_job(engine, domain_id, source_id, {}, make_user(engine, domain_id))
    with Session(engine) as session, session.begin():
        job_states.start(session, job_id)
        assert job_states.acquire(session, job_id, max_attempts=5) is not None
    return job_id


def _count(engine: Engine, sql: str, **params: object) -> int:
    with Session(engine) as session:
        return int(session.scalar(text(sql), params) or 0)


def test_purge_follows_each_domains_retention_and_dry_run_removes_nothing(
    engine: Engine,
) -> None:
    # Given two domains with the same old data; the second keeps job logs forever
    keeper = make_domain(engine)
    purged = make_domain(engine)
    with Session(engine) as session, session.begin():
        session.execute(
            text(
                "UPDATE domains SET retain_job_logs_days = NULL, "
                "retain_finished_jobs_days = NULL WHERE id = :d"
            ),
            {"d": keeper},
        )
        session.execute(
            text("UPDATE domains SET retain_finished_jobs_days = NULL WHERE id = :d"),
            {"d": purged},
        )
    jobs = {}
    for domain in (keeper, purged):
        source = make_source(engine, domain)
        jobs[domain] = _old_job(engine, domain, source, lines=50)
        fresh = _running_job(engine, domain, source)
        with Session(engine) as session, session.begin():
            append(session, fresh, [LogLine("info", "fresh.line", "today")])

    # When a dry run looks, nothing changes but the counts are there
    before = _count(engine, "SELECT count(*) FROM job_logs")
    report = purge(engine, dry_run=True)
    assert report.rows[(_name(engine, purged), "job_logs")] == 50
    assert report.rows[(_name(engine, purged), "row_errors")] == 5
    assert (_name(engine, keeper), "job_logs") not in report.rows
    assert _count(engine, "SELECT count(*) FROM job_logs") == before

    # When the purge runs in batches of 7 rows
    done = purge(engine, batch_rows=7)

    # Then the purged domain lost its old lines and errors, kept today's line and the job row;
    # the keeper kept its log lines (its row errors follow the default, 90 days)
    assert done.rows[(_name(engine, purged), "job_logs")] == 50
    assert done.batches >= 50 // 7
    by_job = "SELECT count(*) FROM job_logs WHERE job_id = :j"
    assert _count(engine, by_job, j=jobs[purged]) == 0
    assert _count(engine, by_job, j=jobs[keeper]) == 50
    assert _count(engine, "SELECT count(*) FROM job_logs") == before - 50
    assert _count(engine, "SELECT count(*) FROM job_record_errors") == 0
    assert _count(engine, "SELECT count(*) FROM jobs") == 4
    assert purge(engine).rows == {}


def test_finished_jobs_go_whole_and_their_leads_stay(engine: Engine) -> None:
    domain = make_domain(engine)
    source = make_source(engine, domain)
    old = _old_job(engine, domain, source, lines=30)
    lead_id = uuid.uuid4()
    with Session(engine) as session, session.begin():
        session.execute(
            text("UPDATE domains SET retain_finished_jobs_days = 100 WHERE id = :d"), {"d": domain}
        )
        session.execute(
            text("INSERT INTO leads (id, domain_id, email) VALUES (:l, :d, 'kept@x.example')"),
            {"l": lead_id, "d": domain},
        )
        session.execute(
            text(
                "INSERT INTO lead_sources (domain_id, lead_id, data_source_id, job_id, raw, "
                f"created_at) VALUES (:d, :l, :s, :j, '{{\"a\": 1}}', {OLD})"
            ),
            {"d": domain, "l": lead_id, "s": source, "j": old},
        )
    done = purge(engine, batch_rows=10)
    assert done.rows[(_name(engine, domain), "raw_payloads")] == 1
    assert _count(engine, "SELECT count(*) FROM jobs WHERE id = :j", j=old) == 0
    assert _count(engine, "SELECT count(*) FROM leads") == 1
    assert (
        _count(engine, "SELECT count(*) FROM lead_sources WHERE raw IS NULL AND job_id IS NULL")
        == 1
    )


@pytest.mark.parametrize(
    "lines",
    [60_000, pytest.param(1_000_000, marks=pytest.mark.slow, id="1M")],
)
def test_a_purge_never_makes_a_running_jobs_commit_wait_100_ms_for_a_lock(
    engine: Engine, db_url: str, lines: int
) -> None:
    # Given old log lines (1M in the slow run) and a job writing pages (the runner's
    # statements) meanwhile, on a connection where any lock wait over 100 ms is an error
    domain = make_domain(engine)
    source = make_source(engine, domain)
    _old_job(engine, domain, source, lines=lines)
    running = _running_job(engine, domain, source)
    finished = threading.Event()
    errors: list[BaseException] = []
    commits = 0

    def write_pages() -> None:
        nonlocal commits
        try:
            with psycopg.connect(db_url, autocommit=False) as conn:
                conn.execute("SET lock_timeout = '100ms'")
                while not finished.is_set() or commits < 3:
                    with conn.transaction():
                        row = conn.execute(
                            "UPDATE jobs SET log_seq = log_seq + 1, heartbeat_at = now(), "
                            "fetched = fetched + 1, inserted = inserted + 1 WHERE id = %s "
                            "RETURNING log_seq",
                            (running,),
                        ).fetchone()
                        assert row is not None
                        conn.execute(
                            "INSERT INTO job_logs (job_id, seq, level, event, message) "
                            "VALUES (%s, %s, 'info', 'page.committed', 'page')",
                            (running, row[0]),
                        )
                    commits += 1
        except BaseException as exc:  # a lock timeout lands here
            errors.append(exc)

    writer = threading.Thread(target=write_pages)
    writer.start()
    # When the purge removes them in its batches
    try:
        report = purge(engine)  # the scheduler's batch size
    finally:
        finished.set()
        writer.join(timeout=60)
    # Then every page commit went through without a lock wait of 100 ms, and pages were
    # committed while the purge ran (not only after it)
    assert errors == []
    assert report.rows[(_name(engine, domain), "job_logs")] == lines
    assert report.batches >= lines // BATCH_ROWS
    assert commits >= 3
    page_lines = "SELECT count(*) FROM job_logs WHERE job_id = :j AND event = 'page.committed'"
    assert _count(engine, page_lines, j=running) == commits


def _name(engine: Engine, domain_id: uuid.UUID) -> str:
    with Session(engine) as session:
        return str(
            session.scalar(text("SELECT domain_name FROM domains WHERE id = :d"), {"d": domain_id})
        )


def test_uploads_older_than_the_domains_retention_go_with_their_chunks(engine: Engine) -> None:
    # Given a file uploaded 40 days ago and one of today (the default keeps uploads 30 days)
    domain = make_domain(engine)
    source = make_source(engine, domain, "csv", {})
    old = make_upload(engine, domain, source, "email\nold@example.com\n")
    fresh = make_upload(engine, domain, source, "email\nfresh@example.com\n")
    with Session(engine) as session, session.begin():
        session.execute(
            text("UPDATE uploads SET created_at = now() - interval '40 days' WHERE id = :u"),
            {"u": old},
        )
    # When the purge runs
    report = purge(engine)
    # Then the old file and its chunks are gone; today's file is whole
    assert report.rows[(_name(engine, domain), "uploads")] == 1
    chunks = "SELECT count(*) FROM upload_chunks WHERE upload_id = :u"
    assert _count(engine, "SELECT count(*) FROM uploads WHERE id = :u", u=old) == 0
    assert _count(engine, chunks, u=old) == 0
    assert _count(engine, chunks, u=fresh) == 1
