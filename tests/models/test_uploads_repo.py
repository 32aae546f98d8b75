"""models.uploads_repo.upload_for_job: the one answer to "which upload does this CSV job read"."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from models import uploads_repo
from tests.factories import make_domain, make_source, make_upload


def _which(
    engine: Engine,
    domain: uuid.UUID,
    source: uuid.UUID,
    config: dict[str, str],
    file_id: str | None = None,
) -> str | None:
    with Session(engine) as session:
        return uploads_repo.upload_for_job(
            session, domain_id=domain, data_source_id=source, config=config, file_id=file_id
        )


def test_the_jobs_file_then_the_sources_then_its_latest_upload(engine: Engine) -> None:
    domain = make_domain(engine)
    source = make_source(engine, domain, "csv")
    # Given a source with no upload, nothing is read from the database
    assert _which(engine, domain, source, {}) is None
    old = make_upload(engine, domain, source, "email\nold@x.example\n")
    new = make_upload(engine, domain, source, "email\nnew@x.example\n")
    # Then its latest upload is read, unless the source or the job names one
    assert _which(engine, domain, source, {}) == new
    assert _which(engine, domain, source, {"file_id": old}) == old
    assert _which(engine, domain, source, {"file_id": old}, file_id=new) == new
    # and a source reading a server path reads that, not its latest upload
    assert _which(engine, domain, source, {"path": "/srv/leads.csv"}) is None


def test_the_latest_upload_is_one_of_this_domains_sources(engine: Engine) -> None:
    domain = make_domain(engine)
    source = make_source(engine, domain, "csv")
    make_upload(engine, domain, source, "email\na@x.example\n")
    # Given the same source id asked for in another domain, none of its uploads is an answer
    assert _which(engine, make_domain(engine), source, {}) is None
