"""Fixtures for API tests (shared by every router's tests).

    api_client                 a `fastapi.testclient.TestClient` on `create_app()`, with settings
                               pointing at this test's own database and Redis (`settings_env`).
                               Server errors become 500 problem responses (not raised).
    mailer                     the `RecordingMailer` the app sends through: `mailer.sent[-1].body`
    make_user(domain_name=None, role="manager", email=None) -> ApiUser
                               a user with a membership, created straight in the database.
                               `domain_name=None` makes a fresh domain; an existing name adds the
                               user to it (creating the domain on first use). `role` is one of
                               manager, member, viewer, or admin (a platform admin who is NOT a
                               member of `domain_name`; they act in it through `.headers`).
    ApiUser                    .user_id .domain_id .domain_name .email .password .role
                               .token (a JWT) .headers ({"Authorization", "Dashin-Domain"})
                               .auth (Authorization only: acts in the sign-up domain)

Password hashing uses cheap argon2 parameters here so that creating users costs milliseconds.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api import security
from api.mailer import RecordingMailer

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


@dataclass(frozen=True)
class ApiUser:
    user_id: uuid.UUID
    domain_id: uuid.UUID
    domain_name: str
    email: str
    password: str
    role: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def headers(self) -> dict[str, str]:
        return {**self.auth, "Dashin-Domain": str(self.domain_id)}


MakeUser = Callable[..., ApiUser]


@pytest.fixture(autouse=True)
def _cheap_password_hashing() -> Iterator[None]:
    security.set_password_hasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    yield
    security.set_password_hasher(PasswordHasher())


@pytest.fixture
def mailer() -> RecordingMailer:
    return RecordingMailer()


@pytest.fixture
def api_client(settings_env: None, mailer: RecordingMailer) -> Iterator[TestClient]:
    from api.app import create_app
    from api.deps import redis_client
    from runtime.db import reset_engines

    app = create_app(mailer=mailer)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client
    reset_engines()
    redis_client.cache_clear()


def _unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def make_user(api_client: TestClient, engine: Engine) -> MakeUser:
    from models import tenancy_repo
    from runtime.settings import get_settings

    def make(
        domain_name: str | None = None, role: str = "manager", email: str | None = None
    ) -> ApiUser:
        domain_name = domain_name or f"{_unique('d')}.example.com"
        with Session(engine) as session, session.begin():
            domain = tenancy_repo.find_domain(session, domain_name)
            if domain is None:
                domain = tenancy_repo.create_domain(session, domain_name, created_by=None)
            if role == "admin":
                home = tenancy_repo.create_domain(session, f"{_unique('adm')}.example", None)
                signup_domain = home.id
            else:
                signup_domain = domain.id
            user = tenancy_repo.create_user(
                session,
                email=email or f"{_unique('u')}@{domain_name}",
                password_hash=security.hash_password(PASSWORD),
                signup_domain_id=signup_domain,
                is_admin=role == "admin",
            )
            tenancy_repo.add_membership(
                session, signup_domain, user.id, "manager" if role == "admin" else role
            )
            token = security.issue_access_token(get_settings(), user.id, user.password_hash)
            return ApiUser(
                user_id=user.id,
                domain_id=domain.id,
                domain_name=domain.domain_name,
                email=user.email,
                password=PASSWORD,
                role=role,
                token=token.token,
            )

    return make
