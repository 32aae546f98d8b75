"""Normalisation shared by every producer of lead records and by the lead sink.

Identity (ARCHITECTURE §6) only works if every producer spells the same person the same way:
`Jane.Doe@Example.com ` and `jane.doe@example.com` must be one `email:` key, and
`http://de.linkedin.com/in/Jane-Doe/?trk=x` and `https://www.linkedin.com/in/jane-doe` one `li:`
key. These helpers run on every row of multi-million-row imports, so the hot paths are a few
`str` methods and one precompiled regex each; no per-row calls into `email_validator` or DNS.

All helpers are total: they take `None` or any string and return a clean value or `None`;
they never raise on bad input. Every one is idempotent (`f(f(x)) == f(x)`).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from records.lead import FIELD_SPECS, FieldKind, LeadField, LeadRecord

# ---------------------------------------------------------------------------------------------
# Text


def clean_text(value: object, max_len: int | None = None) -> str | None:
    """Trim, turn control characters (NUL, tabs, newlines) into single spaces, cut to `max_len`.

    Empty results become `None`. The common case (a printable cell without double spaces) costs
    three C-level string calls.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.strip()
    if not text:
        return None
    if not text.isprintable() or "  " in text:
        # Rare path: collapse every run of whitespace/control characters into one space.
        text = _SPACE_RUN.sub(" ", text).strip()
        if not text:
            return None
    if max_len is not None and len(text) > max_len:
        text = text[:max_len].rstrip()
    return text


_SPACE_RUN = re.compile(r"[\s\x00-\x1f\x7f-\x9f\u200b\ufeff]+")

# ---------------------------------------------------------------------------------------------
# Email

# Local part: dot-separated atoms of anything but whitespace, '@', quotes and the RFC 5322
# specials; Unicode letters are welcome (RFC 6531). Domain: LDH labels (Unicode allowed for
# IDNs) and a TLD of letters or an A-label. Lower-cased input only.
_ATOM = r"[^\s@\"(),:;<>\[\]\\.\x00-\x1f\x7f]+"
_LABEL = r"[a-z0-9\u00a1-\uffff](?:[a-z0-9\u00a1-\uffff-]{0,61}[a-z0-9\u00a1-\uffff])?"
_EMAIL_RE = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@(?:{_LABEL}\.)+(?:[a-z\u00a1-\uffff]{{2,63}}|xn--[a-z0-9-]{{1,59}})"
)

# The same shape for plain ASCII addresses, about a third cheaper for `re` to run; anything it
# refuses still gets the full pattern, so it only ever makes the answer faster, not different.
_ASCII_EMAIL_RE = re.compile(
    r"(?=[^@]{1,64}@)[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}"
)

#: Whole values that mean "no email" in exports.
EMAIL_PLACEHOLDERS = frozenset(
    {"n/a", "na", "n.a.", "none", "null", "nil", "-", "--", "?", "unknown", "no email", "no"}
)
#: Local parts that providers use as stand-ins (Apollo's `email_not_unlocked@domain.com`).
EMAIL_PLACEHOLDER_LOCALS = frozenset(
    {"email_not_unlocked", "email-not-unlocked", "not_unlocked", "noemail", "no-email", "none"}
)

_PLACEHOLDER_PREFIXES = tuple(local + "@" for local in EMAIL_PLACEHOLDER_LOCALS)

EmailProblem = str  # "placeholder" | "invalid"


def parse_email(value: object) -> tuple[str | None, EmailProblem | None]:
    """`(email, None)` for a usable address, else `(None, "placeholder" | "invalid")`.

    An empty value is `(None, None)`: nothing was given, nothing is wrong. Callers that report
    row problems (the CSV reader) need the difference; others use `normalize_email`.
    """
    if value is None:
        return None, None
    text = value if isinstance(value, str) else str(value)
    text = text.strip().lower()
    if not text:
        return None, None
    if text.isascii():
        if len(text) <= 254 and _ASCII_EMAIL_RE.fullmatch(text) is not None:
            return (None, "placeholder") if text.startswith(_PLACEHOLDER_PREFIXES) else (text, None)
    else:
        text = unicodedata.normalize("NFC", text)
    if len(text) > 254 or _EMAIL_RE.fullmatch(text) is None:
        if text.startswith("mailto:"):
            return parse_email(text[7:])
        return None, "placeholder" if text in EMAIL_PLACEHOLDERS else "invalid"
    if text.startswith(_PLACEHOLDER_PREFIXES):
        return None, "placeholder"
    return text, None


