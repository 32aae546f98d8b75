"""Search off the page transaction: a lead is searchable at commit (the trigram index's pending
list is searched), and the merger folds the pending list into the index after commits."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from models.lead_search import merge_pending
from models.leads import Lead
from models.leads_repo import LeadFilter, filter_clauses
from models.leads_sink import write_page
from records import LeadRecord
from tests.factories import make_domain
from tests.workers.conftest import World
from workers import search_merge
from workers.runner import Runner


def _search(engine: Engine, q: str) -> tuple[list[Any], str]:
    """Ids the list's `q` filter finds, with the index forced (a tiny table would be scanned)."""
    query = select(Lead.id).where(*filter_clauses(LeadFilter(q=q)))
    with Session(engine) as session, session.begin():
        session.execute(text("SET LOCAL enable_seqscan = off"))
        sql = str(query.compile(engine, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(str(r[0]) for r in session.execute(text("EXPLAIN " + sql)))
        found = list(session.scalars(query))
    return found, plan


def test_a_lead_is_searchable_at_commit_and_merged_after(engine: Engine) -> None:
    domain = make_domain(engine)
    with engine.connect() as conn:
        raw: Any = conn.connection.driver_connection
        write_page(
            raw,
            domain_id=domain,
            data_source_id=None,
            job_id=None,
            provider="manual",
            records=[LeadRecord(email="zed.quarkson@x.example", first_name="Zedediah")],
        )
        raw.commit()
    found, plan = _search(engine, "zedediah")
    assert len(found) == 1 and "ix_leads_search_trgm" in plan  # from the pending list

    merger = search_merge.SearchMerger(engine, interval_s=0.0)
    merger.poke()
    assert merger.wait_rounds(1, timeout=60)
    assert merger.merged_pages >= 1  # the page's entries were pending, now in the tree
    with engine.begin() as conn:
        assert merge_pending(conn) == 0
    assert _search(engine, "zedediah")[0] == found
    merger.stop()


def test_the_runner_asks_for_a_merge_after_committing_leads(
    world: World, runner: Runner, engine: Engine
) -> None:
    merger = search_merge.merger_for(engine)
    rounds = merger.rounds
    job_id = world.queued_job(total=300, page_size=100)
    assert runner.run(job_id) == "completed"
    assert merger.wait_rounds(rounds + 1, timeout=60)
    # every page committed before the last round began is merged (a later poke may be
    # pending, which is why the check is on the rounds, not on an empty list)
    with Session(engine) as session:
        assert session.scalar(select(Lead.id).limit(1)) is not None
