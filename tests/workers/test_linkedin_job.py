"""LinkedIn Lead Sync jobs through the real runner: PostgreSQL, Redis and the emulator over HTTP.

The emulator answers as LinkedIn documents (no form inside a response; questions at
`GET /rest/leadForms/{id}`), and the data source's secrets are stored encrypted as the API stores
them, so these tests walk the path a user's job walks.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from connectors.sandbox.linkedin import LinkedInEmulator
from models import Job, JobLog, Lead, job_states
from models.sources import DataSource
from runtime.crypto import decrypt_json, encrypt_json
from runtime.settings import get_settings
from tests.factories import make_domain, make_job, make_source, make_user
from workers.runner import Runner

DAY_S = 86_400


def linkedin_job(engine: Engine, emu: LinkedInEmulator) -> tuple[uuid.UUID, uuid.UUID]:
    """A queued job on a LinkedIn source whose token can be refreshed at the emulator."""
    domain = make_domain(engine)
    user = make_user(engine, domain)
    secrets = {
        "access_token": "linkedin-test-token",
        "refresh_token": emu.refresh_token,
        "client_secret": emu.client_secret,
    }
    config = {
        "sponsored_account_id": "123",
        "base_url": emu.url,
        "page_size": 100,
        "client_id": emu.client_id,
        "token_url": f"{emu.url}/oauth/v2/accessToken",
    }
    credentials = encrypt_json(get_settings().require_secret_key(), secrets)
    source = make_source(engine, domain, "linkedin", config, credentials)
    return source, queued(engine, domain, source, user)


def queued(engine: Engine, domain: uuid.UUID, source: uuid.UUID, user: uuid.UUID) -> uuid.UUID:
    job_id = make_job(engine, domain, source, {}, user)
    with Session(engine) as session, session.begin():
        job_states.start(session, job_id)
    return job_id


def load(engine: Engine, model: Any, row_id: uuid.UUID) -> Any:
    with Session(engine) as session:
        row = session.get(model, row_id)
        assert row is not None
        session.expunge(row)
        return row


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 345, "repeats": 38}], indirect=True)
def test_345_responses_with_38_repeat_submissions_yield_307_leads(
    engine: Engine, runner: Runner, linkedin_emulator: LinkedInEmulator
) -> None:
    # Given an account with 345 responses, 38 of them repeat submissions of earlier people
    emu = linkedin_emulator
    source_id, job_id = linkedin_job(engine, emu)
    # When its job runs
    assert runner.run(job_id) == "completed"
    # Then 307 leads exist, every response was fetched and none rejected
    job = load(engine, Job, job_id)
    assert (job.fetched, job.inserted, job.rejected) == (345, 307, 0)
    # (a repeat read in a later transaction adds its response id to the lead: `updated`; pages
    # already fetched commit together, and a repeat folded into its first submission in the
    # same write is `unchanged`: which one depends on how far the prefetcher got)
    assert job.updated + job.unchanged == 38
    assert job.pages == 4 and job.error is None
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 307
    # And the questions were read from GET /rest/leadForms/{id}, once for the whole job
    [form_request] = emu.stats.requests_to(f"/rest/leadForms/{emu.form_id}")
    assert form_request.status == 200
    assert len(emu.stats.requests_to("/rest/leadFormResponses")) == 4
    assert load(engine, DataSource, source_id).leads_total == 307


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 120}], indirect=True)
def test_a_refreshed_token_is_stored_encrypted_on_the_data_source(
    engine: Engine, runner: Runner, linkedin_emulator: LinkedInEmulator
) -> None:
    # Given a source whose access token LinkedIn no longer accepts
    emu = linkedin_emulator
    source_id, job_id = linkedin_job(engine, emu)
    emu.faults.expire_tokens()
    # When its job runs, it refreshes the token and completes
    assert runner.run(job_id) == "completed"
    assert load(engine, Job, job_id).inserted == 120
    # Then the new token is in the source's encrypted credentials, the old one gone
    source = load(engine, DataSource, source_id)
    secrets = decrypt_json(get_settings().require_secret_key(), source.credentials)
    new_token = secrets["access_token"]
    assert new_token != "linkedin-test-token" and new_token.encode() not in source.credentials
    assert secrets["refresh_token"] == emu.refresh_token
    last = emu.stats.requests_to("/rest/leadFormResponses")[-1]
    assert last.headers.get("authorization") == f"Bearer {new_token}"
    # And its expiry (60 days) is in the public config; the secrets are not
    assert abs(source.config["access_token_expires_at"] - (time.time() + 60 * DAY_S)) < 120
    assert "access_token" not in source.config and "refresh_token" not in source.config
    # And no token reached the job's log
    with Session(engine) as session:
        lines = session.execute(
            select(JobLog.event, JobLog.message, JobLog.fields).where(JobLog.job_id == job_id)
        ).all()
    assert "linkedin.token_refreshed" in [line.event for line in lines]
    logged = repr([tuple(line) for line in lines])
    assert new_token not in logged and emu.refresh_token not in logged
    # And the next job starts with the stored token: no second refresh
    emu.add_leads(3, at_ms=emu.now_ms() - 10_000)
    with Session(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        domain, user = job.domain_id, job.created_by
        assert user is not None
    assert runner.run(queued(engine, domain, source_id, user)) == "completed"
    assert len(emu.stats.requests_to("/oauth/v2/accessToken")) == 1


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 10}], indirect=True)
def test_a_revoked_refresh_token_fails_the_job_with_a_readable_error(
    engine: Engine, runner: Runner, linkedin_emulator: LinkedInEmulator
) -> None:
    emu = linkedin_emulator
    _, job_id = linkedin_job(engine, emu)
    emu.faults.expire_tokens()
    emu.revoke_refresh_token()
    assert runner.run(job_id) == "failed"
    job = load(engine, Job, job_id)
    assert job.error_code == "bad_credentials"
    assert "refused to refresh the access token" in job.error
    assert "authorise Dashin again" in job.error and emu.refresh_token not in job.error
