"""Streaming CSV records with exact byte offsets, for resumable imports of multi-GB files.

Why not `csv.reader(open(path))`: a checkpoint must name the byte offset where the next record
starts, and a text-mode file cannot tell that (its `tell()` is opaque, and read-ahead hides the
parser's real position). So the file is read as bytes in large chunks and split into physical
lines; each line is decoded on its own and handed to the C `csv.reader`, which pulls exactly
the lines one record needs (a quoted field with newlines pulls several) and never reads ahead.
The lines a record consumed are therefore known: their byte lengths give the next offset, their
count the physical line number, and their text the raw record for error reports.

Memory stays bounded: one chunk, one record. A record still open after `max_record_bytes`
(an unterminated quote swallowing the file) is reported and reading resumes on the line after
the one where it started; so does an unterminated quote at end of file.

`sniff()` works out the layout once per file (encoding, delimiter, header row after any
preamble such as LinkedIn's `Notes:` block); the layout goes into the checkpoint so a resumed
job does not sniff again.
"""

from __future__ import annotations

import codecs
import csv
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, NamedTuple

import charset_normalizer

from connectors.errors import ConfigError

CHUNK_BYTES = 1 << 20
SAMPLE_BYTES = 256 << 10
MAX_RECORD_BYTES = 1 << 20
HEADER_SEARCH_RECORDS = 50
DELIMITERS = (",", ";", "\t")
#: Single-byte encodings charset-normalizer may pick for non-UTF-8 files. Not cp1250: on short
#: Western samples it wins ties against cp1252 and turns `è` into `č` (set `encoding` for it).
EIGHT_BIT_ENCODINGS = ["cp1252", "latin_1", "cp1251"]
_UTF8_BOM = codecs.BOM_UTF8
_WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


@dataclass(frozen=True, slots=True)
class Layout:
    """How to read a file: found by `sniff()`, stored in checkpoints."""

    encoding: str
    delimiter: str
    header: tuple[str, ...]
    header_line: int  # physical line of the header row
    data_offset: int  # byte offset of the first data record
    data_line: int  # physical lines before the first data record


@dataclass(slots=True)
class Position:
    """Where reading stands: everything before `offset` has been turned into records."""

    offset: int  # byte offset of the next unread record
    line: int  # physical lines consumed so far
    record: int  # data records consumed so far


class Record(NamedTuple):
    """One CSV record: `cells` is None when the record could not be parsed (`problem` says why)."""

    number: int  # 1-based data record number
    line: int  # physical line where the record starts
    cells: list[str] | None
    raw_lines: list[bytes]
    problem: str | None = None


class LineTooLong(ConfigError):
    """A physical line longer than `max_record_bytes`: not a CSV file."""


class _RecordTooLarge(Exception):
    pass


def decode_line(line: bytes, encoding: str) -> str:
    """Decode one line; a UTF-8 file with a stray 8-bit line falls back to cp1252 / Latin-1."""
    try:
        return line.decode(encoding)
    except UnicodeDecodeError:
        try:
            return line.decode("cp1252")
        except UnicodeDecodeError:
            return line.decode("latin_1")


