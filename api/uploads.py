"""Streaming a multipart upload straight into `upload_chunks`, 1 MiB at a time.

Why not FastAPI's `UploadFile`: it spools the whole body to a temporary file before the route
runs, so a 5 GiB upload would fill the API's disk before the size limit could refuse it, and the
bytes would be copied twice. Here the request body is fed to python-multipart's incremental parser
as it arrives; the `file` part's bytes are cut into 1 MiB chunks, each written (in a worker thread,
so the event loop never blocks on the database) and then dropped. Memory stays at one chunk plus
one network read. Past `upload_max_bytes` the transaction is rolled back: no partial file remains.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import anyio
from python_multipart import MultipartParser
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import parse_options_header
from sqlalchemy.orm import Session

from models import uploads_repo
from models.sources import Upload
from runtime.errors import ClientError, FieldError, ValidationFailed

FILE_FIELD = "file"
#: room for the multipart envelope (boundaries, part headers) above the file's own bytes
ENVELOPE_SLACK = 64 * 1024


class PayloadTooLarge(ClientError):
    code = "payload_too_large"


@dataclass
class _Part:
    name: str | None = None
    filename: str | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class _FilePartCollector:
    """Parser callbacks: buffer the `file` part's bytes, ignore every other part."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.buffer = bytearray()
        self.size = 0
        self.file: _Part | None = None
        self.file_done = False
        self._part = _Part()
        self._header_field = bytearray()
        self._header_value = bytearray()

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self._on_part_begin,
            "on_header_field": self._on_header_field,
            "on_header_value": self._on_header_value,
            "on_header_end": self._on_header_end,
            "on_headers_finished": self._on_headers_finished,
            "on_part_data": self._on_part_data,
            "on_part_end": self._on_part_end,
        }

    def _on_part_begin(self) -> None:
        self._part = _Part()

    def _on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_field.extend(data[start:end])

    def _on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value.extend(data[start:end])

    def _on_header_end(self) -> None:
        name = self._header_field.decode("latin-1").strip().lower()
        # latin-1 maps every byte to one character, so the options parser gets the bytes back
        self._part.headers[name] = self._header_value.decode("latin-1").strip()
        self._header_field.clear()
        self._header_value.clear()

    def _on_headers_finished(self) -> None:
        disposition, options = parse_options_header(
            self._part.headers.get("content-disposition", "")
        )
        del disposition
        name = options.get(b"name")
        filename = options.get(b"filename")
        self._part.name = name.decode("utf-8", "replace") if name is not None else None
        if self._part.name != FILE_FIELD or self.file is not None:
            return
        self._part.filename = _part_text(filename, "file name")
        content_type = self._part.headers.get("content-type")
        self._part.content_type = _part_text(
            content_type.encode("latin-1") if content_type is not None else None, "content type"
        )
        self.file = self._part

    def _on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.file is not self._part or self.file_done:
            return
        self.size += end - start
        if self.size > self.max_bytes:
            raise PayloadTooLarge(f"the file is larger than the limit of {self.max_bytes} bytes")
        self.buffer.extend(data[start:end])

    def _on_part_end(self) -> None:
        if self.file is self._part:
            self.file_done = True

    def take_chunks(self, chunk_size: int, *, final: bool = False) -> list[bytes]:
        chunks = []
        while len(self.buffer) >= chunk_size or (final and self.buffer):
            chunks.append(bytes(self.buffer[:chunk_size]))
            del self.buffer[:chunk_size]
        return chunks


def _part_text(raw: bytes | None, what: str) -> str | None:
    """The `file` part's header text, which is stored: UTF-8 without NUL or a 422 (issue 14, M4)."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is None or "\x00" in text:
        raise ValidationFailed(
            f"the {what} of the upload is not valid UTF-8 text",
            [FieldError(FILE_FIELD, "invalid_header", f"the {what} must be UTF-8 without NUL")],
        )
    return text


class _ChunkWriter:
    """Owns one session/transaction for the whole upload; used from worker threads in turn."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.upload_id: uuid.UUID | None = None
        self.seq = 0
        self.digest = hashlib.sha256()

    def begin(
        self,
        domain_id: uuid.UUID,
        data_source_id: uuid.UUID,
        part: _Part,
        created_by: uuid.UUID | None,
    ) -> None:
        self.upload_id = uploads_repo.begin_upload(
            self.session,
            domain_id=domain_id,
            data_source_id=data_source_id,
            filename=part.filename or "upload",
            content_type=part.content_type,
            created_by=created_by,
        )

    def write(self, chunks: list[bytes]) -> None:
        assert self.upload_id is not None
        for chunk in chunks:
            self.digest.update(chunk)
            uploads_repo.add_chunk(self.session, self.upload_id, self.seq, chunk)
            self.seq += 1

    def finish(self, size: int) -> Upload:
        assert self.upload_id is not None
        upload = uploads_repo.complete_upload(
            self.session, self.upload_id, size=size, sha256=self.digest.hexdigest()
        )
        self.session.commit()
        return upload


def boundary_of(content_type: str | None) -> bytes:
    """The multipart boundary, or a 422 naming the `file` field when the body is not multipart."""
    kind, options = parse_options_header(content_type or "")
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise ValidationFailed(
            "expected multipart/form-data",
            [FieldError(FILE_FIELD, "missing", "send the file as multipart field 'file'")],
        )
    return boundary


async def store_upload(
    body: AsyncIterator[bytes],
    *,
    content_type: str | None,
    session: Session,
    domain_id: uuid.UUID,
    data_source_id: uuid.UUID,
    created_by: uuid.UUID | None,
    max_bytes: int,
) -> Upload:
    """Parse `body` and store its `file` part; rolls back everything on any error."""
    collector = _FilePartCollector(max_bytes)
    parser = MultipartParser(boundary_of(content_type), collector.callbacks())  # type: ignore[arg-type]
    writer = _ChunkWriter(session)
    chunk_size = uploads_repo.CHUNK_SIZE
    try:
        async for data in body:
            parser.write(data)
            if collector.file is not None and writer.upload_id is None:
                await anyio.to_thread.run_sync(
                    writer.begin, domain_id, data_source_id, collector.file, created_by
                )
            chunks = collector.take_chunks(chunk_size)
            if chunks:
                await anyio.to_thread.run_sync(writer.write, chunks)
        parser.finalize()
        if collector.file is None or writer.upload_id is None:
            raise ValidationFailed(
                "no file in the request",
                [FieldError(FILE_FIELD, "missing", "send the file as multipart field 'file'")],
            )
        last = collector.take_chunks(chunk_size, final=True)
        if last:
            await anyio.to_thread.run_sync(writer.write, last)
        return await anyio.to_thread.run_sync(writer.finish, collector.size)
    except MultipartParseError as exc:
        await anyio.to_thread.run_sync(session.rollback)
        # a malformed envelope (part headers past the parser's limit, a broken boundary) is the
        # client's fault: a 422 naming the field, not a 500 (issue 14, M4)
        raise ValidationFailed(
            "malformed multipart body",
            [FieldError(FILE_FIELD, "malformed_multipart", f"cannot read the upload: {exc}")],
        ) from None
    except BaseException:
        await anyio.to_thread.run_sync(session.rollback)
        raise
