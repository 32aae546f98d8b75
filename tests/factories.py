"""Rows for tests, written straight to the database (no API involved)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy import Engine, insert
from sqlalchemy.orm import Session

from models import DataSource, Domain, Membership, User, uploads_repo


def make_domain(engine: Engine, name: str | None = None) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        return session.execute(
            insert(Domain)
            .values(domain_name=name or f"d{uuid.uuid4().hex[:10]}.example")
            .returning(Domain.id)
        ).scalar_one()


def make_user(engine: Engine, domain_id: uuid.UUID, role: str = "manager") -> uuid.UUID:
    with Session(engine) as session, session.begin():
        user_id = session.execute(
            insert(User)
            .values(email=f"u{uuid.uuid4().hex[:10]}@example.com", signup_domain_id=domain_id)
            .returning(User.id)
        ).scalar_one()
        session.execute(insert(Membership).values(domain_id=domain_id, user_id=user_id, role=role))
        return user_id


def make_source(
    engine: Engine,
    domain_id: uuid.UUID,
    type_: str = "synthetic",
    config: dict[str, Any] | None = None,
    credentials: bytes | None = None,
) -> uuid.UUID:
    with Session(engine) as session, session.begin():
        return session.execute(
            insert(DataSource)
            .values(
                domain_id=domain_id,
                type=type_,
                name=f"{type_} source",
                config=config or {},
                credentials=credentials,
            )
            .returning(DataSource.id)
        ).scalar_one()


def make_job(
    engine: Engine,
    domain_id: uuid.UUID,
    source_id: uuid.UUID,
    params: dict[str, Any] | None = None,
    created_by: uuid.UUID | None = None,
) -> uuid.UUID:
    from models.jobs_repo import create_job

    with Session(engine) as session, session.begin():
        job = create_job(
            session,
            domain_id=domain_id,
            data_source_id=source_id,
            params=params,
            created_by=created_by,
        )
        assert job is not None
        return job.id


def make_upload(engine: Engine, domain_id: uuid.UUID, source_id: uuid.UUID, text: str) -> str:
    """An upload of `text` for the source, as `POST /data-sources/{id}/files` stores it."""
    data = text.encode()
    with Session(engine) as session, session.begin():
        upload_id = uploads_repo.begin_upload(
            session,
            domain_id=domain_id,
            data_source_id=source_id,
            filename="leads.csv",
            content_type="text/csv",
            created_by=None,
        )
        uploads_repo.add_chunk(session, upload_id, 0, data)
        uploads_repo.complete_upload(
            session, upload_id, size=len(data), sha256=hashlib.sha256(data).hexdigest()
        )
    return str(upload_id)
