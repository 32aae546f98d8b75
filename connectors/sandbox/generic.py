"""A configurable generic REST API emulator for the declarative `generic_api` connector.

`GET` (or `POST` with a JSON object body whose keys act as parameters) `emu.path`, default
`/v1/contacts`. Every attribute below may be changed at runtime:

* `records_path` (`"data.items"`): where the list sits in the body; `meta` holds `total` (and
  `next_cursor` for cursor paging).
* `pagination`: `page` (`page` from `first_page`, `size`; stop on a short page), `offset`
  (`offset`, `limit`), `cursor` (`cursor`, `limit`; next token at `meta.next_cursor`, null at the
  end; the token is opaque and remembers `updated_since`), `link` (`page`, `size`; RFC 5988
  `Link: <...>; rel="next"` while more remain). Sizes are 1..`max_page_size` (100) else 400
  (choice: no silent clamping); default `default_page_size` (20).
* `auth`: `none`, `bearer` (`token`), `api_key_header` (`api_key_name`: `X-API-Key`),
  `api_key_query` (`api_key_param`: `api_key`), `basic` (`username`, `password`); failure ->
  401 `{"error": "unauthorized"}`.
* `updated_since` (ISO 8601 or epoch seconds): only records with `updated_at >= since`.
  Record `i` is updated at `UPDATED_BASE + 60 * i` seconds, so records are in `updated_at`
  order; `add_records(n)` appends newer ones.

Records are nested on purpose (`job.title`, `company.domain`, `location.country`) to exercise
field maps. 429s carry `Retry-After`. Page faults number pages `offset // size + 1`; a `huge`
page carries its padding in a top-level `padding` string.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlencode

from connectors.sandbox.dataset import Dataset, Person
from connectors.sandbox.server import (
    Emulator,
    Reject,
    Request,
    Response,
    apply_page_fault,
    json_response,
    malformed_response,
)

Pagination = Literal["page", "offset", "cursor", "link"]
AuthStyle = Literal["none", "bearer", "api_key_header", "api_key_query", "basic"]
UPDATED_BASE = 1_735_689_600  # 2025-01-01T00:00:00Z
UPDATE_STEP_S = 60


def _bad(message: str) -> Reject:
    return Reject(json_response(400, {"error": message}))


class GenericEmulator(Emulator):
    name = "generic"

    def __init__(
        self,
        *,
        records: int = 1000,
        seed: int = 0,
        path: str = "/v1/contacts",
        records_path: str = "data.items",
        pagination: Pagination = "page",
        auth: AuthStyle = "bearer",
        token: str = "generic-test-token",
        api_key_name: str = "X-API-Key",
        api_key_param: str = "api_key",
        username: str = "generic-user",
        password: str = "generic-pass",
        first_page: int = 1,
        default_page_size: int = 20,
        max_page_size: int = 100,
        port: int = 0,
        latency_ms: float = 0.0,
        rate_limit: tuple[int, float] | str | None = None,
    ) -> None:
        super().__init__(port=port, latency_ms=latency_ms, rate_limit=rate_limit)
        self.dataset = Dataset(records, seed)
        self.path = path
        self.records_path = records_path
        self.pagination: Pagination = pagination
        self.auth: AuthStyle = auth
        self.token = token
        self.api_key_name = api_key_name
        self.api_key_param = api_key_param
        self.username = username
        self.password = password
        self.first_page = first_page
        self.default_page_size = default_page_size
        self.max_page_size = max_page_size

    def failure(self, req: Request, status: int, message: str) -> Response:
        return json_response(status, {"error": "unauthorized" if status == 401 else message})

    @property
    def path(self) -> str:
        return self._path

    @path.setter
    def path(self, value: str) -> None:
        self._path = value
        self.routes = {("GET", value): self._list, ("POST", value): self._list}

    def add_records(self, count: int) -> None:
        """Append `count` records, updated after every existing one."""
        self.dataset.size += count

    # -- auth -------------------------------------------------------------------------------
    def _authorised(self, req: Request) -> bool:
        header = req.header("authorization") or ""
        if self.auth == "none":
            return True
        if self.auth == "bearer":
            return header == f"Bearer {self.token}"
        if self.auth == "api_key_header":
            return req.header(self.api_key_name) == self.token
        if self.auth == "api_key_query":
            return req.arg(self.api_key_param) == self.token
        expected = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        return header == f"Basic {expected}"

    # -- the list endpoint ------------------------------------------------------------------
    def _list(self, req: Request) -> Response:
        if not self._authorised(req):
            challenge = {"bearer": "Bearer", "basic": 'Basic realm="sandbox"'}.get(self.auth)
            www = {"WWW-Authenticate": challenge} if challenge else {}
            return json_response(401, {"error": "unauthorized"}, www)
        params = _params(req)
        offset, size, page, since = self._position(params)
        first = max(0, math.ceil((since - UPDATED_BASE) / UPDATE_STEP_S)) if since else 0
        total = max(0, self.dataset.size - first)
        stop = min(offset + size, total)
        indices = list(range(first + offset, first + stop)) if offset < stop else []
        fault = self.faults.take_page_fault(page)
        records = apply_page_fault(fault, indices)
        if records is None:
            return malformed_response()
        items = [_record(self.dataset.person(i)) for i in records]
        meta: dict[str, Any] = {"total": total}
        headers: dict[str, str] = {}
        more = stop < total
        if self.pagination == "cursor":
            meta["next_cursor"] = _cursor(stop, since) if more else None
        elif self.pagination == "link" and more:
            query = {k: v for k, v in params.items() if k not in ("page", "size")}
            query |= {"page": str(page + self.first_page), "size": str(size)}
            headers["Link"] = f'<{self.url}{self.path}?{urlencode(query)}>; rel="next"'
        body: dict[str, Any] = {"meta": meta}
        if fault is not None and fault.kind == "huge":
            body["padding"] = "x" * fault.keep
        _put(body, self.records_path, items)
        return json_response(200, body, headers)

    def _position(self, params: dict[str, str]) -> tuple[int, int, int, float | None]:
        """(offset, size, 1-based page number, updated_since) for this request."""
        since = _since(params.get("updated_since"))
        style = self.pagination
        size_name = "size" if style in ("page", "link") else "limit"
        size = _int(params.get(size_name, str(self.default_page_size)), size_name)
        if not 1 <= size <= self.max_page_size:
            raise _bad(f"{size_name} must be between 1 and {self.max_page_size}")
        if style in ("page", "link"):
            page = _int(params.get("page", str(self.first_page)), "page") - self.first_page
            if page < 0:
                raise _bad(f"page starts at {self.first_page}")
            offset = page * size
        elif style == "offset":
            offset = _int(params.get("offset", "0"), "offset")
        else:
            offset = 0
            if token := params.get("cursor"):
                offset, cursor_since = _uncursor(token)
                if since is not None and cursor_since != since:
                    raise _bad("the cursor belongs to another updated_since")
                since = cursor_since
        return offset, size, offset // size + 1, since


def _params(req: Request) -> dict[str, str]:
    params = {k: v[0] for k, v in req.query.items()}
    if req.method == "POST" and req.body.strip():
        try:
            body = req.json()
        except ValueError:
            raise _bad("malformed JSON body") from None
        if not isinstance(body, dict):
            raise _bad("the body must be a JSON object")
        params |= {k: str(v) for k, v in body.items() if v is not None}
    return params


def _int(value: str, name: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise _bad(f"{name} must be an integer") from None
    if number < 0:
        raise _bad(f"{name} must not be negative")
    return number


def _since(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _bad("updated_since must be ISO 8601 or epoch seconds") from None
    if parsed.tzinfo is None:
        raise _bad("updated_since needs a time zone")
    return parsed.timestamp()


def _cursor(offset: int, since: float | None) -> str:
    raw = json.dumps({"o": offset, "s": since}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _uncursor(token: str) -> tuple[int, float | None]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(data["o"]), data["s"]
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise _bad("invalid cursor") from None


def _put(body: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    node = body
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value


def _record(p: Person) -> dict[str, Any]:
    updated = UPDATED_BASE + UPDATE_STEP_S * p.index
    return {
        "id": f"c_{p.index}",
        "first_name": p.first_name,
        "last_name": p.last_name,
        "email": p.email,
        "phone": p.phone,
        "linkedin": p.linkedin_url,
        "job": {"title": p.title.title, "seniority": p.title.seniority},
        "company": {
            "name": p.company.name,
            "domain": p.company.domain,
            "size": p.company.employees,
            "industry": p.company.industry,
        },
        "location": {
            "city": p.location.city,
            "state": p.location.state,
            "country": p.location.country,
        },
        "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(updated)),
    }
