"""The operator console without a browser: sign-in, session cookie, CSRF, roles, isolation.

The browser tests (tests/e2e/test_console_browser.py) drive the same pages in Chromium.
"""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from api import security
from api.console.jobs import ACTIONS_FROM
from models import job_states, tenancy_repo
from models.job_statuses import JOB_STATUSES
from runtime.errors import InvalidTransition
from tests.api.conftest import PASSWORD, ApiUser, MakeUser
from tests.api.helpers import add_logs, create_job, move_job
from tests.api.sse_client import read_events, take_until
from tests.factories import make_source

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def _csrf(html: str) -> str:
    found = CSRF_INPUT.search(html)
    assert found, "page has no CSRF field"
    return found.group(1)


def sign_in(client: TestClient, **fields: str) -> TestClient:
    """Sign in through the form (GET for its CSRF cookie and field, then POST)."""
    form = client.get("/console/login")
    assert form.status_code == 200
    answer = client.post(
        "/console/login",
        data={"csrf_token": _csrf(form.text), **fields},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def _api_key(engine: Engine, user: ApiUser) -> str:
    secret = security.new_api_key()
    with Session(engine) as session, session.begin():
        tenancy_repo.create_api_key(
            session,
            user_id=user.user_id,
            domain_id=user.domain_id,
            name="console",
            prefix=secret.shown_prefix,
            key_hash=secret.hash,
        )
    return secret.value


def test_password_sign_in_sets_a_strict_session_cookie(
    api_client: TestClient, make_user: MakeUser
) -> None:
    # Given a manager, when they sign in with their password
    user = make_user()
    form = api_client.get("/console/login")
    answer = api_client.post(
        "/console/login",
        data={"csrf_token": _csrf(form.text), "email": user.email, "password": PASSWORD},
        follow_redirects=False,
    )
    # Then the cookie is HttpOnly, SameSite=Lax, expires, and opens the jobs page
    assert answer.status_code == 303 and answer.headers["location"] == "/console/jobs"
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("dashin_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    assert "Secure" not in cookie  # plain HTTP here; behind HTTPS the flag is set (next test)
    page = api_client.get("/console/jobs")
    assert page.status_code == 200 and user.email in page.text


def test_cookie_is_secure_behind_https(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    form = api_client.get("/console/login")
    answer = api_client.post(
        "/console/login",
        data={"csrf_token": _csrf(form.text), "email": user.email, "password": PASSWORD},
        headers={"X-Forwarded-Proto": "https"},
        follow_redirects=False,
    )
    cookie = next(
        c for c in answer.headers.get_list("set-cookie") if c.startswith("dashin_session=")
    )
    assert "Secure" in cookie


def test_wrong_password_and_unsigned_pages(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    assert api_client.get("/console/jobs", follow_redirects=False).headers["location"] == (
        "/console/login?next=/console/jobs"
    )
    form = api_client.get("/console/login")
    wrong = api_client.post(
        "/console/login",
        data={"csrf_token": _csrf(form.text), "email": user.email, "password": "nope"},
    )
    assert wrong.status_code == 401 and "invalid email or password" in wrong.text
    assert "dashin_session" not in api_client.cookies


def test_api_key_sign_in(api_client: TestClient, make_user: MakeUser, engine: Engine) -> None:
    user = make_user()
    sign_in(api_client, api_key=_api_key(engine, user))
    page = api_client.get("/console/jobs")
    assert page.status_code == 200 and user.domain_name in page.text
    form = api_client.get("/console/login")
    bad = api_client.post(
        "/console/login", data={"csrf_token": _csrf(form.text), "api_key": "dsk_nope"}
    )
    assert bad.status_code == 401 and "invalid or revoked API key" in bad.text


def test_sign_in_without_the_form_token_is_refused(
    api_client: TestClient, make_user: MakeUser
) -> None:
    """Login CSRF: a cross-site form cannot sign the victim in to the attacker's account."""
    user = make_user()
    answer = api_client.post(
        "/console/login", data={"email": user.email, "password": PASSWORD, "csrf_token": "x"}
    )
    assert answer.status_code == 403


def test_forged_post_without_csrf_token_is_403(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    # Given a signed-in manager and a paused job of theirs
    user = make_user()
    source = make_source(engine, user.domain_id)
    job = create_job(engine, user.domain_id, source, moves=("start", "pause"))
    sign_in(api_client, email=user.email, password=PASSWORD)
    # When another site makes their browser POST (the cookie rides along, the token cannot)
    for data in ({}, {"csrf_token": "forged"}):
        answer = api_client.post(f"/console/jobs/{job}/resume", data=data)
        # Then nothing moves
        assert answer.status_code == 403, answer.text
    assert api_client.post("/console/logout", data={}).status_code == 403
    page = api_client.get(f"/console/jobs/{job}")
    assert 'data-status="paused"' in page.text
    assert 'data-event="job.start"' in page.text and 'data-event="job.pause"' in page.text
    # And with the page's token the same POST works
    moved = api_client.post(
        f"/console/jobs/{job}/resume",
        data={"csrf_token": _csrf(page.text)},
        headers={"HX-Request": "true"},
    )
    assert moved.status_code == 202 and "the job is queued" in moved.text


def test_a_refused_move_shows_the_apis_409_message(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    user = make_user()
    source = make_source(engine, user.domain_id)
    job = create_job(engine, user.domain_id, source, moves=("start", "acquire", "complete"))
    sign_in(api_client, email=user.email, password=PASSWORD)
    page = api_client.get(f"/console/jobs/{job}")
    assert 'data-action="pause"' not in page.text  # no button for a move the job cannot make
    api = api_client.post(f"/api/v1/jobs/{job}/pause", headers=user.headers)
    console = api_client.post(
        f"/console/jobs/{job}/pause",
        data={"csrf_token": _csrf(page.text)},
        headers={"HX-Request": "true"},
    )
    assert api.status_code == console.status_code == 409
    assert api.json()["detail"] in console.text


def test_sign_out_revokes_the_session(api_client: TestClient, make_user: MakeUser) -> None:
    user = make_user()
    sign_in(api_client, email=user.email, password=PASSWORD)
    stolen = api_client.cookies["dashin_session"]
    page = api_client.get("/console/jobs")
    assert (
        api_client.post(
            "/console/logout", data={"csrf_token": _csrf(page.text)}, follow_redirects=False
        ).status_code
        == 303
    )
    # A copy of the cookie kept from before opens nothing any more
    api_client.cookies.set("dashin_session", stolen)
    again = api_client.get("/console/jobs", follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"].startswith("/console/login")
    assert api_client.get("/api/v1/events").status_code == 401


def test_viewer_sees_no_action_buttons_and_cannot_post(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    manager = make_user()
    viewer = make_user(domain_name=manager.domain_name, role="viewer")
    source = make_source(engine, manager.domain_id)
    job = create_job(engine, manager.domain_id, source, moves=("start",))
    sign_in(api_client, email=viewer.email, password=PASSWORD)
    for path in ("/console/jobs", f"/console/jobs/{job}", "/console/sources"):
        page = api_client.get(path)
        assert page.status_code == 200, path
        assert "data-action=" not in page.text.replace('data-action="sign-out"', ""), path
    page = api_client.get(f"/console/jobs/{job}")
    answer = api_client.post(f"/console/jobs/{job}/pause", data={"csrf_token": _csrf(page.text)})
    assert answer.status_code == 403


def test_another_domains_job_is_404_and_never_listed(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    a, b = make_user(), make_user()
    a_job = create_job(engine, a.domain_id, make_source(engine, a.domain_id), moves=("start",))
    sign_in(api_client, email=b.email, password=PASSWORD)
    for path in (
        f"/console/jobs/{a_job}",
        f"/console/jobs/{a_job}/row",
        f"/console/jobs/{a_job}/summary",
        f"/console/jobs/{a_job}/errors.csv",
    ):
        assert api_client.get(path).status_code == 404, path
    assert str(a_job) not in api_client.get("/console/jobs").text
    page = api_client.get("/console/jobs")
    answer = api_client.post(
        f"/console/jobs/{a_job}/cancel",
        data={"csrf_token": _csrf(page.text)},
        headers={"HX-Request": "true"},
    )
    assert answer.status_code == 404
    assert api_client.get(f"/api/v1/jobs/{a_job}/logs/stream").status_code == 404


def test_domain_switcher(api_client: TestClient, make_user: MakeUser, engine: Engine) -> None:
    # Given a user who is a member of two domains, each with a job
    first = make_user()
    second = make_user(role="viewer")
    with Session(engine) as session, session.begin():
        tenancy_repo.add_membership(session, second.domain_id, first.user_id, "viewer")
    job_1 = create_job(engine, first.domain_id, make_source(engine, first.domain_id))
    job_2 = create_job(engine, second.domain_id, make_source(engine, second.domain_id))
    sign_in(api_client, email=first.email, password=PASSWORD)
    page = api_client.get("/console/jobs")
    assert str(job_1) in page.text and str(job_2) not in page.text
    assert second.domain_name in page.text  # offered in the switcher
    # When they switch to the second domain
    answer = api_client.post(
        "/console/domain",
        data={"csrf_token": _csrf(page.text), "domain_id": str(second.domain_id)},
        follow_redirects=False,
    )
    assert answer.status_code == 303
    # Then pages (and the cookie-authenticated streams) act there, with the role held there
    page = api_client.get("/console/jobs")
    assert str(job_2) in page.text and str(job_1) not in page.text
    assert 'data-action="start"' not in page.text  # a viewer in the second domain
    # And a domain they are not in cannot be switched to
    stranger = make_user()
    refused = api_client.post(
        "/console/domain",
        data={"csrf_token": _csrf(page.text), "domain_id": str(stranger.domain_id)},
    )
    assert refused.status_code == 404


def test_log_stream_accepts_the_session_cookie(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    """A browser's EventSource sends the cookie, not a bearer token."""
    user = make_user()
    job = create_job(engine, user.domain_id, make_source(engine, user.domain_id), moves=("start",))
    add_logs(engine, job, 3)
    move_job(engine, job, "cancel")
    sign_in(api_client, email=user.email, password=PASSWORD)
    with api_client.stream(
        "GET", f"/api/v1/jobs/{job}/logs/stream", headers={"Last-Event-ID": "2"}
    ) as response:
        assert response.status_code == 200
        events = take_until(read_events(response), lambda e: e.event == "end")
    seqs = [int(e.id or 0) for e in events if e.event == "log"]  # a missing id fails below
    assert seqs and seqs[0] == 3 and seqs == sorted(seqs)


@pytest.mark.parametrize("status", JOB_STATUSES)
def test_buttons_match_the_state_machine(status: str, engine: Engine, make_user: MakeUser) -> None:
    """`ACTIONS_FROM` (which buttons a status shows) agrees with what the moves accept."""
    user = make_user()
    source = make_source(engine, user.domain_id)
    path = {
        "pending": (),
        "queued": ("start",),
        "running": ("start", "acquire"),
        "pausing": ("start", "acquire", "pause"),
        "paused": ("start", "pause"),
        "cancelling": ("start", "acquire", "cancel"),
        "completed": ("start", "acquire", "complete"),
        "failed": ("start", "acquire", "fail"),
        "cancelled": ("cancel",),
    }[status]
    for action, allowed_from in ACTIONS_FROM.items():
        job = create_job(engine, user.domain_id, source, moves=path)
        with Session(engine) as session:
            try:
                getattr(job_states, action)(session, job)
                accepted = True
            except InvalidTransition:
                accepted = False
            session.rollback()
        assert accepted == (status in allowed_from), (action, status)


def test_static_vendor_files_are_served_with_licences(api_client: TestClient) -> None:
    for path in (
        "/console/static/vendor/htmx.min.js",
        "/console/static/vendor/htmx.LICENSE",
        "/console/static/vendor/uPlot.iife.min.js",
        "/console/static/vendor/uPlot.LICENSE",
        "/console/static/console.js",
    ):
        assert api_client.get(path).status_code == 200, path


def _admin_and_a_job_elsewhere(
    make_user: MakeUser, engine: Engine
) -> tuple[ApiUser, ApiUser, uuid.UUID]:
    """A platform admin (like `dashin up`'s bootstrap key's), and a job of a domain they are not
    a member of (like the demo's)."""
    admin = make_user(role="admin")
    elsewhere = make_user()
    job = create_job(engine, elsewhere.domain_id, make_source(engine, elsewhere.domain_id))
    return admin, elsewhere, job


def test_a_platform_admins_key_session_can_switch_to_any_domain(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    """`dashin up`'s bootstrap key is a platform admin's: the console must reach the demo domain."""
    admin, elsewhere, job = _admin_and_a_job_elsewhere(make_user, engine)
    sign_in(api_client, api_key=_api_key(engine, admin))
    page = api_client.get("/console/jobs")
    assert page.status_code == 200 and f'value="{elsewhere.domain_id}"' in page.text
    switched = api_client.post(
        "/console/domain",
        data={"csrf_token": _csrf(page.text), "domain_id": str(elsewhere.domain_id)},
    )
    assert switched.status_code == 200 and str(job) in switched.text
    assert 'data-action="start"' in switched.text  # an admin may act there


def test_sign_in_with_a_domain_starts_the_session_there(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    """`dashin up --demo` prints `/console/login?domain=demo.dashin.dev&next=…` for its key."""
    admin, elsewhere, job = _admin_and_a_job_elsewhere(make_user, engine)
    form = api_client.get(
        "/console/login",
        params={"domain": elsewhere.domain_name, "next": f"/console/jobs/{job}"},
    )
    assert f'name="domain" value="{elsewhere.domain_name}"' in form.text
    answer = api_client.post(
        "/console/login",
        data={
            "csrf_token": _csrf(form.text),
            "api_key": _api_key(engine, admin),
            "domain": elsewhere.domain_name,
            "next": f"/console/jobs/{job}",
        },
        follow_redirects=False,
    )
    assert answer.status_code == 303 and answer.headers["location"] == f"/console/jobs/{job}"
    page = api_client.get(f"/console/jobs/{job}")
    assert page.status_code == 200 and f'data-job-id="{job}"' in page.text
    # the session stays there: the live streams follow it
    assert f'<tr data-job-id="{job}"' in api_client.get("/console/jobs").text


def test_sign_in_with_a_domain_one_may_not_act_in_is_refused(
    api_client: TestClient, make_user: MakeUser, engine: Engine
) -> None:
    member = make_user()
    other = make_user()
    for fields in (
        {"email": member.email, "password": PASSWORD},
        {"api_key": _api_key(engine, member)},
    ):
        form = api_client.get("/console/login", params={"domain": other.domain_name})
        answer = api_client.post(
            "/console/login",
            data={"csrf_token": _csrf(form.text), "domain": other.domain_name, **fields},
            follow_redirects=False,
        )
        assert answer.status_code == 403, fields
        assert f"you cannot act in the domain {other.domain_name}" in answer.text
        # no session was left open: the console still asks to sign in
        assert api_client.get("/console/jobs", follow_redirects=False).status_code == 303