def normalize_email(value: object) -> str | None:
    """A trimmed, lower-cased, NFC address that passes a syntax check, or `None`.

    Placeholders (`n/a`, `email_not_unlocked@domain.com`) and malformed values give `None`.
    """
    return parse_email(value)[0]


# ---------------------------------------------------------------------------------------------
# LinkedIn

_LINKEDIN_RE = re.compile(
    r"\s*(?:https?://)?(?:[a-z0-9-]+\.)?linkedin\.com/(?:mwlite/)?in/([^/?#\s]+)",
    re.IGNORECASE,
)
_PLAIN_SLUG_RE = re.compile(r"[a-z0-9-]{2,100}")
_SLUG_RE = re.compile(r"[\w.-]{2,100}")
LINKEDIN_PREFIX = "https://www.linkedin.com/in/"


def normalize_linkedin_url(value: object) -> str | None:
    """`https://www.linkedin.com/in/<slug>` for any spelling of a profile URL, else `None`.

    Accepts any scheme or none, `linkedin.com`, `www.`, country (`de.`) and mobile (`m.`) hosts,
    trailing slashes, sub-pages, query strings and fragments. The slug is percent-decoded,
    NFC-normalised and lower-cased (LinkedIn vanity names are case-insensitive). Company pages,
    Sales Navigator links and other URLs are not profiles and give `None`.
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    match = _LINKEDIN_RE.match(text)
    if match is None:
        return None
    slug = match.group(1).lower()
    if _PLAIN_SLUG_RE.fullmatch(slug) is not None:
        return LINKEDIN_PREFIX + slug  # the common case: an ASCII vanity name
    if not slug.isascii():
        slug = unicodedata.normalize("NFC", slug)
    elif "%" in slug:
        try:
            slug = unicodedata.normalize("NFC", unquote(slug, errors="strict"))
        except UnicodeDecodeError:
            return None
    if _SLUG_RE.fullmatch(slug) is None:
        return None
    return LINKEDIN_PREFIX + slug


# ---------------------------------------------------------------------------------------------
# Domains

_HOST_RE = re.compile(r"(?:[a-z][a-z0-9+.-]*://)?(?:[^@/?#\s]*@)?([^/:?#\s]+)")
_DOMAIN_RE = re.compile(rf"(?:{_LABEL}\.)+(?:[a-z\u00a1-\uffff]{{2,63}}|xn--[a-z0-9-]{{1,59}})")


def normalize_domain(value: object) -> str | None:
    """The bare host of a website or domain: `https://www.Contoso.example/a` → `contoso.example`.

    Drops scheme, credentials, port, path, a leading `www.` and a trailing dot; `None` when what
    is left is not a domain name (an IP address, `localhost`, free text).
    """
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    text = text.strip().lower()
    if not text:
        return None
    match = _HOST_RE.match(text)
    if match is None:
        return None
    host = match.group(1).rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    if not host.isascii():
        host = unicodedata.normalize("NFC", host)
    if len(host) > 253 or _DOMAIN_RE.fullmatch(host) is None:
        return None
    return host


# ---------------------------------------------------------------------------------------------
# Records and identity


def normalize_record(record: LeadRecord) -> LeadRecord:
    """A new `LeadRecord` with every field normalised; `raw` is kept.

    Invalid emails, non-profile LinkedIn URLs and non-domains become `None`; text (the external
    id included) is cleaned and cut to the field's column limit.
    """
    values = {name: clean(getattr(record, name)) for name, clean in _CLEANERS}
    return LeadRecord(**values, raw=record.raw)


def _cleaner(kind: FieldKind, max_len: int) -> Callable[[Any], str | None]:
    if kind == "email":
        return normalize_email
    if kind == "linkedin":
        return normalize_linkedin_url
    if kind == "domain":
        return normalize_domain
    return functools.partial(clean_text, max_len=max_len)


#: (field, its normaliser) for every declared field, built once from the field declaration
_CLEANERS = tuple((name, _cleaner(kind, max_len)) for name, max_len, kind in FIELD_SPECS)


def identity_keys(record: LeadRecord, provider: str) -> list[str]:
    """The record's identity keys, highest priority first: `email:`, `li:`, `ext:<provider>:`.

    Values are normalised here too (cheap and idempotent), so a raw record gives the same keys
    as its normalised twin. A record without any key gets `[]` and must be rejected.
    """
    return keys_for(
        normalize_email(record.email),
        normalize_linkedin_url(record.linkedin_url),
        clean_text(record.external_id, 300),
        provider,
    )


def suppression_keys(record: LeadRecord, provider: str) -> list[str]:
    """The keys a suppression list is checked against: the identity keys, and `domain:` with
    the email's domain (a whole company can opt out)."""
    keys = identity_keys(record, provider)
    email = normalize_email(record.email)
    if email is not None:
        keys.append("domain:" + email.rsplit("@", 1)[1])
    return keys


