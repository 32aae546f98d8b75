"""Opening and refreshing API sign-in sessions: the token pair every sign-in answers.

Shared by password sign-up and login (`api.routes.auth`) and by identity-provider sign-in and
refresh (`api.routes.sessions`), so every way in issues the same pair: a short-lived access JWT
naming its session (`sid`) and an opaque rotating refresh token (`models.auth_sessions`).

A session remembers only what lets a person recognise a device in `GET /me/sessions`: the
browser and system family of the user agent (`Firefox on Linux`), and the client address cut to
a /24 (IPv4) or /48 (IPv6) prefix — never the full agent string or address.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request
from sqlalchemy.orm import Session

from api import security
from models import auth_sessions
from models.tenancy import User
from runtime.settings import Settings

# First match wins: Edge and Opera also say "Chrome", Chrome also says "Safari".
_BROWSERS = (
    ("Edge", re.compile(r"Edg(e|A|iOS)?/")),
    ("Opera", re.compile(r"OPR/|Opera")),
    ("Firefox", re.compile(r"Firefox/|FxiOS/")),
    ("Chrome", re.compile(r"Chrome/|CriOS/")),
    ("Safari", re.compile(r"Safari/")),
    ("curl", re.compile(r"^curl/")),
    ("python-httpx", re.compile(r"^python-httpx/")),
    ("python-requests", re.compile(r"^python-requests/")),
)
_SYSTEMS = (
    ("Android", re.compile(r"Android")),
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux")),
)


def user_agent_family(user_agent: str | None) -> str | None:
    if not user_agent:
        return None
    browser = next((name for name, pattern in _BROWSERS if pattern.search(user_agent)), "other")
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    return f"{browser} on {system}" if system else browser


def ip_prefix(address: str | None) -> str | None:
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return None
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    expires_in: int
    refresh_token: str
    session_id: uuid.UUID


@dataclass(frozen=True)
class Client:
    """Where a sign-in comes from, as a session keeps it."""

    user_agent: str | None
    ip_prefix: str | None

    @classmethod
    def of(cls, request: Request, ip: str) -> Client:
        return cls(user_agent_family(request.headers.get("user-agent")), ip_prefix(ip))


def refresh_ttl(settings: Settings) -> timedelta:
    return timedelta(seconds=settings.refresh_ttl_s)


def open_session(
    session: Session,
    settings: Settings,
    user: User,
    client: Client,
    *,
    method: str,
    issuer: str | None = None,
) -> TokenPair:
    refresh = security.new_refresh_token()
    row = auth_sessions.open_session(
        session,
        user_id=user.id,
        method=method,
        issuer=issuer,
        user_agent=client.user_agent,
        ip_prefix=client.ip_prefix,
        password_version=security.password_version(user.password_hash),
        refresh_hash=refresh.hash,
        ttl=refresh_ttl(settings),
    )
    access = security.issue_access_token(settings, user.id, user.password_hash, row.id)
    return TokenPair(access.token, access.expires_in, refresh.value, row.id)


def password_session(
    session: Session, settings: Settings, user: User, request: Request, ip: str
) -> TokenPair:
    """A sign-in by password (sign-up, login, a password change) opens a new session."""
    return open_session(session, settings, user, Client.of(request, ip), method="password")
