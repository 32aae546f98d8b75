"""`generic_api`: leads from any JSON REST API, described declaratively instead of coded.

The configuration uses the vocabulary of declarative connector builders (url, method, params,
headers, body; auth none | bearer | api_key | basic; records at a dotted path; page, offset, cursor
or RFC 5988 link pagination; a field map from record paths to lead fields), so an operator can
point Dashin at a CRM or an in-house service without a code change.

Incremental sync: the data source's `sync_state` holds the newest updated-at value seen
(`updated_since`) and the ids of the records that carry exactly that value (`ids_at_since`). APIs
filter `updated_at >= since` or `> since`; either way, re-sent boundary records are skipped by id
and records that share the boundary timestamp are not lost.

A checkpoint holds the next `position` (page number, offset, cursor or link URL), the `since` and
`since_ids` this job filters with, the running `latest` / `latest_ids`, the number of records
`seen` and `done`, so a resumed job continues exactly after the page that carried it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

from connectors.base import (
    Checkpoint,
    CheckResult,
    Connector,
    Page,
    Progress,
    RateLimiter,
    RunContext,
)
from connectors.errors import BudgetExhausted, ConfigError, ConnectorError, TransientError
from connectors.kit import http
from connectors.providers.generic_api.config import CursorPagination as CursorPagination
from connectors.providers.generic_api.config import GenericApiConfig as GenericApiConfig
from connectors.providers.generic_api.config import GenericApiParams as GenericApiParams
from connectors.providers.generic_api.config import Incremental as Incremental
from connectors.providers.generic_api.config import LinkPagination as LinkPagination
from connectors.providers.generic_api.config import NoPagination as NoPagination
from connectors.providers.generic_api.config import OffsetPagination as OffsetPagination
from connectors.providers.generic_api.config import PagePagination as PagePagination
from connectors.providers.generic_api.config import Pagination as Pagination
from connectors.providers.generic_api.config import RateLimit as RateLimit
from connectors.providers.generic_api.config import build_client, request_parts
from connectors.providers.generic_api.jsonpath import (
    MISSING,
    get_path,
    order_key,
    read_fields,
    read_scalar,
)
from records import LEAD_FIELDS, LeadRecord, RecordError
from records.normalize import normalize_record

_MALFORMED_RETRIES = 3
_INCOMPLETE_RETRIES = 3
_MAX_IDS_AT_SINCE = 1000


def map_record(record: Any, config: GenericApiConfig, number: int) -> LeadRecord | RecordError:
    """One API record → a normalised lead, by the field map (same-named keys by default)."""
    if not isinstance(record, dict):
        message = "record is not a JSON object"
        return RecordError(code="not_an_object", message=message, record=number, raw=repr(record))
    values = read_fields(record, config.field_map or {name: name for name in LEAD_FIELDS})
    ext = read_scalar(record, config.external_id_path) if config.external_id_path else None
    return normalize_record(LeadRecord(external_id=ext, raw=record, **values))


@dataclass(frozen=True, slots=True)
class _Answer:
    body: Any
    records: Any  # a list, or MISSING when records_path does not resolve
    next_link: str | None
    requests: int = 1  # answered requests it took (a body that was not JSON is asked again)


class GenericApiConnector(Connector):
    type = "generic_api"
    Config = GenericApiConfig
    Params = GenericApiParams
    queue = "generic_api"

    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self._transport = transport  # a seam for tests (MockTransport)

    def check(self, config: GenericApiConfig) -> CheckResult:
        since = config.incremental.initial if config.incremental else None
        try:
            with build_client(config, self._transport) as client:
                answer = _fetch(client, config, None, since, ctx=None, limiter=None)
        except ConnectorError as exc:
            return CheckResult(ok=False, reason=exc.reason, message=str(exc))  # type: ignore[arg-type]
        if answer.records is MISSING:
            body = answer.body
            keys = sorted(body) if isinstance(body, dict) else type(body).__name__
            message = (
                f"records_path {config.records_path!r} not found in the response; body has {keys}"
            )
            return CheckResult(ok=False, reason="bad_config", message=message)
        mapped = [map_record(r, config, i) for i, r in enumerate(answer.records[:5], start=1)]
        return CheckResult(
            ok=True,
            message=f"connected; the first page has {len(answer.records)} record(s)",
            sample=[m for m in mapped if isinstance(m, LeadRecord)],
        )

    def pages(
        self,
        config: GenericApiConfig,
        params: GenericApiParams,
        checkpoint: Checkpoint,
        ctx: RunContext,
    ) -> Iterator[Page]:
        state = dict(checkpoint) if checkpoint and "position" in checkpoint else None
        state = state or _first_state(config, params, ctx.sync_state)
        if state["done"]:
            return
        limiter: RateLimiter | None = None
        if config.rate_limit is not None:
            rate = config.rate_limit
            limiter = ctx.rate_limiter("generic_api", rate.requests, rate.period_s)
        retries = 0
        # credits of answers not yet in a yielded page (a short page asked again is paid too)
        unbooked = 0
        with build_client(config, self._transport) as client:
            while not ctx.should_stop():
                _within_budget(config, ctx, int(state.get("credits", 0)) + unbooked)
                answer = _fetch(client, config, state["position"], state["since"], ctx, limiter)
                records = [] if answer.records is MISSING else list(answer.records)
                unbooked += _charged(config, answer, len(records))
                total = get_path(answer.body, config.total_path) if config.total_path else None
                total = total if isinstance(total, int) and not isinstance(total, bool) else None
                if _incomplete(config, total, int(state["seen"]), len(records)):
                    retries += 1
                    ctx.log.warning("generic_api.incomplete_page", seen=state["seen"], total=total)
                    if retries > _INCOMPLETE_RETRIES:
                        raise TransientError(
                            f"the API keeps answering short pages after {state['seen']} of "
                            f"{total} record(s)"
                        )
                    continue
                retries = 0
                page, state = _page(config, state, records, answer)
                if total is not None and state["seen"] >= total:
                    state["done"] = True
                if config.billing is not None:
                    state["credits"] = int(state.get("credits", 0)) + unbooked
                yield Page(
                    records=page[0],
                    errors=page[1],
                    checkpoint=dict(state),
                    progress=Progress(done=state["seen"], total=total),
                    sync_state=_sync_state(config, state, ctx.sync_state),
                    credits_used=unbooked,
                )
                unbooked = 0
                if state["done"]:
                    return


def _within_budget(config: GenericApiConfig, ctx: RunContext, spent: int) -> None:
    """Before a paid request: past the job's credit budget the job pauses (`BudgetExhausted`,
    resumed from this checkpoint once the budget is raised). Per-record charges are known only
    from the answer, so a page may take the job over its budget by that page's records."""
    billing, budget = config.billing, ctx.credit_budget
    if billing is None or budget is None:
        return
    if spent + max(1, billing.credits_per_request) <= budget:
        return
    ctx.log.warning(
        "generic_api.budget_exhausted",
        message=f"credit budget of {budget} spent ({spent} used): the job pauses",
        budget=budget,
        spent=spent,
    )
    raise BudgetExhausted(f"generic_api: the credit budget of {budget} is spent ({spent} used)")


