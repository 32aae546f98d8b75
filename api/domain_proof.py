"""Proof that a tenant owns the domain it is named after (issue 14, M2).

Anyone could sign up first as `bigcorp.com` and lock the real company out, so a domain founded
or renamed through the API starts *unverified*. Its manager proves ownership by publishing

    _dashin-verify.<domain>  TXT  "dashin-verify=<token>"

and asking for the check, or by receiving a mail at an address of the domain
(`postmaster@acme.com`) and sending back the token it holds. Until then the domain may not use
paid providers (`PAID_TYPES`): the name alone buys nothing worth squatting. `lookup_txt` is the
one seam to DNS (tests replace it).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

import dns.exception
import dns.resolver

RECORD_PREFIX = "_dashin-verify."
VALUE_PREFIX = "dashin-verify="
#: connector types that spend a provider's paid credits: only for verified domains
PAID_TYPES = frozenset({"apollo", "zoominfo", "linkedin"})
#: a lookup waits at most this long (the request is waiting on it)
LOOKUP_TIMEOUT_S = 5.0


def record_name(domain_name: str) -> str:
    return RECORD_PREFIX + domain_name


def record_value(token: str) -> str:
    return VALUE_PREFIX + token


def lookup_txt(name: str) -> list[str]:
    """The TXT strings published at `name`; none when it does not exist or DNS does not answer
    in time (the manager can ask again)."""
    try:
        answer = dns.resolver.resolve(name, "TXT", lifetime=LOOKUP_TIMEOUT_S)
    except dns.exception.DNSException:
        return []
    return [b"".join(rdata.strings).decode("utf-8", "replace") for rdata in answer]


def is_proven(domain_name: str, token: str) -> bool:
    """Whether `_dashin-verify.<domain_name>` holds this token's value right now."""
    expected = record_value(token)
    return any(value.strip() == expected for value in lookup_txt(record_name(domain_name)))


def mail_token(secret_key: str, domain_id: uuid.UUID, domain_name: str, challenge: str) -> str:
    """The token a proof mail carries: an HMAC of the domain and its current challenge, so
    nothing is stored for it and a rename (a new challenge) voids every token mailed before."""
    message = f"{domain_id}:{domain_name}:{challenge}".encode()
    key = hashlib.sha256(b"dashin-domain-proof:" + secret_key.encode()).digest()
    return hmac.new(key, message, "sha256").hexdigest()[:40]


def mail_token_matches(
    secret_key: str, domain_id: uuid.UUID, domain_name: str, challenge: str, offered: str
) -> bool:
    expected = mail_token(secret_key, domain_id, domain_name, challenge)
    return hmac.compare_digest(expected, offered.strip())
