"""LinkedIn Lead Sync over HTTP only, as in docs/linkedin.md: API, a worker for the `linkedin`
queue, and the emulator answering as LinkedIn documents (questions at `/rest/leadForms/{id}`).

The access token has expired before the job starts, so the job refreshes it with the source's
refresh token; what a user relies on is checked: 307 leads from 345 responses of which 38 repeat
an earlier person, and no token in any API answer or log line.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from connectors.sandbox.linkedin import LinkedInEmulator
from tests.cli.conftest import LiveApi, Proc
from tests.e2e.conftest import ApiUser, read_all_logs, wait_for_job

pytestmark = pytest.mark.slow


@pytest.fixture
def linkedin_worker(live_env: dict[str, str]) -> Iterator[Proc]:
    argv = [sys.executable, "-m", "workers", "--queues", "linkedin", "--threads", "2"]
    proc = Proc(argv, live_env)
    try:
        proc.wait_for("worker.ready")
        yield proc
    finally:
        proc.stop()


@pytest.mark.parametrize("linkedin_emulator", [{"leads": 345, "repeats": 38}], indirect=True)
def test_linkedin_source_syncs_307_leads_and_renews_its_token_unseen(
    live_api: LiveApi,
    linkedin_worker: Proc,
    new_user: ApiUser,
    linkedin_emulator: LinkedInEmulator,
) -> None:
    api, emu = new_user.client, linkedin_emulator
    # Given the data source of docs/linkedin.md, whose access token LinkedIn no longer accepts
    created = api.post(
        "/data-sources",
        json={
            "type": "linkedin",
            "name": "LinkedIn forms",
            "config": {
                "sponsored_account_id": "123",
                "base_url": emu.url,
                "access_token": "linkedin-test-token",
                "refresh_token": emu.refresh_token,
                "client_id": emu.client_id,
                "client_secret": emu.client_secret,
                "token_url": f"{emu.url}/oauth/v2/accessToken",
            },
        },
    )
    assert created.status_code == 201, created.text
    source = created.json()
    assert source["secrets_set"] == ["access_token", "client_secret", "refresh_token"]
    emu.faults.expire_tokens()
    # When its job runs
    job = api.post("/jobs", json={"data_source_id": source["id"], "start": True})
    assert job.status_code == 201, job.text
    done = wait_for_job(
        api, job.json()["id"], lambda j: j["status"] in ("completed", "failed"), "the job's end"
    )
    # Then 307 leads, every response fetched, the form read once
    assert done["status"] == "completed", done
    counters = done["counters"]
    assert (counters["fetched"], counters["inserted"], counters["rejected"]) == (345, 307, 0)
    assert len(emu.stats.requests_to(f"/rest/leadForms/{emu.form_id}")) == 1
    # And the token was renewed once, and the new one is used and stored but never shown
    [refresh] = emu.stats.requests_to("/oauth/v2/accessToken")
    assert refresh.status == 200
    new_token = emu.stats.requests_to("/rest/leadFormResponses")[-1].headers["authorization"]
    new_token = new_token.removeprefix("Bearer ")
    assert new_token != "linkedin-test-token"
    after = api.get(f"/data-sources/{source['id']}")
    assert after.status_code == 200 and "access_token_expires_at" in after.json()["config"]
    shown = after.text + api.get(f"/jobs/{done['id']}").text + repr(read_all_logs(api, done["id"]))
    assert "linkedin.token_refreshed" in shown
    for secret in (new_token, "linkedin-test-token", emu.refresh_token, emu.client_secret):
        assert secret not in shown