def _charged(config: GenericApiConfig, answer: _Answer, records: int) -> int:
    """What one answer cost: what it says it charged, else the configured prices."""
    billing = config.billing
    if billing is None:
        return 0
    if billing.credits_path:
        said = get_path(answer.body, billing.credits_path, None)
        if isinstance(said, int) and not isinstance(said, bool) and said >= 0:
            return said
    return billing.credits_per_request * answer.requests + billing.credits_per_record * records


def _first_state(
    config: GenericApiConfig, params: GenericApiParams, sync_state: dict[str, Any]
) -> dict[str, Any]:
    since, ids = None, []
    if config.incremental is not None:
        since = config.incremental.initial
        if not params.full_refresh and sync_state.get("updated_since") is not None:
            since, ids = sync_state["updated_since"], list(sync_state.get("ids_at_since") or [])
    return {
        "position": None, "since": since, "since_ids": ids,
        "latest": since, "latest_ids": ids, "seen": 0, "done": False,
    }  # fmt: skip


def _page(
    config: GenericApiConfig, state: dict[str, Any], records: list[Any], answer: _Answer
) -> tuple[tuple[list[LeadRecord], list[RecordError]], dict[str, Any]]:
    """Map one page of records; the new state (checkpoint) that resumes after it."""
    leads: list[LeadRecord] = []
    errors: list[RecordError] = []
    since_key, since_ids = order_key(state["since"]), set(state["since_ids"])
    latest, latest_ids = state["latest"], list(state["latest_ids"])
    for number, record in enumerate(records, start=int(state["seen"]) + 1):
        if config.incremental is not None:
            value = get_path(record, config.incremental.updated_at_path)
            key, ext = order_key(value), _external_id(record, config)
            if since_ids and key == since_key and ext in since_ids:
                continue  # sent again by an API that filters `updated_at >= since`
            latest_key = order_key(latest)
            if key is not None and (latest_key is None or key > latest_key):
                latest, latest_ids = value, []
            if key is not None and key == order_key(latest) and ext is not None:
                latest_ids = [*latest_ids, ext][-_MAX_IDS_AT_SINCE:]
        mapped = map_record(record, config, number)
        (leads if isinstance(mapped, LeadRecord) else errors).append(mapped)  # type: ignore[arg-type]
    position, done = _next_position(config, state["position"], answer, len(records))
    new_state = {
        **state, "position": position, "latest": latest, "latest_ids": latest_ids,
        "seen": int(state["seen"]) + len(records), "done": done,
    }  # fmt: skip
    return (leads, errors), new_state


