"""The csv connector: real files in, the right leads and row errors out, resumable anywhere."""

from __future__ import annotations

import csv as stdlib_csv
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from connectors.base import Page
from connectors.errors import ConfigError
from connectors.kit.csv_reader import Position, RecordReader
from connectors.kit.testing import LocalRunContext
from connectors.providers.csv.connector import CsvConfig, CsvConnector, CsvParams
from records import LeadRecord, RecordError
from records.normalize import clean_text, identity_keys
from runtime.settings import reset_settings_cache

DATA = Path(__file__).parent / "data"


@dataclass
class BytesRunContext(LocalRunContext):
    """Uploads held in memory, so property tests need no temporary files."""

    blobs: dict[str, bytes] = field(default_factory=dict)

    def open_upload(self, file_id: str) -> IO[bytes]:
        return io.BytesIO(self.blobs[file_id])


def run(
    data: bytes,
    *,
    page_size: int = 5000,
    checkpoint: dict[str, Any] | None = None,
    ctx: BytesRunContext | None = None,
    **config: Any,
) -> list[Page]:
    ctx = ctx or BytesRunContext()
    ctx.blobs["f"] = data
    return list(
        CsvConnector().pages(
            CsvConfig(**config), CsvParams(file_id="f", page_size=page_size), checkpoint, ctx
        )
    )


def leads(pages: list[Page]) -> list[LeadRecord]:
    return [record for page in pages for record in page.records]


def errors(pages: list[Page]) -> list[RecordError]:
    return [error for page in pages for error in page.errors]


def crlf(*lines: str) -> str:
    return "".join(line + "\r\n" for line in lines)


# A file with everything at once: BOM, `;`, CRLF, quoted delimiters, quotes and newlines, a blank
# line, a bad email next to a good LinkedIn URL, a duplicate, a placeholder, too many cells, a
# row of empty cells, and an unterminated quote followed by one more good row.
TRICKY = "\ufeff" + crlf(
    "First Name;Last Name;E-mail Address;Company;Job Title;LinkedIn URL",  # line 1
    'Ana;Núñez;ana@contoso.example;"Contoso; Ltd";CTO;',  # 2, record 1
    'Bob;Stone;not-an-email;Fabrikam;"Head of',  # 3, record 2: rejected
    'Sales";',  # 4
    'Cara;Lee;;Northwind;"Say ""hi""";https://de.linkedin.com/in/Cara-Lee/?trk=x',  # 5, record 3
    "",  # 6: blank, not a record
    "Dan;Ray;bad@;Tailspin;CEO;linkedin.com/in/danray",  # 7, record 4: kept without email
    "Ana;Núñez;ANA@Contoso.example;Contoso;CTO;",  # 8, record 5: duplicate of record 1
    "Eve;Poe;email_not_unlocked@domain.com;X;Y;",  # 9, record 6: rejected
    'Fay;Ng;fay@x.example;"multi',  # 10, record 7
    "line",  # 11
    'company";;',  # 12
    "Gus;Ox;gus@x.example;A;B;;extra",  # 13, record 8: rejected
    ";;;;;",  # 14, record 9: empty cells, skipped
    'Hal;Ix;"hal@x.example;Z;Q;',  # 15, record 10: rejected, reading resumes on line 16
    "Ivy;Ox;ivy@x.example;C;D;",  # 16, record 11
)