class RecordReader:
    """Iterate over the records of `stream` from `start`; `position` is kept current.

    `stream` must be a binary stream; it is seeked only to start and to recover from an
    unterminated quote.
    """

    def __init__(
        self,
        stream: IO[bytes],
        *,
        encoding: str,
        delimiter: str,
        start: Position,
        max_record_bytes: int = MAX_RECORD_BYTES,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self._stream = stream
        self._encoding = encoding
        self._delimiter = delimiter
        self._max = max_record_bytes
        self._chunk = chunk_bytes
        self.position = Position(start.offset, start.line, start.record)
        self._pending: list[bytes] = []

    def __iter__(self) -> Iterator[Record]:
        pos = self.position
        pending = self._pending
        make = tuple.__new__  # skips NamedTuple's Python-level __new__ on the hot path
        rows = self._open(pos.offset)
        while True:
            try:
                for cells in rows:
                    start = pos.line + 1
                    if len(pending) == 1:
                        pos.offset += len(pending[0])
                        pos.line = start
                    else:
                        pos.offset += sum(map(len, pending))
                        pos.line += len(pending)
                    if not cells:
                        pending.clear()
                        continue  # a blank line is not a record
                    pos.record += 1
                    raw = pending.copy()
                    pending.clear()
                    yield make(Record, (pos.record, start, cells, raw, None))
                return
            except _RecordTooLarge:
                problem, resync = "record_too_large", True
            except csv.Error as exc:
                problem = str(exc)
                # An unterminated quote (hitting end of file or the field size limit): re-read
                # from the line after the one where the record started.
                resync = "end of data" in problem or "field limit" in problem
                if resync:
                    problem = "unterminated_quote"
            start = pos.line + 1
            if resync:
                del pending[1:]
            pos.offset += sum(map(len, pending))
            pos.line += len(pending)
            pos.record += 1
            raw = pending.copy()
            pending.clear()
            yield Record(pos.record, start, None, raw, problem)
            if resync:
                rows = self._open(pos.offset)

    def _open(self, offset: int) -> Iterator[list[str]]:
        self._stream.seek(offset)
        self._pending.clear()
        return csv.reader(self._lines(), delimiter=self._delimiter, strict=True)

    def _lines(self) -> Iterator[str]:
        """Decoded physical lines (with their line ends); raw bytes go to `_pending`."""
        read = self._stream.read
        pending = self._pending
        append = pending.append
        encoding = self._encoding
        limit = self._max
        rest = b""
        while True:
            chunk = read(self._chunk)
            if not chunk:
                break
            parts = (rest + chunk).splitlines(keepends=True) if rest else chunk.splitlines(True)
            rest = parts.pop()
            if rest.endswith(b"\r"):
                pass  # a CRLF may be split across chunks: keep the CR until the next chunk
            elif rest.endswith(b"\n"):
                parts.append(rest)
                rest = b""
            if len(rest) > limit:
                raise LineTooLong(f"a line is longer than {limit} bytes: this is not a CSV file")
            for line in parts:
                append(line)
                if len(pending) > 64 and sum(map(len, pending)) > limit:
                    raise _RecordTooLarge
                try:
                    yield line.decode(encoding)
                except UnicodeDecodeError:
                    yield decode_line(line, encoding)
        if rest:
            append(rest)
            yield decode_line(rest, encoding)


# ---------------------------------------------------------------------------------------------
# Sniffing


def detect_encoding(sample: bytes) -> tuple[str, int]:
    """`(codec, bytes to skip)` for a file starting with `sample`.

    UTF-8 with a BOM, else UTF-8 if the sample decodes, else the 8-bit codepage
    charset-normalizer finds most plausible (cp1252 when it has no opinion).
    """
    if sample.startswith(_UTF8_BOM):
        return "utf-8", len(_UTF8_BOM)
    if sample.startswith(_WIDE_BOMS) or b"\x00" in sample:
        raise ConfigError("the file is UTF-16/UTF-32 or binary: save it as CSV UTF-8")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8", 0
    except UnicodeDecodeError:
        pass
    best = charset_normalizer.from_bytes(sample, cp_isolation=EIGHT_BIT_ENCODINGS).best()
    if best is None:
        return "cp1252", 0
    return codecs.lookup(best.encoding).name, 0


def sniff(
    stream: IO[bytes],
    *,
    header_score: Callable[[list[str]], int],
    encoding: str | None = None,
    delimiter: str | None = None,
) -> Layout:
    """Find encoding, delimiter and header row of the file in `stream`.

    The header is the first record (within the first `HEADER_SEARCH_RECORDS`) that
    `header_score` rates at least 2 (1 for a one-column file); rows before it are a preamble.
    With several candidate delimiters, the one whose header scores highest wins, then the one
    whose following rows have the header's width most often.
    """
    stream.seek(0)
    sample = stream.read(SAMPLE_BYTES)
    if not sample.strip():
        raise ConfigError("the file is empty")
    found, skip = detect_encoding(sample)
    if encoding is None:
        encoding = found
    elif not sample.startswith(_UTF8_BOM):
        skip = 0
    cut = max(sample.rfind(b"\n"), sample.rfind(b"\r")) + 1
    if len(sample) == SAMPLE_BYTES and cut > 0:
        sample = sample[:cut]  # only whole lines
    best: tuple[int, int, int] | None = None
    layout: Layout | None = None
    for index, candidate in enumerate((delimiter,) if delimiter else DELIMITERS):
        found_layout, width_matches = _header_for(sample, skip, encoding, candidate, header_score)
        if found_layout is None:
            continue
        score = header_score(list(found_layout.header))
        rank = (score, width_matches, -index)
        if best is None or rank > best:
            best, layout = rank, found_layout
    if layout is None:
        raise ConfigError(
            "no recognisable header row in the first lines of the file: expected columns such "
            "as Email, First Name, Last Name, Company, LinkedIn URL (or set column_map)"
        )
    return layout


def _header_for(
    sample: bytes,
    skip: int,
    encoding: str,
    delimiter: str,
    header_score: Callable[[list[str]], int],
) -> tuple[Layout | None, int]:
    import io

    reader = RecordReader(
        io.BytesIO(sample),
        encoding=encoding,
        delimiter=delimiter,
        start=Position(skip, 0, 0),
        max_record_bytes=len(sample) + 1,
    )
    layout: Layout | None = None
    width_matches = 0
    for seen, record in enumerate(reader):
        if layout is not None:
            if record.cells is not None and len(record.cells) == len(layout.header):
                width_matches += 1
            if seen > HEADER_SEARCH_RECORDS * 2:
                break
            continue
        if seen >= HEADER_SEARCH_RECORDS:
            break
        cells = record.cells
        if cells is None:
            continue
        filled = [cell for cell in cells if cell.strip()]
        if filled and header_score(cells) >= min(2, len(filled)):
            pos = reader.position
            layout = Layout(
                encoding=encoding,
                delimiter=delimiter,
                header=tuple(cell.strip() for cell in cells),
                header_line=record.line,
                data_offset=pos.offset,
                data_line=pos.line,
            )
    return layout, width_matches
