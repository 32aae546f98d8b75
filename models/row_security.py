"""Which domain a transaction acts for, told to PostgreSQL so its row-level security applies.

Migration 0025 puts a policy on every table with tenant data: the `dashin_app` role sees and
writes only the rows of the domain in `app.domain_id`, and nothing when none is set. The app
still connects as the owner (tests, embedded, a managed database alike), so the role is switched
per transaction: `act_for_domain(session, domain)` makes the session's transactions, the current
one and every later one, run `SET LOCAL ROLE dashin_app` and set the domain first. Both are
`LOCAL`: they end with the transaction, so a pooled connection never carries them to the next.

A session that never names a domain stays the owner, a member of `dashin_maintenance`, which
passes every policy: authentication before the domain is known, sign-up, and the cross-domain
paths (scheduler, reaper, retention, backups, metrics, search merge).

`DASHIN_RLS` switches it (default on; off: the policies stay, the owner passes them). Conditions
PostgreSQL does not know as `LEAKPROOF` (`LIKE`, `@>`: lead search and tags) cannot drive an
index scan under the policies: `models.leads_repo.narrow` resolves them to ids first
(migration 0026, docs/operations.md#row-level-security).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.orm import Session, SessionTransaction

from runtime.settings import get_settings

APP_ROLE = "dashin_app"
MAINTENANCE_ROLE = "dashin_maintenance"

_DOMAIN = "dashin_rls_domain"  # session.info: the domain its transactions act for
_CLIENTS = "dashin_rls_clients"  # session.info: the clients a limited viewer's reads keep to
_BOUND = "dashin_rls_bound"  # session.info: its transaction holds a connection now

# one round trip for all three; `set_config(..., true)` is `SET LOCAL`
_SET = text(
    f"SELECT set_config('role', '{APP_ROLE}', true), set_config('app.domain_id', :domain, true),"
    " set_config('app.client_ids', :clients, true)"
)


def enabled() -> bool:
    return get_settings().rls


def act_for_domain(
    session: Session, domain_id: uuid.UUID, client_ids: Sequence[uuid.UUID] | None = None
) -> None:
    """From now on, this session's transactions see only `domain_id`'s rows, and with
    `client_ids` (a viewer limited to clients, migration 0027) only those clients' reads."""
    if not enabled():
        return
    session.info[_DOMAIN] = domain_id
    session.info[_CLIENTS] = _client_setting(client_ids)
    if session.info.get(_BOUND):
        apply(session.connection(), domain_id, client_ids)


def domain_session(engine: Engine, domain_id: uuid.UUID) -> Session:
    """A new session whose transactions act for `domain_id`."""
    session = Session(engine)
    act_for_domain(session, domain_id)
    return session


def apply(
    conn: Connection, domain_id: uuid.UUID, client_ids: Sequence[uuid.UUID] | None = None
) -> None:
    """The open transaction of `conn` acts for `domain_id` (a connection outside any session,
    e.g. the leads export's own)."""
    if enabled():
        conn.execute(_SET, {"domain": str(domain_id), "clients": _client_setting(client_ids)})
        conn.info[_DOMAIN] = domain_id


def _client_setting(client_ids: Sequence[uuid.UUID] | None) -> str:
    """`app.client_ids`: '' when not limited, a uuid[] literal ('{}': no client) when limited."""
    if client_ids is None:
        return ""
    return "{" + ",".join(str(c) for c in client_ids) + "}"


def acting_for(db: Session | Connection) -> uuid.UUID | None:
    """The domain whose policies `db`'s transactions run under (None: the owner's, which the
    maintenance policy lets through)."""
    if not enabled():
        return None
    found = db.info.get(_DOMAIN)
    return found if isinstance(found, uuid.UUID) else None


@event.listens_for(Session, "after_begin")
def _after_begin(session: Session, transaction: SessionTransaction, conn: Connection) -> None:
    session.info[_BOUND] = True
    domain_id = session.info.get(_DOMAIN)
    if domain_id is not None:
        conn.execute(_SET, {"domain": str(domain_id), "clients": session.info.get(_CLIENTS, "")})


@event.listens_for(Session, "after_transaction_end")
def _after_transaction_end(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        session.info.pop(_BOUND, None)


def current(conn: Connection) -> tuple[str, Any]:
    """(role, domain) the open transaction of `conn` runs as (tests, diagnostics)."""
    row = conn.execute(
        text("SELECT current_user, NULLIF(current_setting('app.domain_id', true), '')")
    ).one()
    return str(row[0]), row[1]
