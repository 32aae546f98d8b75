"""Reading an upload stored in PostgreSQL as a seekable binary stream (a job's `open_upload`).

The CSV connector resumes at a byte offset, so the reader maps any offset to (chunk, position)
and fetches one chunk at a time: constant memory whatever the file size.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable

from sqlalchemy import Engine, select

from models.sources import Upload, UploadChunk


class UploadReader(io.RawIOBase):
    def __init__(self, engine: Engine, upload_id: uuid.UUID, size: int, chunk_size: int) -> None:
        self._engine = engine
        self._upload_id = upload_id
        self._size = size
        self._chunk_size = chunk_size
        self._pos = 0
        self._chunk_no = -1
        self._chunk = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _load(self, chunk_no: int) -> None:
        with self._engine.connect() as conn:
            data = conn.execute(
                select(UploadChunk.data).where(
                    UploadChunk.upload_id == self._upload_id, UploadChunk.seq == chunk_no
                )
            ).scalar_one_or_none()
        self._chunk = bytes(data or b"")
        self._chunk_no = chunk_no

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._pos >= self._size:
            return 0
        chunk_no, offset = divmod(self._pos, self._chunk_size)
        if chunk_no != self._chunk_no:
            self._load(chunk_no)
        piece = self._chunk[offset : offset + len(buffer)]
        buffer[: len(piece)] = piece
        self._pos += len(piece)
        return len(piece)


def open_upload(
    engine: Engine,
    file_id: str,
    domain_id: uuid.UUID,
    data_source_id: uuid.UUID,
    missing: Callable[[str], Exception] = LookupError,
) -> io.BufferedReader:
    """A buffered stream over the data source's upload `file_id` (what a job or a source check
    reads). A malformed id or one naming no upload of this source raises `missing(message)`:
    the caller's own error type (a connector's `ConfigError`), as models know no connector."""
    try:
        upload_id = uuid.UUID(str(file_id))
    except ValueError:
        raise missing(f"file_id {file_id!r} is not a valid upload id") from None
    with engine.connect() as conn:
        row = conn.execute(
            select(Upload.size, Upload.chunk_size).where(
                Upload.id == upload_id,
                Upload.domain_id == domain_id,
                Upload.data_source_id == data_source_id,
            )
        ).one_or_none()
    if row is None:
        raise missing(f"upload {file_id} does not exist for this data source")
    return io.BufferedReader(
        UploadReader(engine, upload_id, int(row.size), int(row.chunk_size)), buffer_size=1 << 20
    )
