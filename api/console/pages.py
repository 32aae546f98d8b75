"""Overview (charts), schedules and leads: pages over the API's route functions and the
domain-scoped aggregates of `models.console_stats`."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from api import metrics
from api.console.auth import ConsoleUser, ConsoleUserDep, ManagerUserDep, WriterUserDep
from api.console.templating import flash, list_page, newest_first, page, refused
from api.deps import SessionDep, SettingsDep
from api.pagination import PageParams
from api.routes import leads as leads_api
from api.routes import schedules as schedules_api
from api.schemas.leads import BulkIn
from api.schemas.schedules import ScheduleUpdate
from models import campaigns_repo, console_stats, sources_repo
from models.campaigns import Campaign
from models.job_statuses import JOB_STATUSES
from models.leads import LEAD_STATUSES
from runtime.errors import DashinError
from runtime.logging import get_logger

router = APIRouter()
log = get_logger(__name__)
CHART_DAYS = 30


def _names(session: Session, user: ConsoleUser) -> dict[str, str]:
    query = sources_repo.list_sources_query(user.principal.domain_id)
    return {str(s.id): s.name for s in session.scalars(query)}


def _campaign_names(session: Session, user: ConsoleUser) -> dict[str, str]:
    """The domain's live campaigns by name, for the leads filter: all of them (a member too, as
    in `GET /campaigns`), or a limited viewer's clients' ones."""
    principal = user.principal
    query = campaigns_repo.campaigns_query(principal.domain_id, clients=principal.client_ids)
    query = query.order_by(Campaign.name)
    return {str(c.id): c.name for c in session.scalars(query.limit(500))}


def _series(counts: list[console_stats.DayCount], days: list[str]) -> dict[str, list[int]]:
    """{key: [count per day]} with zeros for the days without rows (uPlot wants aligned data)."""
    index = {d: i for i, d in enumerate(days)}
    series: dict[str, list[int]] = {}
    for row in counts:
        series.setdefault(row.key, [0] * len(days))[index[row.day.isoformat()]] += row.count
    return series


def live_workers() -> list[dict[str, Any]] | None:
    """Workers whose Dramatiq heartbeat (Redis `__heartbeats__`) is fresh; None when the broker
    keeps none (RabbitMQ) or cannot be reached."""
    from dramatiq.brokers.redis import RedisBroker

    from runtime.broker import get_broker

    try:
        broker = get_broker()
        if not isinstance(broker, RedisBroker):
            return None
        now_ms = time.time() * 1000
        since = now_ms - int(broker.heartbeat_timeout)
        rows = cast(
            list[tuple[bytes, float]],
            broker.client.zrangebyscore(
                f"{broker.namespace}:__heartbeats__", since, "+inf", withscores=True
            ),
        )
    except Exception as exc:  # a dashboard tile, not a reason to fail the page
        log.warning("console.workers_unavailable", error=str(exc))
        return None
    return [{"id": w.decode()[:8], "age_s": (now_ms - score) / 1000} for w, score in rows]


@router.get("", response_class=HTMLResponse)
def overview(request: Request, session: SessionDep, user: ConsoleUserDep) -> HTMLResponse:
    today = datetime.now(UTC).date()
    first = today - timedelta(days=CHART_DAYS - 1)
    days = [(first + timedelta(days=i)).isoformat() for i in range(CHART_DAYS)]
    since = datetime.combine(first, datetime.min.time(), UTC)
    domain = user.principal.domain_id
    names = _names(session, user)
    leads = _series(console_stats.leads_per_day_by_source(session, domain, since), days)
    errors = _series(console_stats.provider_errors_per_day(session, domain, since), days)
    by_status = console_stats.jobs_by_status(session, domain)
    try:
        depth: dict[str, int] | None = metrics.read_queue_depth([])
    except Exception as exc:  # the broker is down: say so on the tile
        log.warning("console.queue_depth_unavailable", error=str(exc))
        depth = None
    charts = {
        "days": days,
        "leads": {names.get(k, k[:8]): v for k, v in leads.items()},
        "errors": {"provider errors": errors.get("error", [0] * CHART_DAYS),
                   "429 rate limits": errors.get("429", [0] * CHART_DAYS)},
    }  # fmt: skip
    return page(
        request,
        "overview.html",
        user,
        nav="overview",
        charts_json=json.dumps(charts),
        by_status=[(s, by_status.get(s, 0)) for s in JOB_STATUSES],
        max_status=max(by_status.values(), default=0),
        depth=depth,
        workers=live_workers(),
        lead_total=sum(sum(v) for v in leads.values()),
    )


# --- schedules ------------------------------------------------------------------------------


@router.get("/schedules", response_class=HTMLResponse)
def schedules_page(
    request: Request, session: SessionDep, user: ConsoleUserDep, cursor: str | None = None
) -> HTMLResponse:
    listed = schedules_api.list_schedules(session, user.principal, newest_first(cursor))
    return list_page(request, user, "schedules", listed, sources=_names(session, user))


@router.post("/schedules/{schedule_id}/{toggle}")
def toggle_schedule(
    request: Request,
    schedule_id: uuid.UUID,
    toggle: Literal["enable", "disable"],
    session: SessionDep,
    user: ManagerUserDep,
) -> Response:
    """Enable or disable (the API's PATCH, manager only)."""
    try:
        schedules_api.update_schedule(
            schedule_id, ScheduleUpdate(enabled=toggle == "enable"), session, user.principal
        )
    except DashinError as exc:
        return refused(request, exc)
    return RedirectResponse("/console/schedules", status_code=303)


# --- leads ------------------------------------------------------------------------------------


@router.get("/leads", response_class=HTMLResponse)
def leads_page(
    request: Request,
    session: SessionDep,
    user: ConsoleUserDep,
    filters: leads_api.FilterDep,
    cursor: str | None = None,
) -> HTMLResponse:
    """The API's own list (its filters, its keyset cursor, its visibility rules by role)."""
    answer = leads_api.list_leads(
        user.principal, session, PageParams(cursor, 50, "-created_at", False), filters
    )
    listed = json.loads(bytes(answer.body))
    query = request.url.query
    params = "&".join(p for p in query.split("&") if p and not p.startswith("cursor="))
    return page(
        request,
        "leads.html",
        user,
        nav="leads",
        leads=listed["items"],
        next_cursor=listed.get("next_cursor"),
        filters=filters,
        query=params,
        statuses=LEAD_STATUSES,
        sources={} if user.limited else _names(session, user),  # sources have no client
        campaigns=_campaign_names(session, user),
    )


@router.get("/leads/export")
def export_leads(
    user: ConsoleUserDep, settings: SettingsDep, filters: leads_api.FilterDep
) -> Response:
    return leads_api.export_leads(user.principal, settings, filters)


@router.post("/leads/bulk", response_class=HTMLResponse)
def bulk_leads(
    request: Request,
    session: SessionDep,
    user: WriterUserDep,
    ids: Annotated[list[uuid.UUID], Form()],
    action: Annotated[Literal["update", "assign"], Form()],
    status: Annotated[str, Form()] = "",
    assignee_email: Annotated[str, Form()] = "",
) -> Response:
    """Bulk status change or assignment: the API's `POST /leads/bulk` (assign: managers)."""
    try:
        body: dict[str, Any] = {"action": action, "ids": ids}
        if action == "update":
            body["update"] = {"status": status}
        else:
            body["assign"] = {"email": assignee_email}
        result = leads_api.bulk(BulkIn.model_validate(body), user.principal, session)
    except (DashinError, ValueError) as exc:
        return refused(request, exc)
    return flash(request, 200, f"{result.succeeded} done, {result.failed} refused")
