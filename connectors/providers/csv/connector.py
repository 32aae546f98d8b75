"""`csv`: leads from uploaded CSV files (and server paths, when the operator allows them).

Files come from anywhere: Apollo and Sales Navigator exports, LinkedIn's Connections.csv (with
its `Notes:` preamble), spreadsheets saved by Excel in cp1252 with `;` delimiters. The layout is
sniffed once (`connectors.kit.csv_reader`), headers are matched to lead fields by synonym (or by the
data source's `column_map`), and every row becomes either a `LeadRecord` or a `RecordError`.

Row rules (documented for operators in the job's row errors) are in `connectors.providers.csv.rows`.

Checkpoints hold the byte offset of the next record, the physical line and record counters,
and the sniffed layout, so a resumed job seeks straight there without sniffing again.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from itertools import islice
from pathlib import Path
from typing import IO, Any

from pydantic import Field, ValidationInfo, field_validator

from connectors.base import (
    Checkpoint,
    CheckResult,
    Connector,
    ConnectorConfig,
    ConnectorParams,
    Page,
    Progress,
    RunContext,
)
from connectors.errors import ConfigError
from connectors.kit.csv_reader import Layout, Position, RecordReader, sniff
from connectors.providers.csv.rows import DROPPED_EXAMPLES as DROPPED_EXAMPLES
from connectors.providers.csv.rows import RAW_MAX_CHARS as RAW_MAX_CHARS
from connectors.providers.csv.rows import DroppedValues as DroppedValues
from connectors.providers.csv.rows import RowMapper
from records import LeadField, LeadRecord, RecordError
from records.normalize import field_for_header


class CsvConfig(ConnectorConfig):
    #: an uploaded file of this data source (a job's `params.file_id` wins)
    file_id: str | None = None
    #: a file on the worker's disk; only when the settings allow server paths
    path: str | None = None
    #: header text → lead field (or null to ignore the column); wins over the header synonyms
    column_map: dict[str, LeadField | None] = Field(default_factory=dict)
    #: the delimiter, when sniffing among `,` `;` tab is not wanted
    delimiter: str | None = Field(None, min_length=1, max_length=1)
    #: the file's encoding (a Python codec name), when detection is not wanted
    encoding: str | None = None
    page_size: int = Field(5000, ge=1, le=100_000)

    @field_validator("path")
    @classmethod
    def _server_paths_allowed(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None or (info.context or {}).get("allow_server_paths"):
            return value
        _require_server_paths()
        return value

    @field_validator("delimiter")
    @classmethod
    def _usable_delimiter(cls, value: str | None) -> str | None:
        if value is not None and value in '"\r\n':
            raise ValueError("a delimiter cannot be a quote or a line break")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            info = codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown encoding {value!r}") from None
        # zlib, base64, rot13...: codecs Python has, but not text encodings a file is saved in
        if not getattr(info, "_is_text_encoding", True):
            raise ValueError(f"{value!r} is not a text encoding")
        try:
            ascii_safe = "\n,;\t".encode(info.name, errors="replace") == b"\n,;\t"
        except (LookupError, UnicodeError):
            ascii_safe = False
        if not ascii_safe:
            raise ValueError(f"{value!r} is not ASCII-compatible: save the file as UTF-8")
        return info.name


class CsvParams(ConnectorParams):
    file_id: str | None = None
    page_size: int | None = Field(None, ge=1, le=100_000)


def _require_server_paths() -> None:
    from runtime.settings import get_settings

    if not get_settings().allow_server_paths:
        raise ConfigError(
            "reading files from server paths is disabled: upload the file instead, or set "
            "DASHIN_ALLOW_SERVER_PATHS=true"
        )


class CsvConnector(Connector):
    type = "csv"
    Config = CsvConfig
    Params = CsvParams

    def check(self, config: CsvConfig) -> CheckResult:
        """Sniff the file at `config.path` and parse up to 5 sample leads from it. Without a
        path there is nothing to read yet, which is fine for a new CSV source (an upload is
        checked by `check_in`)."""
        if config.path is None:
            return CheckResult(
                ok=True, message="no file to check yet: upload one; it is read when a job runs"
            )
        try:
            with Path(config.path).open("rb") as stream:
                return _check_stream(stream, config)
        except OSError as exc:  # opening it (reading errors are the check's answer)
            return CheckResult(ok=False, reason="bad_config", message=f"cannot read file: {exc}")

    def check_in(self, config: CsvConfig, params: CsvParams, ctx: RunContext) -> CheckResult:
        """The upload the engine chose for a job (`params.file_id`), opened as a job opens it:
        through `ctx.open_upload`, streamed from the database, no copy."""
        if not params.file_id:
            return self.check(config)
        try:
            stream = _open_source(config, params, ctx)
        except ConfigError as exc:
            return CheckResult(ok=False, reason="bad_config", message=exc.message)
        with stream:
            return _check_stream(stream, config)

    def pages(
        self, config: CsvConfig, params: CsvParams, checkpoint: Checkpoint, ctx: RunContext
    ) -> Iterator[Page]:
        page_size = params.page_size or config.page_size
        with ExitStack() as stack:
            stream = stack.enter_context(_open_source(config, params, ctx))
            size = _size_of(stream)
            if checkpoint:
                layout, position = _from_checkpoint(checkpoint, size)
            else:
                layout = _sniff(stream, config)
                position = Position(layout.data_offset, layout.data_line, 0)
            mapper = RowMapper(layout.header, config.column_map, layout.encoding)
            if not checkpoint:
                ctx.log.info(
                    "csv.layout",
                    encoding=layout.encoding,
                    delimiter=layout.delimiter,
                    header_line=layout.header_line,
                    columns=mapper.describe(),
                )
            reader = RecordReader(
                stream, encoding=layout.encoding, delimiter=layout.delimiter, start=position
            )
            records = iter(reader)
            while True:
                leads, errors, consumed = mapper.map_many(islice(records, page_size))
                if not consumed:
                    return
                yield self._page(leads, errors, layout, reader.position, size, mapper, ctx)
                if consumed < page_size or ctx.should_stop():
                    return

    @staticmethod
    def _page(
        records: list[LeadRecord],
        errors: list[RecordError],
        layout: Layout,
        position: Position,
        size: int | None,
        mapper: RowMapper,
        ctx: RunContext,
    ) -> Page:
        dropped = mapper.take_dropped()
        if dropped.counts:
            ctx.log.warning("csv.values_dropped", **dropped.counts, examples=dropped.examples)
        return Page(
            records=records,
            errors=errors,
            checkpoint=_checkpoint(layout, position),
            progress=Progress(done=position.offset, total=size),
        )


def _sniff(stream: IO[bytes], config: CsvConfig) -> Layout:
    overrides = config.column_map

    def score(cells: list[str]) -> int:
        # Identity columns count double: `email,name` is a header, `Notes:` is not.
        fields = [field_for_header(cell, overrides) for cell in cells]
        return sum(2 if f in ("email", "linkedin_url") else 1 for f in fields if f is not None)

    layout = sniff(stream, header_score=score, encoding=config.encoding, delimiter=config.delimiter)
    RowMapper(layout.header, overrides)  # raises ConfigError without an identity column
    return layout


def _check_stream(stream: IO[bytes], config: CsvConfig) -> CheckResult:
    """Sniff the file and map up to 5 sample leads (reading at most 1,000 records)."""
    try:
        layout = _sniff(stream, config)
        mapper = RowMapper(layout.header, config.column_map, layout.encoding)
        reader = RecordReader(
            stream,
            encoding=layout.encoding,
            delimiter=layout.delimiter,
            start=Position(layout.data_offset, layout.data_line, 0),
        )
        sample: list[LeadRecord] = []
        for seen, record in enumerate(reader):
            lead = mapper.map(record)
            if isinstance(lead, LeadRecord):
                sample.append(lead)
            if len(sample) == 5 or seen >= 1000:
                break
    except OSError as exc:
        return CheckResult(ok=False, reason="bad_config", message=f"cannot read file: {exc}")
    except ConfigError as exc:
        return CheckResult(ok=False, reason="bad_config", message=exc.message)
    return CheckResult(ok=True, message=_describe(layout, mapper), sample=sample)


def _open_source(config: CsvConfig, params: CsvParams, ctx: RunContext) -> IO[bytes]:
    """The job's upload, which the engine chose (`params.file_id`: the job's own, else the
    source's `config.file_id`, else its latest upload); else the source's server path."""
    if params.file_id:
        return ctx.open_upload(params.file_id)
    if config.path:
        _require_server_paths()
        try:
            return Path(config.path).open("rb")
        except OSError as exc:
            raise ConfigError(f"cannot read {config.path}: {exc.strerror}") from exc
    raise ConfigError("no file to read: upload a file or pass params.file_id")


def _size_of(stream: IO[bytes]) -> int | None:
    try:
        size = stream.seek(0, 2)
        stream.seek(0)
    except (OSError, ValueError):
        return None
    return size


CHECKPOINT_VERSION = 1


def _checkpoint(layout: Layout, position: Position) -> dict[str, Any]:
    return {
        "v": CHECKPOINT_VERSION,
        "offset": position.offset,
        "line": position.line,
        "record": position.record,
        "encoding": layout.encoding,
        "delimiter": layout.delimiter,
        "header": list(layout.header),
        "header_line": layout.header_line,
    }


def _from_checkpoint(checkpoint: Mapping[str, Any], size: int | None) -> tuple[Layout, Position]:
    try:
        position = Position(
            int(checkpoint["offset"]), int(checkpoint["line"]), int(checkpoint["record"])
        )
        layout = Layout(
            encoding=str(checkpoint["encoding"]),
            delimiter=str(checkpoint["delimiter"]),
            header=tuple(str(cell) for cell in checkpoint["header"]),
            header_line=int(checkpoint["header_line"]),
            data_offset=position.offset,
            data_line=position.line,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"the checkpoint is not a CSV checkpoint: {exc!r}") from exc
    if size is not None and position.offset > size:
        raise ConfigError("the checkpoint points past the end of the file: the file changed")
    return layout, position


def _describe(layout: Layout, mapper: RowMapper) -> str:
    delimiter = {"\t": "tab"}.get(layout.delimiter, layout.delimiter)
    mapped = ", ".join(f"{h} → {f}" for h, f in mapper.describe().items() if f)
    return (
        f"{layout.encoding}, delimiter {delimiter!r}, header on line {layout.header_line}; "
        f"columns: {mapped}"
    )
