"""The bootstrap admin API key: made once, on the first `dashin up` against a database.

A fresh installation has no users, so nobody could call the API. `ensure_bootstrap_key` creates
a platform admin (`admin@dashin.local`, no password: it signs in only with keys), its own domain
and one API key, and returns the key's value. Only the SHA-256 hash is stored in the database
(as for every key, `api.security`): later starts find the admin and return None. `dashin up`
prints the value and keeps it in `.dashin/env` for the CLI (`cli.welcome`). A
transaction-scoped advisory lock makes two concurrent first starts create one admin, not two.
"""

from __future__ import annotations

import uuid

import typer
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from runtime.errors import NotFound

ADMIN_EMAIL = "admin@dashin.local"
ADMIN_DOMAIN = "dashin.local"
KEY_NAME = "bootstrap"


def ensure_bootstrap_key(engine: Engine) -> str | None:
    """Create the admin and its key if there is no admin yet; the key's value, else None."""
    from models import tenancy_repo

    with Session(engine) as session, session.begin():
        tenancy_repo.lock_bootstrap(session)
        if tenancy_repo.get_user_by_email(session, ADMIN_EMAIL) is not None:
            return None
        domain = tenancy_repo.find_domain(session, ADMIN_DOMAIN)
        if domain is None:
            domain = tenancy_repo.create_domain(session, ADMIN_DOMAIN, created_by=None)
        user = tenancy_repo.create_user(
            session,
            email=ADMIN_EMAIL,
            password_hash=None,
            signup_domain_id=domain.id,
            full_name="Dashin admin",
            is_admin=True,
        )
        tenancy_repo.add_membership(session, domain.id, user.id, "manager")
        return _add_key(session, user.id, domain.id, KEY_NAME)


def new_admin_key(engine: Engine) -> str:
    """Another key for the bootstrap admin (`dashin admin-key`: the printed one was lost).

    Whoever can reach the database can already do anything, so this asks for nothing more.
    """
    from models import tenancy_repo

    with Session(engine) as session, session.begin():
        user = tenancy_repo.get_user_by_email(session, ADMIN_EMAIL)
        if user is None or user.signup_domain_id is None:
            raise NotFound("no bootstrap admin in this database yet: run `dashin up` first")
        return _add_key(session, user.id, user.signup_domain_id, "admin-key")


def _add_key(session: Session, user_id: uuid.UUID, domain_id: uuid.UUID, name: str) -> str:
    from api import security
    from models import tenancy_repo

    secret = security.new_api_key()
    tenancy_repo.create_api_key(
        session,
        user_id=user_id,
        domain_id=domain_id,
        name=name,
        prefix=secret.shown_prefix,
        key_hash=secret.hash,
    )
    return secret.value


def print_bootstrap_key(console: Console, database_url: str) -> str | None:
    """`dashin up`'s hook: make the key on the first start and print it; the new key, else None."""
    from runtime.db import make_engine

    engine = make_engine(database_url, pool_size=1, application_name="dashin-bootstrap")
    try:
        key = ensure_bootstrap_key(engine)
    finally:
        engine.dispose()
    if key is None:
        return None
    console.print(
        f"[bold yellow]bootstrap admin API key[/] (a platform admin: acts in every domain "
        f"with --domain): [bold]{key}[/]",
        soft_wrap=True,
    )
    return key


def admin_key_command() -> None:
    """Make another API key for the bootstrap admin (the database directly) and keep it in
    .dashin/env for the commands run here."""
    from cli.welcome import remember_cli_settings
    from runtime.db import make_engine
    from runtime.settings import get_settings

    settings = get_settings()
    engine = make_engine(settings.require_database_url(), pool_size=1)
    try:
        key = new_admin_key(engine)
    finally:
        engine.dispose()
    remember_cli_settings(settings.api_url, key)
    typer.echo(f"export DASHIN_API_KEY={key}")
