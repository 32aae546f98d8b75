"""Checking what a person types to sign in, shared by `POST /auth/login` and `/console/login`,
so both refuse and rehash the same way."""

from __future__ import annotations

from sqlalchemy.orm import Session

from api import security
from api.problems import NotAuthenticated
from models import auth_repo, tenancy_repo
from models.auth_repo import CallerRow
from models.tenancy import User


def user_for_password(session: Session, email: str, password: str) -> User:
    """The active user with this email and password (rehashed when the parameters changed);
    `NotAuthenticated` with one message whatever was wrong, after the same argon2 work."""
    user = tenancy_repo.get_user_by_email(session, email)
    password_hash = user.password_hash if user else None
    if not security.verify_password(password_hash, password) or user is None:
        raise NotAuthenticated("invalid email or password")
    if not user.is_active:
        raise NotAuthenticated("invalid email or password")
    if password_hash and security.needs_rehash(password_hash):
        tenancy_repo.set_password(session, user.id, security.hash_password(password))
    return user


def caller_for_api_key(session: Session, key: str) -> CallerRow:
    """The owner of a live API key who is still a member of the key's domain (a platform
    admin need not be: admins act in every domain, as `api.deps` allows)."""
    row = None
    if security.looks_like_api_key(key):
        row = auth_repo.user_for_api_key(session, security.sha256_hex(key))
    if row is None or not row.is_active or (row.home_role is None and not row.is_admin):
        raise NotAuthenticated("invalid or revoked API key")
    return row
