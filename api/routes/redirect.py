"""The public short-link redirect: `GET /r/{code}` → 302 to the link's `full_url`.

The click is recorded after the response has gone out (a background task with its own
session), so a slow or busy database never delays the visitor. Stored per click: time,
referrer, browser family and the country a CDN header names (`CF-IPCountry`,
`CloudFront-Viewer-Country`, `X-Country-Code`); never the IP address or the raw User-Agent.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Header
from fastapi.responses import RedirectResponse
from sqlalchemy.orm import Session

from api.deps import SessionDep, SettingsDep
from api.problems import problem_responses
from models import links_repo
from runtime.db import get_engine
from runtime.errors import NotFound

router = APIRouter(tags=["links"])


def _record(
    url: str, link_id: uuid.UUID, referrer: str | None, ua: str | None, country: str | None
) -> None:
    with Session(get_engine(url)) as session, session.begin():
        links_repo.record_click(session, link_id, referrer=referrer, user_agent=ua, country=country)


@router.get("/r/{code}", status_code=302, responses=problem_responses(404))
def redirect(
    code: str,
    session: SessionDep,
    settings: SettingsDep,
    background: BackgroundTasks,
    referer: Annotated[str | None, Header()] = None,
    user_agent: Annotated[str | None, Header()] = None,
    cf_ipcountry: Annotated[str | None, Header()] = None,
    cloudfront_viewer_country: Annotated[str | None, Header()] = None,
    x_country_code: Annotated[str | None, Header()] = None,
) -> RedirectResponse:
    """Public: no credentials. Unknown or deleted codes answer 404."""
    found = links_repo.resolve_code(session, code[:32])
    if found is None:
        raise NotFound("no such link")
    link_id, full_url = found
    country = cf_ipcountry or cloudfront_viewer_country or x_country_code
    background.add_task(
        _record, settings.require_database_url(), link_id, referer, user_agent, country
    )
    return RedirectResponse(full_url, status_code=302, headers={"Cache-Control": "no-store"})