def test_tricky_file_gives_the_right_leads_and_row_errors() -> None:
    # Given the tricky file, When it is read in one page
    ctx = BytesRunContext()
    pages = run(TRICKY.encode("utf-8"), ctx=ctx)

    # Then the good rows are leads, normalised
    got = [(r.first_name, r.email, r.company_name, r.title, r.linkedin_url) for r in leads(pages)]
    assert got == [
        ("Ana", "ana@contoso.example", "Contoso; Ltd", "CTO", None),
        ("Cara", None, "Northwind", 'Say "hi"', "https://www.linkedin.com/in/cara-lee"),
        ("Dan", None, "Tailspin", "CEO", "https://www.linkedin.com/in/danray"),
        ("Ana", "ana@contoso.example", "Contoso", "CTO", None),
        ("Fay", "fay@x.example", "multi line company", None, None),
        ("Ivy", "ivy@x.example", "C", "D", None),
    ]
    assert leads(pages)[0].last_name == "Núñez"
    # And the duplicate collapses into one identity (the sink merges by these keys)
    keys = {tuple(identity_keys(r, "csv")) for r in leads(pages)}
    assert len(keys) == 5

    # And the bad rows are reported with record, physical line, column, code and raw text
    got_errors = [(e.record, e.line, e.field, e.code) for e in errors(pages)]
    assert got_errors == [
        (2, 3, "E-mail Address", "no_identity"),
        (6, 9, "E-mail Address", "no_identity"),
        (8, 13, None, "too_many_fields"),
        (10, 15, None, "unterminated_quote"),
    ]
    bob = errors(pages)[0]
    assert bob.raw == 'Bob;Stone;not-an-email;Fabrikam;"Head of\r\nSales";'
    assert "not-an-email" in bob.message
    assert "placeholder" in errors(pages)[1].message
    assert errors(pages)[3].raw == 'Hal;Ix;"hal@x.example;Z;Q;'

    # And the dropped email of the kept row is logged, not reported as a rejected row
    dropped = [f for level, event, f in ctx.log.lines if event == "csv.values_dropped"]
    assert dropped == [
        {
            "invalid_email": 1,
            "examples": [
                {
                    "record": 4,
                    "line": 7,
                    "field": "E-mail Address",
                    "code": "invalid_email",
                    "value": "bad@",
                }
            ],
        }
    ]

    # And the checkpoint stands at the end of the file
    last = pages[-1]
    assert last.checkpoint["offset"] == len(TRICKY.encode("utf-8"))
    assert (last.checkpoint["line"], last.checkpoint["record"]) == (16, 11)
    assert last.checkpoint["delimiter"] == ";"
    assert last.progress is not None and last.progress.done == last.progress.total


def test_resume_from_every_checkpoint_equals_a_full_run() -> None:
    data = TRICKY.encode("utf-8")
    full = run(data, page_size=5000)
    for page_size in (1, 2, 3):
        pages = run(data, page_size=page_size)
        assert leads(pages) == leads(full)
        assert errors(pages) == errors(full)
        for index, page in enumerate(pages):
            # When a job restarts from the checkpoint of page `index`
            resumed = run(data, page_size=page_size, checkpoint=page.checkpoint)
            # Then it yields exactly what came after that page
            assert leads(resumed) == leads(pages[index + 1 :])
            assert errors(resumed) == errors(pages[index + 1 :])
            assert [p.checkpoint for p in resumed] == [p.checkpoint for p in pages[index + 1 :]]


def test_cp1252_tab_file_with_accents() -> None:
    text = crlf(
        "Email\tFirst Name\tLast Name\tCompany\tCity",
        "jose@societe.example\tJosé\tMüller\tSociété Générale\tZürich",
        "françois@exemple.example\tFrançois\tLefèvre\t“Café” €uro\tSão Paulo",
        "n/a\tNo\tOne\tNowhère\t",
    )
    pages = run(text.encode("cp1252"))
    assert pages[-1].checkpoint["encoding"] == "cp1252"
    assert pages[-1].checkpoint["delimiter"] == "\t"
    got = [(r.email, r.first_name, r.last_name, r.company_name, r.city) for r in leads(pages)]
    assert got == [
        ("jose@societe.example", "José", "Müller", "Société Générale", "Zürich"),
        ("françois@exemple.example", "François", "Lefèvre", "“Café” €uro", "São Paulo"),
    ]
    assert [(e.record, e.line, e.code, e.field) for e in errors(pages)] == [
        (3, 4, "no_identity", "Email")
    ]
    assert errors(pages)[0].raw == "n/a\tNo\tOne\tNowhère\t"


def test_utf8_without_bom_lf_and_comma() -> None:
    data = b"email,name\nana@x.example,Ana\n"
    pages = run(data)
    assert [r.email for r in leads(pages)] == ["ana@x.example"]
    assert pages[-1].checkpoint["encoding"] == "utf-8"


def test_old_mac_line_ends_and_no_final_newline() -> None:
    data = b"Email,First Name\ra@x.example,A\rb@x.example,B"
    pages = run(data)
    assert [r.first_name for r in leads(pages)] == ["A", "B"]
    assert pages[-1].checkpoint["line"] == 3
    assert pages[-1].checkpoint["offset"] == len(data)


def test_column_map_overrides_synonyms() -> None:
    data = crlf("Courriel,Nom,URL", "a@x.example,Ana,https://example.com/a").encode()
    pages = run(data, column_map={"courriel": "email", "Nom": "last_name", "url": None})
    assert [(r.email, r.last_name, r.linkedin_url) for r in leads(pages)] == [
        ("a@x.example", "Ana", None)
    ]


