"""Uploaded files stored in PostgreSQL as numbered chunks (ARCHITECTURE §1: no worker disk).

Writers add chunks one at a time as bytes arrive, so an upload never sits whole in memory; the
`uploads` row is marked complete (size, sha256, `completed_at`) in the same transaction as the
last chunk, so a reader never sees a half-written file as complete.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from models.sources import Upload, UploadChunk
from runtime.errors import NotFound

CHUNK_SIZE = 1 << 20


def begin_upload(
    session: Session,
    *,
    domain_id: uuid.UUID,
    data_source_id: uuid.UUID,
    filename: str,
    content_type: str | None,
    created_by: uuid.UUID | None,
) -> uuid.UUID:
    return session.execute(
        insert(Upload)
        .values(
            domain_id=domain_id,
            data_source_id=data_source_id,
            filename=filename[:500],
            content_type=(content_type or None) and content_type[:200],
            chunk_size=CHUNK_SIZE,
            created_by=created_by,
        )
        .returning(Upload.id)
    ).scalar_one()


def add_chunk(session: Session, upload_id: uuid.UUID, seq: int, data: bytes) -> None:
    session.execute(insert(UploadChunk).values(upload_id=upload_id, seq=seq, data=data))


def complete_upload(session: Session, upload_id: uuid.UUID, *, size: int, sha256: str) -> Upload:
    session.execute(
        update(Upload)
        .where(Upload.id == upload_id)
        .values(size=size, sha256=sha256, completed_at=func.now())
    )
    upload = session.get(Upload, upload_id, populate_existing=True)
    if upload is None:  # pragma: no cover - inserted in this transaction
        raise NotFound(f"upload {upload_id} not found")
    return upload


def latest_upload(
    session: Session, data_source_id: uuid.UUID, domain_id: uuid.UUID
) -> Upload | None:
    """The newest completed upload of a source (what a CSV job reads by default)."""
    return session.scalar(
        select(Upload)
        .where(
            Upload.data_source_id == data_source_id,
            Upload.domain_id == domain_id,
            Upload.completed_at.is_not(None),
        )
        .order_by(Upload.created_at.desc(), Upload.id.desc())
        .limit(1)
    )


def upload_for_job(
    session: Session,
    *,
    domain_id: uuid.UUID,
    data_source_id: uuid.UUID,
    config: Mapping[str, Any],
    file_id: str | None = None,
) -> str | None:
    """Which stored upload a CSV job of this source reads: the one answer the runner and the
    API's source check share (ARCHITECTURE §9).

    The job's `params.file_id`, else the source's `config.file_id`, else its newest completed
    upload in the domain; a source that names a server path (`config.path`, only where the
    settings allow them) reads that file instead of its latest upload. None: nothing to read
    from the database. An id given explicitly is returned as given; opening it checks it.
    """
    wanted = file_id or config.get("file_id")
    if wanted:
        return str(wanted)
    if config.get("path"):
        return None
    latest = latest_upload(session, data_source_id, domain_id)
    return str(latest.id) if latest is not None else None


def iter_chunks(session: Session, upload_id: uuid.UUID) -> Iterator[bytes]:
    """The file's bytes in order, fetching one chunk per query so memory stays at one chunk."""
    seq = -1
    while True:
        row = session.execute(
            select(UploadChunk.seq, UploadChunk.data)
            .where(UploadChunk.upload_id == upload_id, UploadChunk.seq > seq)
            .order_by(UploadChunk.seq)
            .limit(1)
        ).one_or_none()
        if row is None:
            return
        seq = int(row.seq)
        yield bytes(row.data)


def get_upload(session: Session, upload_id: uuid.UUID, data_source_id: uuid.UUID) -> Upload | None:
    """A completed upload of this data source (None for another source's or a partial file)."""
    return session.scalar(
        select(Upload).where(
            Upload.id == upload_id,
            Upload.data_source_id == data_source_id,
            Upload.completed_at.is_not(None),
        )
    )
