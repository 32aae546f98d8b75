"""UTM links: building `full_url`, short codes, CRUD and click recording.

`build_full_url` keeps the destination byte for byte (its own query, its fragment) and only
appends the UTM pairs, percent-encoded; a `utm_*` key the destination already carries and we
set is dropped first, so the link carries exactly the UTM values given.
"""

from __future__ import annotations

import re
import secrets
import string
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, unquote_plus, urlsplit, urlunsplit

from sqlalchemy import Select, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.base import found
from models.campaigns import Campaign, Link, LinkClick
from models.clients_repo import ClientScope, campaign_ids_of
from models.notify import pg_notify
from runtime.errors import Conflict, FieldError, ValidationFailed

UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_content", "utm_term")
_ALPHABET = string.ascii_letters + string.digits
_CODE_LENGTH = 8
_CODE_ATTEMPTS = 5


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [FieldError(field, "invalid", message)])


def build_full_url(destination: str, utm: dict[str, str | None]) -> str:
    """`destination` plus the non-empty `utm` values; refuses anything but absolute http(s)."""
    parts = urlsplit(destination.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise _invalid("destination_url", "the destination must be an absolute http(s) URL")
    given = {k: v for k, v in utm.items() if v is not None and v != ""}
    kept = [
        pair
        for pair in parts.query.split("&")
        if pair and unquote_plus(pair.split("=", 1)[0]) not in given
    ]
    added = [f"{key}={quote(value, safe='')}" for key, value in given.items()]
    query = "&".join(kept + added)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def new_code() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(_CODE_LENGTH))


def create_link(
    session: Session,
    campaign: Campaign,
    *,
    created_by: uuid.UUID,
    destination_url: str,
    utm: dict[str, str | None],
) -> Link:
    """Insert a link; `utm_campaign` defaults to the campaign's slug; a fresh unique short code."""
    values = {**utm, "utm_campaign": utm.get("utm_campaign") or campaign.slug}
    full_url = build_full_url(destination_url, values)
    for _ in range(_CODE_ATTEMPTS):
        link = Link(
            domain_id=campaign.domain_id,
            campaign_id=campaign.id,
            destination_url=destination_url.strip(),
            full_url=full_url,
            short_code=new_code(),
            created_by=created_by,
            **values,
        )
        try:
            with session.begin_nested():
                session.add(link)
                session.flush()
        except IntegrityError:  # short code taken: 62^8 makes this rare; try another
            continue
        session.refresh(link)
        return link
    raise Conflict("could not allocate a short code; retry")


def links_query(
    domain_id: uuid.UUID, campaign_id: uuid.UUID | None = None, *, clients: ClientScope = None
) -> Select[Link]:
    """Live links of the domain (of one campaign); with `clients`, of these clients' campaigns."""
    query = select(Link).where(Link.domain_id == domain_id, Link.deleted_at.is_(None))
    if campaign_id is not None:
        query = query.where(Link.campaign_id == campaign_id)
    if clients is not None:
        query = query.where(Link.campaign_id.in_(campaign_ids_of(domain_id, clients)))
    return query


def get_link(
    session: Session, domain_id: uuid.UUID, link_id: uuid.UUID, *, clients: ClientScope = None
) -> Link:
    query = links_query(domain_id, clients=clients).where(Link.id == link_id)
    return found(session.scalar(query), "link", link_id)


def live_links(
    session: Session, domain_id: uuid.UUID, ids: list[uuid.UUID]
) -> dict[uuid.UUID, Link]:
    """The domain's live links among `ids`, locked for the bulk change that reads them."""
    rows = session.scalars(
        links_query(domain_id).where(Link.id.in_(ids)).order_by(Link.id).with_for_update()
    )
    return {link.id: link for link in rows}


def update_link(session: Session, link: Link, changes: dict[str, Any]) -> Link:
    """Change destination or UTM values; `full_url` is rebuilt, the short code stays."""
    for name, value in changes.items():
        setattr(link, name, value)
    link.full_url = build_full_url(link.destination_url, {k: getattr(link, k) for k in UTM_KEYS})
    session.flush()
    session.refresh(link)
    return link


def soft_delete_link(session: Session, link: Link) -> None:
    link.deleted_at = datetime.now(UTC)
    session.flush()


def resolve_code(session: Session, code: str) -> tuple[uuid.UUID, str] | None:
    """(link id, full_url) of a live link, for the public redirect."""
    row = session.execute(
        select(Link.id, Link.full_url).where(Link.short_code == code, Link.deleted_at.is_(None))
    ).first()
    return (row[0], row[1]) if row else None


_COUNTRY = re.compile(r"^[A-Z]{2}$")


def clean_country(value: str | None) -> str | None:
    """An ISO 3166 alpha-2 code from a CDN header; `XX` and `T1` (unknown, Tor) become None."""
    code = (value or "").strip().upper()
    return code if _COUNTRY.match(code) and code not in ("XX", "T1") else None


_UA_FAMILIES = (
    (re.compile(r"bot|crawl|spider|slurp|preview", re.I), "Bot"),
    (re.compile(r"Edg(e|A|iOS)?/"), "Edge"),
    (re.compile(r"OPR/|Opera"), "Opera"),
    (re.compile(r"SamsungBrowser/"), "Samsung Internet"),
    (re.compile(r"Firefox/|FxiOS/"), "Firefox"),
    (re.compile(r"Chrome/|CriOS/"), "Chrome"),
    (re.compile(r"Safari/"), "Safari"),
    (re.compile(r"^curl/"), "curl"),
)


def ua_family(user_agent: str | None) -> str | None:
    """The browser family of a User-Agent (the string itself is never stored)."""
    if not user_agent:
        return None
    return next((name for pattern, name in _UA_FAMILIES if pattern.search(user_agent)), "Other")


def record_click(
    session: Session,
    link_id: uuid.UUID,
    *,
    referrer: str | None,
    user_agent: str | None,
    country: str | None,
) -> None:
    """One click row and the link's counter; the campaign's metrics listeners hear of it."""
    row = session.execute(
        update(Link)
        .where(Link.id == link_id)
        .values(clicks=Link.clicks + 1)
        .returning(Link.domain_id, Link.campaign_id)
    ).first()
    if row is None:
        return
    session.add(
        LinkClick(
            link_id=link_id,
            domain_id=row[0],
            referrer=(referrer or None) and referrer[:2000],
            ua_family=ua_family(user_agent),
            country=clean_country(country),
        )
    )
    session.flush()
    pg_notify(session, "campaign_metrics", str(row[1]))