def test_rows_shorter_than_the_header_are_padded_and_long_text_is_cut() -> None:
    long_title = "T" * 400
    data = crlf("Email,Title,Company", f"a@x.example,{long_title}", "b@x.example").encode()
    got = leads(run(data))
    assert [(r.email, r.title, r.company_name) for r in got] == [
        ("a@x.example", "T" * 300, None),
        ("b@x.example", None, None),
    ]


def test_page_size_splits_pages_and_progress_counts_bytes() -> None:
    rows = [f"p{i}@x.example,P{i}" for i in range(10)]
    data = crlf("Email,First Name", *rows).encode()
    pages = run(data, page_size=4)
    assert [len(p.records) for p in pages] == [4, 4, 2]
    dones = [p.progress.done for p in pages if p.progress]
    assert dones == sorted(dones) and dones[-1] == len(data)
    assert all(p.progress and p.progress.total == len(data) for p in pages)


def test_stops_between_pages_when_asked() -> None:
    data = crlf("Email", *[f"p{i}@x.example" for i in range(10)]).encode()
    ctx = BytesRunContext()
    ctx.blobs["f"] = data
    pages = CsvConnector().pages(CsvConfig(), CsvParams(file_id="f", page_size=3), None, ctx)
    first = next(pages)
    ctx.stop_event.set()
    assert list(pages) == []
    assert first.checkpoint["record"] == 3


# --- the shared samples ----------------------------------------------------------------------


def test_leads_sample_gives_250_leads() -> None:
    ctx = LocalRunContext(uploads={"s": DATA / "leads_sample.csv"})
    pages = list(CsvConnector().pages(CsvConfig(), CsvParams(file_id="s"), None, ctx))
    got = leads(pages)
    assert len(got) == 250 and errors(pages) == []
    aisha = got[1]
    assert aisha.email == "aisha.fernández1@proseware.example"
    assert aisha.linkedin_url == "https://www.linkedin.com/in/aisha-fernández-1"
    assert (aisha.company_domain, aisha.city, aisha.company_size) == (
        "proseware.example",
        "Kraków",
        "11-50",
    )
    # rows whose email is `n/a` are kept on their LinkedIn URL alone
    no_email = [r for r in got if r.email is None]
    assert len(no_email) == 7 and all(r.linkedin_url for r in no_email)
    assert len({tuple(identity_keys(r, "csv")) for r in got}) == 250


def test_linkedin_connections_preamble_is_skipped() -> None:
    ctx = LocalRunContext(uploads={"s": DATA / "linkedin_connections.csv"})
    pages = list(CsvConnector().pages(CsvConfig(), CsvParams(file_id="s"), None, ctx))
    got = leads(pages)
    assert len(got) == 60 and errors(pages) == []
    assert (got[0].first_name, got[0].email, got[0].title) == (
        "Aisha",
        "aisha@contoso.example",
        "Sales Director",
    )
    assert got[0].linkedin_url == "https://www.linkedin.com/in/aishapatel0"
    assert got[0].raw is not None and got[0].raw["Connected On"] == "18 Feb 2026"
    assert pages[-1].checkpoint["header_line"] == 4
    assert sum(1 for r in got if r.email is None) > 30


@pytest.mark.parametrize("name", ["leads_sample.csv", "linkedin_connections.csv"])
def test_samples_resume_from_every_checkpoint(name: str) -> None:
    data = (DATA / name).read_bytes()
    pages = run(data, page_size=7)
    for index, page in enumerate(pages):
        resumed = run(data, page_size=7, checkpoint=page.checkpoint)
        assert leads(resumed) == leads(pages[index + 1 :])


def test_record_and_line_numbers_after_a_preamble() -> None:
    data = (DATA / "linkedin_connections.csv").read_bytes()
    broken = data.replace(
        b"https://www.linkedin.com/in/leoschmidt3,leo@fabrikam.example",
        b"https://example.com/leo,bad-email",
    )
    errs = errors(run(broken))
    assert [(e.record, e.line, e.code, e.field) for e in errs] == [
        (4, 8, "no_identity", "Email Address")
    ]
    assert "https://example.com/leo" in errs[0].message


# --- check -----------------------------------------------------------------------------------