def keys_for(
    email: str | None, linkedin_url: str | None, external_id: str | None, provider: str
) -> list[str]:
    """Keys from values that are already normalised (the sink normalises once, then calls this)."""
    keys: list[str] = []
    if email is not None:
        keys.append("email:" + email)
    if linkedin_url is not None:
        keys.append("li:" + linkedin_url)
    if external_id is not None:
        keys.append(f"ext:{provider}:{external_id}")
    return keys


# ---------------------------------------------------------------------------------------------
# Header synonyms (PROVIDERS.md, "CSV files")


def header_key(text: str) -> str:
    """Header text reduced to lower-case letters and digits: `E-mail Address` → `emailaddress`."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


_SYNONYMS: dict[LeadField, tuple[str, ...]] = {
    "first_name": ("First Name", "first_name", "FirstName", "Given Name", "First"),
    "last_name": ("Last Name", "Surname", "LastName", "Family Name", "Last"),
    "email": (
        "Email",
        "Email Address",
        "E-mail Address",
        "Work Email",
        "E-mail",
        "Business Email",
        "Email 1",
    ),
    "company_name": (
        "Company",
        "Company Name",
        "Organization Name",
        "Organisation Name",
        "Organization",
        "Account Name",
        "Employer",
    ),
    "title": ("Title", "Job Title", "Position", "Role"),
    "linkedin_url": (
        "LinkedIn URL",
        "Person Linkedin Url",
        "URL",
        "LinkedIn",
        "LinkedIn Profile",
        "Profile URL",
    ),
    "company_domain": ("Website", "Company Domain", "Company Website", "Domain"),
    "company_industry": ("Industry",),
    "company_size": ("# Employees", "Employees", "Company Size", "Headcount"),
    "phone": ("Phone", "Phone Number", "Mobile Phone", "Work Phone", "Mobile"),
    "city": ("City",),
    "state": ("State", "Region", "Province"),
    "country": ("Country",),
}

#: `header_key(text)` → lead field, for every known synonym.
HEADER_SYNONYMS: dict[str, LeadField] = {
    header_key(text): field for field, texts in _SYNONYMS.items() for text in texts
}


def field_for_header(
    text: str, overrides: Mapping[str, LeadField | None] | None = None
) -> LeadField | None:
    """The lead field a column header means, or `None` for a column to leave in `raw` only.

    `overrides` (header text → field, or `None` to ignore the column) win over the synonyms.
    Matching ignores case, spaces and punctuation on both sides.
    """
    key = header_key(text)
    if overrides:
        for header, field in overrides.items():
            if header_key(header) == key:
                return field
    return HEADER_SYNONYMS.get(key)