def _external_id(record: Any, config: GenericApiConfig) -> str | None:
    return read_scalar(record, config.external_id_path) if config.external_id_path else None


def _incomplete(config: GenericApiConfig, total: int | None, seen: int, count: int) -> bool:
    """An empty or short page although the API's total says more records follow."""
    if total is None or seen + count >= total:
        return False
    pag = config.pagination
    size = getattr(pag, "page_size", None) if not isinstance(pag, OffsetPagination) else None
    return count == 0 or (isinstance(size, int) and count < size)


def _sync_state(
    config: GenericApiConfig, state: dict[str, Any], previous: dict[str, Any]
) -> dict[str, Any] | None:
    if config.incremental is None or state["latest"] is None:
        return None
    return {**previous, "updated_since": state["latest"], "ids_at_since": state["latest_ids"]}


def _fetch(
    client: httpx.Client,
    config: GenericApiConfig,
    position: Any,
    since: Any,
    ctx: RunContext | None,
    limiter: RateLimiter | None,
) -> _Answer:
    url, body = request_parts(config, position, since)
    secrets = config.secret_values()
    # an API marked not idempotent is asked once: a second ask could be charged twice
    for attempt in range(1, (_MALFORMED_RETRIES if config.idempotent else 1) + 1):
        response = http.request(
            client,
            config.method,
            str(url),
            ctx=ctx,
            limiter=limiter,
            secrets=secrets,
            max_attempts=6 if ctx is not None else 2,
            idempotent=config.idempotent,
            json=body,
        )
        _raise_for_status(response, config)
        try:
            document = response.json()
        except ValueError:
            if ctx is not None:
                ctx.log.warning(
                    "generic_api.malformed_body", attempt=attempt, status=response.status_code
                )
            continue
        records = get_path(document, config.records_path, MISSING)
        if records is not MISSING and not isinstance(records, list):
            raise ConfigError(
                f"records_path {config.records_path!r} holds {type(records).__name__}, not a list"
            )
        return _Answer(document, records, _next_link(response, url, config), attempt)
    raise TransientError(f"the API answered with a body that is not JSON ({attempt} tries)")


def _next_link(
    response: httpx.Response, current: httpx.URL, config: GenericApiConfig
) -> str | None:
    """The next page's URL without secret query parameters.

    APIs repeat the whole query string in their `Link` header, the API key and secret parameters
    included; this URL becomes the checkpoint, its log line and what `GET /jobs` shows, so the
    secrets are cut here and `request_parts` adds them back from the credentials on each request.
    """
    link = response.links.get("next", {}).get("url")
    if not link:
        return None
    target = current.join(link)
    if (target.scheme, target.host, target.port) != (current.scheme, current.host, current.port):
        raise ConfigError(
            f"the next-page link points at another origin ({target.scheme}://{target.host}); "
            "refusing to send credentials there"
        )
    names = set(config.secret_params)
    if config.auth == "api_key" and config.api_key_in == "query":
        names.add(config.api_key_name)
    values = set(config.secret_values())
    kept = [(k, v) for k, v in target.params.multi_items() if k not in names and v not in values]
    return str(target.copy_with(params=kept))


def _next_position(
    config: GenericApiConfig, position: Any, answer: _Answer, count: int
) -> tuple[Any, bool]:
    """(next position, whether this was the last page)."""
    pag = config.pagination
    if isinstance(pag, PagePagination):
        current = pag.start_page if position is None else int(position)
        return current + 1, count < pag.page_size
    if isinstance(pag, OffsetPagination):
        return int(position or 0) + count, count < pag.limit
    if isinstance(pag, CursorPagination):
        token = get_path(answer.body, pag.cursor_path)
        token = None if token in (None, "") or isinstance(token, dict | list) else token
        return token, token is None or token == position
    if isinstance(pag, LinkPagination):
        return answer.next_link, answer.next_link is None
    return None, True


def _raise_for_status(response: httpx.Response, config: GenericApiConfig) -> None:
    """Answers the HTTP layer hands back unretried: redirects and other 4xx are config faults."""
    if response.is_success:
        return
    detail = response.text[:200].strip()
    for secret in config.secret_values():
        detail = detail.replace(secret, "***")
    if response.is_redirect:
        where = response.headers.get("Location", "?")
        raise ConfigError(f"the API redirects ({response.status_code}) to {where}: set url to it")
    if 400 <= response.status_code < 500:
        raise ConfigError(f"the API refused the request ({response.status_code}): {detail}")
    raise TransientError(f"the API answered {response.status_code}: {detail}")
