"""A small client for the control API, used by the CLI commands that talk to a running stack.

It reads `DASHIN_API_URL` and `DASHIN_API_KEY` (or `.dashin/env`) through `runtime.settings`, so
a command run next to `dashin up` finds the API without flags. Errors are translated once, here:

    ApiError (DashinError)        the API answered a problem (RFC 9457): status, title, detail,
                                  field errors and `job_status`, rendered readably by `str()`
    ApiUnavailable (ApiError)     no answer at all (connection refused, timeout, dropped)

The SSE reader is a plain line parser over `httpx.stream`: no extra dependency, and the tests
can drive it through a proxy that cuts the connection.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, BinaryIO, ClassVar

import httpx

from runtime.errors import DashinError, ErrorKind

API_PREFIX = "/api/v1"


class ApiError(DashinError):
    """The API refused a request; `str()` is a readable one-paragraph explanation."""

    kind: ClassVar[ErrorKind] = "client"
    code = "api"

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        super().__init__(render_problem(status, problem))

    @property
    def job_status(self) -> str | None:
        value = self.problem.get("job_status")
        return str(value) if value is not None else None


class ApiUnavailable(ApiError):
    """The API did not answer (not running, wrong DASHIN_API_URL, connection dropped)."""

    kind = "transient"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(0, {"title": "API unreachable", "detail": f"{url}: {reason}"})


def render_problem(status: int, problem: Mapping[str, Any]) -> str:
    """`409 Conflict: cannot pause job … (job status: completed)` plus one line per field error."""
    title = str(problem.get("title") or "error")
    detail = str(problem.get("detail") or "")
    head = f"{status} {title}" if status else title
    text = f"{head}: {detail}" if detail and detail != title else head
    if problem.get("job_status"):
        text += f" (job status: {problem['job_status']})"
    for err in problem.get("errors") or []:
        if isinstance(err, Mapping):
            text += f"\n  {err.get('field') or '-'}: {err.get('message') or err.get('code')}"
    if status == 401:
        text += "\n  set DASHIN_API_KEY to a key printed by `dashin up` or made at /api-keys"
    return text


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: str
    id: str | None = None

    def json(self) -> Any:
        return json.loads(self.data)


@dataclass
class _SseParser:
    """Feeds lines in, yields complete events (a blank line ends one; `:` lines are comments)."""

    event: str = ""
    data: list[str] = field(default_factory=list)
    id: str | None = None

    def feed(self, line: str) -> SseEvent | None:
        if not line:
            if not self.data and not self.event:
                return None
            done = SseEvent(self.event or "message", "\n".join(self.data), self.id)
            self.event, self.data, self.id = "", [], None
            return done
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "event":
            self.event = value
        elif name == "data":
            self.data.append(value)
        elif name == "id":
            self.id = value
        return None


class ApiClient:
    """Synchronous JSON client; `domain` sets `Dashin-Domain` (id or name) on every request."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        *,
        domain: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "dashin-cli"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        if domain:
            headers["Dashin-Domain"] = domain
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=5.0),
            transport=transport,
            trust_env=False,
        )

    @classmethod
    def from_settings(cls, domain: str | None = None) -> ApiClient:
        from runtime.settings import get_settings

        settings = get_settings()
        key = settings.api_key.get_secret_value() if settings.api_key else None
        return cls(settings.api_url, key, domain=domain)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def set_token(self, token: str) -> None:
        self._http.headers["Authorization"] = f"Bearer {token}"

    def set_domain(self, domain: str) -> None:
        self._http.headers["Dashin-Domain"] = domain

    # -- requests ---------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """JSON of a 2xx answer (None for 204); ApiError for a problem, ApiUnavailable if none."""
        root = (API_PREFIX, "/healthz", "/readyz", "/metrics")
        url = path if path.startswith(root) else API_PREFIX + path
        try:
            response = self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.base_url, f"{type(exc).__name__}: {exc}") from exc
        return self._decode(response)

    @staticmethod
    def _decode(response: httpx.Response) -> Any:
        if response.is_success:
            if response.status_code == 204 or not response.content:
                return None
            return response.json()
        try:
            problem = response.json()
        except ValueError:
            problem = {"title": response.reason_phrase, "detail": response.text[:300]}
        if not isinstance(problem, Mapping):
            problem = {"title": response.reason_phrase, "detail": str(problem)[:300]}
        raise ApiError(response.status_code, problem)

    def get(self, path: str, **params: Any) -> Any:
        clean = {k: v for k, v in params.items() if v is not None}
        return self.request("GET", path, params=clean)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs["json"] = body
        return self.request("POST", path, **kwargs)

    def items(self, path: str, *, limit: int | None = None, **params: Any) -> Iterator[Any]:
        """Every item of a `{items, next_cursor}` list, following cursors (up to `limit`)."""
        seen = 0
        cursor: str | None = None
        while True:
            page = self.get(path, cursor=cursor, **params)
            for item in page["items"]:
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def download(self, path: str, out: BinaryIO, **params: Any) -> int:
        """Copy a streamed (non-JSON) answer into `out` chunk by chunk; the bytes written.
        No timeout between chunks beyond the usual read timeout: a big export streams."""
        clean = {k: v for k, v in params.items() if v is not None}
        written = 0
        try:
            with self._http.stream(
                "GET", API_PREFIX + path, params=clean, headers={"Accept": "*/*"}
            ) as response:
                if not response.is_success:
                    response.read()
                    self._decode(response)
                for chunk in response.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.base_url, f"{type(exc).__name__}: {exc}") from exc
        return written

    def stream(
        self, path: str, *, last_event_id: str | None = None, **params: Any
    ) -> Iterator[SseEvent]:
        """Server-Sent Events of one connection; a drop raises ApiUnavailable (caller resumes)."""
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = last_event_id
        clean = {k: v for k, v in params.items() if v is not None}
        parser = _SseParser()
        timeout = httpx.Timeout(60.0, connect=5.0)  # keep-alives arrive every 15 s
        try:
            with self._http.stream(
                "GET", API_PREFIX + path, params=clean, headers=headers, timeout=timeout
            ) as response:
                if not response.is_success:
                    response.read()
                    self._decode(response)
                for line in response.iter_lines():
                    event = parser.feed(line.rstrip("\r"))
                    if event is not None:
                        yield event
        except httpx.TransportError as exc:
            raise ApiUnavailable(self.base_url, f"{type(exc).__name__}: {exc}") from exc