def trusted(**config: Any) -> CsvConfig:
    return CsvConfig.model_validate(config, context={"allow_server_paths": True})


def test_check_returns_five_sample_leads(tmp_path: Path) -> None:
    path = tmp_path / "c.csv"
    shutil.copy(DATA / "linkedin_connections.csv", path)
    result = CsvConnector().check(trusted(path=str(path)))
    assert result.ok and result.reason is None
    assert [r.first_name for r in result.sample] == ["Aisha", "Sophia", "Rafael", "Leo", "Rafael"]
    assert "line 4" in result.message


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "empty"),
        (b"foo,bar\n1,2\n", "no recognisable header"),
        (b"First Name,Company\nAna,Contoso\n", "no email or LinkedIn URL column"),
        ("Email\nx@y.example\n".encode("utf-16"), "UTF-16"),
    ],
)
def test_check_reports_bad_config(tmp_path: Path, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    result = CsvConnector().check(trusted(path=str(path)))
    assert not result.ok and result.reason == "bad_config"
    assert needle in result.message


def test_check_unreadable_file(tmp_path: Path) -> None:
    result = CsvConnector().check(trusted(path=str(tmp_path / "missing.csv")))
    assert (result.ok, result.reason) == (False, "bad_config")
    assert "cannot read" in result.message


def test_check_without_a_file_is_ok() -> None:
    result = CsvConnector().check(CsvConfig())
    assert result.ok and result.sample == []


def test_pages_without_a_file_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no file"):
        list(CsvConnector().pages(CsvConfig(), CsvParams(), None, BytesRunContext()))


def test_header_without_identity_column_fails_the_job() -> None:
    with pytest.raises(ConfigError, match="no email or LinkedIn URL column"):
        run(b"First Name,Company\nAna,Contoso\n")


def test_bad_checkpoint_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="not a CSV checkpoint"):
        run(b"Email\na@x.example\n", checkpoint={"page": 3})
    good = run(b"Email\na@x.example\n")[-1].checkpoint
    with pytest.raises(ConfigError, match="past the end"):
        run(b"Email\n", checkpoint=good)


# --- config ----------------------------------------------------------------------------------


