"""records.normalize: the spellings that must collapse into one identity, and the ones that
must not become an identity at all."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from records import FIELD_MAX_LEN, LeadField, LeadRecord
from records.normalize import (
    HEADER_SYNONYMS,
    clean_text,
    field_for_header,
    header_key,
    identity_keys,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
    normalize_record,
    parse_email,
)

# --- email -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("aisha.fernández1@proseware.example", "aisha.fernández1@proseware.example"),
        ("AISHA.FERNÁNDEZ1@PROSEWARE.EXAMPLE", "aisha.fernández1@proseware.example"),
        # NFD (as macOS writes it) and NFC spell the same address
        ("aisha.ferna\u0301ndez1@proseware.example", "aisha.fernández1@proseware.example"),
        ("o'brien+leads@sub.example.co.uk", "o'brien+leads@sub.example.co.uk"),
        ("mailto:bob@contoso.example", "bob@contoso.example"),
        ("user@xn--bcher-kva.example", "user@xn--bcher-kva.example"),
        ("user@bücher.example", "user@bücher.example"),
    ],
)
def test_normalize_email_accepts_and_canonicalises(value: str, expected: str) -> None:
    assert normalize_email(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "plainaddress",
        "a@b",
        "@example.com",
        "jane@",
        "jane..doe@example.com",
        ".jane@example.com",
        "jane.@example.com",
        "jane doe@example.com",
        "jane@exa mple.com",
        "jane@-example.com",
        "jane@example.c",
        "jane@localhost",
        "jane@127.0.0.1",
        '"jane"@example.com',
        "a" * 65 + "@example.com",
        "jane@" + "a" * 250 + ".com",
    ],
)
def test_normalize_email_rejects_malformed(value: str) -> None:
    assert normalize_email(value) is None
    assert parse_email(value) == (None, "invalid")


@pytest.mark.parametrize(
    "value",
    ["n/a", "N/A", " none ", "-", "null", "email_not_unlocked@domain.com", "NoEmail@x.example"],
)
def test_placeholders_are_not_emails(value: str) -> None:
    assert parse_email(value) == (None, "placeholder")


@pytest.mark.parametrize("value", [None, "", "   "])
def test_empty_email_is_neither_valid_nor_a_problem(value: str | None) -> None:
    assert parse_email(value) == (None, None)


@given(st.emails())
def test_normalize_email_is_idempotent_on_addresses(value: str) -> None:
    once = normalize_email(value)
    assert normalize_email(once) == once


@given(st.text(max_size=80))
def test_normalize_email_is_idempotent_and_total_on_any_text(value: str) -> None:
    once = normalize_email(value)
    assert normalize_email(once) == once
    if once is not None:
        assert once == once.strip().lower()
        assert once.count("@") == 1


# --- LinkedIn --------------------------------------------------------------------------------

CANONICAL = "https://www.linkedin.com/in/jane-doe"


@pytest.mark.parametrize(
    "value",
    [
        "https://www.linkedin.com/in/jane-doe",
        "https://www.linkedin.com/in/jane-doe/",
        "http://linkedin.com/in/jane-doe",
        "linkedin.com/in/jane-doe",
        "www.linkedin.com/in/Jane-Doe",
        "https://de.linkedin.com/in/jane-doe/?originalSubdomain=de",
        "https://m.linkedin.com/in/jane-doe#experience",
        "HTTPS://WWW.LINKEDIN.COM/IN/JANE-DOE",
        "  https://www.linkedin.com/in/jane-doe/details/experience/  ",
        "https://www.linkedin.com/in/jane%2Ddoe",
        "https://www.linkedin.com/mwlite/in/jane-doe",
    ],
)
def test_linkedin_spellings_collapse_to_one_url(value: str) -> None:
    assert normalize_linkedin_url(value) == CANONICAL


def test_linkedin_percent_encoded_unicode_slug_is_decoded() -> None:
    encoded = "https://www.linkedin.com/in/aisha-fern%C3%A1ndez-1"
    assert normalize_linkedin_url(encoded) == "https://www.linkedin.com/in/aisha-fernández-1"
    assert normalize_linkedin_url(encoded) == normalize_linkedin_url(
        "https://www.linkedin.com/in/Aisha-Fernández-1/"
    )


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "n/a",
        "https://www.linkedin.com/company/contoso",
        "https://www.linkedin.com/sales/lead/ACwAAA,NAME",
        "https://www.linkedin.com/in/",
        "https://evil.example/linkedin.com/in/jane-doe",
        "https://linkedin.com.evil.example/in/jane-doe",
        "https://www.linkedin.com/in/a%FF",
        "https://www.linkedin.com/in/a%2Fb",
        "https://www.linkedin.com/in/<script>",
    ],
)
def test_non_profile_urls_are_none(value: str | None) -> None:
    assert normalize_linkedin_url(value) is None


@given(
    st.sampled_from(["", "http://", "https://"]),
    st.sampled_from(["", "www.", "de.", "m."]),
    st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{1,30}", fullmatch=True),
    st.sampled_from(["", "/", "?trk=a", "/#x", "/details/skills/"]),
)
def test_linkedin_variants_share_the_canonical_form(
    scheme: str, host: str, slug: str, tail: str
) -> None:
    url = normalize_linkedin_url(f"{scheme}{host}linkedin.com/in/{slug}{tail}")
    assert url == f"https://www.linkedin.com/in/{slug.lower()}"
    assert normalize_linkedin_url(url) == url


@given(st.text(max_size=60))
def test_normalize_linkedin_url_is_idempotent(value: str) -> None:
    once = normalize_linkedin_url("https://www.linkedin.com/in/" + value)
    assert normalize_linkedin_url(once) == once


# --- domains and text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://www.Contoso.example/about?x=1", "contoso.example"),
        ("contoso.example", "contoso.example"),
        ("http://shop.contoso.example:8080/", "shop.contoso.example"),
        ("www.contoso.example.", "contoso.example"),
        ("  Proseware.Example  ", "proseware.example"),
        ("127.0.0.1", None),
        ("localhost", None),
        ("not a domain", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_domain(value: str | None, expected: str | None) -> None:
    assert normalize_domain(value) == expected


@pytest.mark.parametrize(
    ("value", "max_len", "expected"),
    [
        ("  Head of Sales  ", None, "Head of Sales"),
        ("Head\r\nof\tSales", None, "Head of Sales"),
        ("Head  of   Sales", None, "Head of Sales"),
        ("nul\x00byte", None, "nul byte"),
        ("   ", None, None),
        ("\x00\x01", None, None),
        ("abcdef", 3, "abc"),
        ("ab cdef", 3, "ab"),
        (42, None, "42"),
        (None, 5, None),
    ],
)
def test_clean_text(value: object, max_len: int | None, expected: str | None) -> None:
    assert clean_text(value, max_len) == expected


@given(st.text(max_size=50), st.one_of(st.none(), st.integers(1, 20)))
def test_clean_text_is_idempotent_and_bounded(value: str, max_len: int | None) -> None:
    once = clean_text(value, max_len)
    assert clean_text(once, max_len) == once
    if once is not None:
        assert once == once.strip()
        assert "\x00" not in once and "\n" not in once
        assert max_len is None or len(once) <= max_len


# --- records and identity --------------------------------------------------------------------


def test_identity_keys_in_priority_order() -> None:
    record = LeadRecord(
        email=" Jane@Contoso.Example ",
        linkedin_url="http://de.linkedin.com/in/Jane-Doe/",
        external_id="p-1",
    )
    assert identity_keys(record, "apollo") == [
        "email:jane@contoso.example",
        "li:https://www.linkedin.com/in/jane-doe",
        "ext:apollo:p-1",
    ]


def test_identity_keys_only_the_ones_the_record_has() -> None:
    assert identity_keys(LeadRecord(linkedin_url="linkedin.com/in/x1"), "csv") == [
        "li:https://www.linkedin.com/in/x1"
    ]
    assert identity_keys(LeadRecord(email="n/a", external_id=" 7 "), "zoominfo") == [
        "ext:zoominfo:7"
    ]
    assert identity_keys(LeadRecord(email="email_not_unlocked@domain.com"), "apollo") == []


def test_normalize_record_returns_a_new_normalised_record() -> None:
    raw = {"id": 1}
    record = LeadRecord(
        first_name="  Jane ",
        last_name="Doe\n",
        email="JANE@CONTOSO.EXAMPLE",
        title="x" * 400,
        company_name=" Contoso ",
        company_domain="https://www.contoso.example/",
        company_size="",
        linkedin_url="https://linkedin.com/in/Jane-Doe?trk=1",
        phone=" +1 555 0100 ",
        country="  ",
        external_id=" e1 ",
        raw=raw,
    )
    out = normalize_record(record)
    assert out is not record
    assert out.first_name == "Jane" and out.last_name == "Doe"
    assert out.email == "jane@contoso.example"
    assert out.title == "x" * FIELD_MAX_LEN["title"]
    assert out.company_name == "Contoso"
    assert out.company_domain == "contoso.example"
    assert out.company_size is None and out.country is None
    assert out.linkedin_url == "https://www.linkedin.com/in/jane-doe"
    assert out.phone == "+1 555 0100"
    assert out.external_id == "e1"
    assert out.raw is raw
    assert normalize_record(out) == out
    with pytest.raises(dataclasses.FrozenInstanceError):
        out.email = "x@y.example"  # type: ignore[misc]


# --- header synonyms -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("First Name", "first_name"),
        ("first_name", "first_name"),
        ("FirstName", "first_name"),
        ("Given Name", "first_name"),
        ("Last Name", "last_name"),
        ("Surname", "last_name"),
        ("Email", "email"),
        ("Email Address", "email"),
        ("E-mail Address", "email"),
        ("Work Email", "email"),
        ("Company", "company_name"),
        ("Company Name", "company_name"),
        ("Organization Name", "company_name"),
        ("Account Name", "company_name"),
        ("Title", "title"),
        ("Job Title", "title"),
        ("Position", "title"),
        ("LinkedIn URL", "linkedin_url"),
        ("Person Linkedin Url", "linkedin_url"),
        ("URL", "linkedin_url"),
        ("Website", "company_domain"),
        ("Company Domain", "company_domain"),
        ("City", "city"),
        ("State", "state"),
        ("Country", "country"),
        ("# Employees", "company_size"),
        ("  E-MAIL   address ", "email"),
        ("job_title", "title"),
    ],
)
def test_header_synonyms(header: str, field: str) -> None:
    assert field_for_header(header) == field


def test_unknown_headers_map_to_nothing() -> None:
    assert field_for_header("Connected On") is None
    assert field_for_header("Company Linkedin Url") is None


def test_column_map_overrides_synonyms_and_can_ignore_a_column() -> None:
    overrides: dict[str, LeadField | None] = {"courriel": "email", "URL": None}
    assert field_for_header("Courriel", overrides) == "email"
    assert field_for_header("url", overrides) is None
    assert field_for_header("Email", overrides) == "email"


def test_synonym_keys_are_normalised_header_keys() -> None:
    assert header_key("E-mail Address") == "emailaddress"
    assert all(key == header_key(key) for key in HEADER_SYNONYMS)


@given(st.one_of(st.emails(), st.text(alphabet="ab.-@_+1é", max_size=30)))
def test_ascii_fast_path_never_accepts_what_the_full_pattern_refuses(value: str) -> None:
    from records.normalize import _ASCII_EMAIL_RE, _EMAIL_RE

    text = value.lower()
    if _ASCII_EMAIL_RE.fullmatch(text):
        assert _EMAIL_RE.fullmatch(text)
