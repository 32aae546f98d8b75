"""Overview (charts), schedules and leads: read-mostly pages over the API's route functions."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.console.auth import ConsoleUserDep
from api.console.templating import page

router = APIRouter()


@router.get("", response_class=HTMLResponse)
def overview(request: Request, user: ConsoleUserDep) -> HTMLResponse:
    return page(request, "overview.html", user, nav="overview")