@pytest.fixture
def server_paths(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("DASHIN_ALLOW_SERVER_PATHS", "true")
    reset_settings_cache()
    yield
    monkeypatch.delenv("DASHIN_ALLOW_SERVER_PATHS")
    reset_settings_cache()


def test_server_paths_are_refused_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DASHIN_ALLOW_SERVER_PATHS", "false")
    reset_settings_cache()
    try:
        with pytest.raises(ConfigError, match="DASHIN_ALLOW_SERVER_PATHS"):
            CsvConfig(path="/etc/passwd")
    finally:
        reset_settings_cache()


@pytest.mark.usefixtures("server_paths")
def test_server_path_job_when_allowed(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_bytes(b"Email\na@x.example\n")
    pages = list(
        CsvConnector().pages(CsvConfig(path=str(path)), CsvParams(), None, LocalRunContext())
    )
    assert [r.email for r in leads(pages)] == ["a@x.example"]


def test_the_connector_reads_the_upload_the_engine_chose() -> None:
    """Which upload (job, source, latest) is `models.uploads_repo.upload_for_job`'s answer, put
    in `params.file_id` by the runner; the connector reads that one."""
    ctx = BytesRunContext(blobs={"old": b"Email\nold@x.example\n", "new": b"Email\nn@x.example\n"})
    config = CsvConfig(file_id="old")
    pages = list(CsvConnector().pages(config, CsvParams(file_id="new"), None, ctx))
    assert [r.email for r in leads(pages)] == ["n@x.example"]
    with pytest.raises(ConfigError, match="no file to read"):
        list(CsvConnector().pages(config, CsvParams(), None, ctx))


@pytest.mark.parametrize(
    "config",
    [
        {"column_map": {"Mail": "e_mail"}},
        {"encoding": "no-such-codec"},
        {"encoding": "utf-16"},
        {"delimiter": ";;"},
        {"delimiter": '"'},
        {"page_size": 0},
        {"unknown": 1},
    ],
)
def test_invalid_config_is_rejected(config: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CsvConfig.model_validate(config)


def test_explicit_encoding_and_delimiter_skip_sniffing() -> None:
    data = "Email|Name\r\nä@x.example|Ä\r\n".encode("latin-1")
    pages = run(data, encoding="latin-1", delimiter="|")
    assert [(r.email, r.raw) for r in leads(pages)] == [
        ("ä@x.example", {"Email": "ä@x.example", "Name": "Ä"})
    ]


# --- the reader and round trips --------------------------------------------------------------


def read_all(data: bytes, **kwargs: Any) -> list[tuple[int, int, list[str] | None, str | None]]:
    reader = RecordReader(
        io.BytesIO(data), encoding="utf-8", delimiter=",", start=Position(0, 0, 0), **kwargs
    )
    return [(r.number, r.line, r.cells, r.problem) for r in reader]


def test_an_oversized_record_is_reported_and_reading_goes_on() -> None:
    body = "".join(f"line {i}\n" for i in range(100))
    data = f'a,"{body}\nb,c\n'.encode()
    got = read_all(data, max_record_bytes=200)
    assert got[0] == (1, 1, None, "record_too_large")
    # reading resumed on line 2, inside what was the runaway quote
    assert got[1] == (2, 2, ["line 1"], None)
    assert got[-1] == (101, 102, ["b", "c"], None)


def test_bad_quoting_is_reported_and_reading_goes_on() -> None:
    got = read_all(b'a,"b"x,c\nd,e\n')
    assert got[0][2] is None and got[0][3] is not None and "expected" in got[0][3]
    assert got[1] == (2, 2, ["d", "e"], None)


# A bare CR is only quoted by csv.writer when it is part of the line terminator; as real files
# carry CRs only in CRLF pairs, so do these cells.
cell_text = st.text(
    alphabet=st.sampled_from(list("abcXYZ é€,;\"\t\r\n'")), min_size=0, max_size=12
).map(lambda text: text.replace("\r\n", "\r").replace("\r", "\r\n"))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=st.lists(st.tuples(cell_text, cell_text), min_size=1, max_size=25),
    delimiter=st.sampled_from([",", ";", "\t"]),
    terminator=st.sampled_from(["\r\n", "\n"]),
    bom=st.booleans(),
    page_size=st.integers(1, 6),
)
def test_round_trip_of_generated_rows(
    rows: list[tuple[str, str]], delimiter: str, terminator: str, bom: bool, page_size: int
) -> None:
    # Given rows written by the csv module with quotes, delimiters and newlines in the cells
    out = io.StringIO()
    writer = stdlib_csv.writer(out, delimiter=delimiter, lineterminator=terminator)
    writer.writerow(["Email", "First Name", "Company"])
    for i, (first, company) in enumerate(rows):
        writer.writerow([f"p{i}@x.example", first, company])
    data = (("\ufeff" if bom else "") + out.getvalue()).encode("utf-8")

    # When the file is read in pages
    pages = run(data, page_size=page_size)

    # Then every row comes back, cleaned, in order, and no row is an error
    assert errors(pages) == []
    expected = [(f"p{i}@x.example", clean_text(f), clean_text(c)) for i, (f, c) in enumerate(rows)]
    assert [(r.email, r.first_name, r.company_name) for r in leads(pages)] == expected
    assert [r.raw for r in leads(pages)] == [
        {"Email": f"p{i}@x.example", "First Name": f, "Company": c} for i, (f, c) in enumerate(rows)
    ]
    # And resuming from any checkpoint gives exactly the rest
    for index, page in enumerate(pages):
        assert leads(run(data, page_size=page_size, checkpoint=page.checkpoint)) == leads(
            pages[index + 1 :]
        )


@settings(max_examples=40, deadline=None)
@given(data=st.binary(max_size=300), chunk=st.integers(1, 64))
def test_chunk_size_does_not_change_records(data: bytes, chunk: int) -> None:
    # Chunk boundaries may split a CRLF or a quoted field; the records must not notice.
    assert read_all(data, chunk_bytes=chunk) == read_all(data)


def test_engine_checks_an_upload_through_a_temporary_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given server paths are not allowed for users
    monkeypatch.setenv("DASHIN_ALLOW_SERVER_PATHS", "false")
    reset_settings_cache()
    try:
        copy = tmp_path / "upload.csv"
        shutil.copy(DATA / "leads_sample.csv", copy)
        # When the engine checks the stored config with a temporary copy of the upload
        config = CsvConfig(file_id="u1").model_copy(update={"path": str(copy)})
        result = CsvConnector().check(config)
    finally:
        reset_settings_cache()
    # Then the check reads it
    assert result.ok and len(result.sample) == 5
