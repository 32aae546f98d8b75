"""Cursor pagination over (sort key, id), the list shape every collection answers with.

    ?page_size=50 (≤ 200)  &sort=-created_at  &cursor=<opaque>  &count=true
    → {"items": [...], "next_cursor": "..." | null, "total": 123 (only with count=true)}

The cursor is base64url JSON of the last row's sort value and id, plus the sort it belongs to:
keyset paging stays fast deep into a list and does not skip or repeat rows when rows are added
meanwhile. Sort keys must be NOT NULL columns (a row compare with NULL matches nothing).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import (
    BigInteger,
    Integer,
    Row,
    Select,
    SmallInteger,
    bindparam,
    func,
    select,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute, Session

from api.schemas.common import example_of
from runtime.errors import FieldError, ValidationFailed

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50

T = TypeVar("T")
R = TypeVar("R")


def _page_example(schema: dict[str, Any], page: type[Any]) -> None:
    """`Page[Item]`'s documented example: `Item`'s own example as the one item, and the cursor
    a next page would start after it; written once here rather than once per resource."""
    (item_model,) = page.__pydantic_generic_metadata__["args"] or (None,)
    if not (isinstance(item_model, type) and issubclass(item_model, BaseModel)):
        return
    item = example_of(item_model)
    if item is None:
        return
    cursor = None
    if isinstance(item.get("id"), str) and isinstance(item.get("created_at"), str):
        created_at = datetime.fromisoformat(item["created_at"])
        cursor = _encode("-created_at", created_at, uuid.UUID(item["id"]))
    schema["examples"] = [{"items": [item], "next_cursor": cursor}]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_example)

    items: list[T]
    next_cursor: str | None = None
    total: int | None = Field(
        default=None,
        exclude_if=lambda value: value is None,
        description="The exact number of matching rows; only with `?count=true`.",
    )


@dataclass(frozen=True)
class PageParams:
    cursor: str | None
    page_size: int
    sort: str | None
    count: bool


async def page_params(
    cursor: Annotated[str | None, Query(description="`next_cursor` of the previous page")] = None,
    page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = DEFAULT_PAGE_SIZE,
    sort: Annotated[
        str | None, Query(description="A field, `-` first for descending: `-created_at`")
    ] = None,
    count: Annotated[bool, Query(description="Also answer the exact `total`")] = False,
) -> PageParams:
    """`async`: no I/O, so FastAPI calls it in the event loop, not in a worker thread."""
    return PageParams(cursor=cursor, page_size=page_size, sort=sort, count=count)


PageParamsDep = Annotated[PageParams, Depends(page_params)]


@dataclass(frozen=True)
class RowsPage(Generic[R]):
    rows: list[R]
    next_cursor: str | None
    total: int | None

    def to_page(self, items: Sequence[T]) -> Page[T]:
        return Page[T](items=list(items), next_cursor=self.next_cursor, total=self.total)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(message, [FieldError(field=field, code="invalid", message=message)])


def _encode(sort: str, value: Any, row_id: uuid.UUID) -> str:
    if isinstance(value, datetime):
        value = value.isoformat()
    raw = json.dumps({"s": sort, "v": value, "i": str(row_id)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode(cursor: str, sort: str, column: InstrumentedAttribute[Any]) -> tuple[Any, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if data["s"] != sort:
            raise _invalid("cursor", "the cursor belongs to another sort order")
        return _typed(data["v"], column), uuid.UUID(str(data["i"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _invalid("cursor", "the cursor is not one this list issued") from exc


# SmallInteger and BigInteger are Integer subclasses: most specific first
_INT_BOUNDS = ((SmallInteger, 2**15), (BigInteger, 2**63), (Integer, 2**31))


def _typed(value: Any, column: InstrumentedAttribute[Any]) -> Any:
    """The cursor's sort value as its column holds it, else ValueError: a cursor comes back from
    the client, and a value of another type, out of the column's range or with a NUL would
    otherwise reach PostgreSQL and fail there as a server error (issue 14, M4)."""
    kind = column.type.python_type
    if kind is datetime and isinstance(value, str):
        return datetime.fromisoformat(value)
    if kind is int and type(value) is int:
        bound = next(b for t, b in _INT_BOUNDS if isinstance(column.type, t))
        if -bound <= value < bound:
            return value
    if kind is str and isinstance(value, str) and "\x00" not in value:
        value.encode("utf-8")  # a lone surrogate: UnicodeEncodeError, a ValueError
        return value
    raise ValueError(f"not a {kind.__name__} of the sort column")


def paginate(
    session: Session,
    query: Select[R],
    params: PageParams,
    *,
    sortable: Mapping[str, InstrumentedAttribute[Any]],
    id_column: InstrumentedAttribute[uuid.UUID],
    default_sort: str = "-created_at",
) -> RowsPage[R]:
    """One page of `query` (a select of ORM rows having `id_column` and the sort columns)."""
    return _page(session, query, params, sortable, id_column, default_sort, tuples=False)


def paginate_rows(
    session: Session,
    query: Select[*tuple[Any, ...]],
    params: PageParams,
    *,
    sortable: Mapping[str, InstrumentedAttribute[Any]],
    id_column: InstrumentedAttribute[uuid.UUID],
    default_sort: str = "-created_at",
    binds: Mapping[str, Any] | None = None,
) -> RowsPage[Row[*tuple[Any, ...]]]:
    """`paginate` for a select of plain columns (including `id_column` and the sort columns,
    by their names): rows instead of ORM instances, for lists where loading costs the most.

    `binds` given (`{}` for none) says `query` is built once and reused (the caller caches it
    per shape; it may hold named bind parameters, valued by `binds`): the page statement
    derived from it is then reused too, so SQLAlchemy neither rebuilds it nor recomputes its
    cache key (~0.3 ms per request). Without `binds` it is built per request."""
    return _page(
        session, query, params, sortable, id_column, default_sort, tuples=True, binds=binds
    )


def _page(
    session: Session,
    query: Select[Any],
    params: PageParams,
    sortable: Mapping[str, InstrumentedAttribute[Any]],
    id_column: InstrumentedAttribute[uuid.UUID],
    default_sort: str,
    *,
    tuples: bool,
    binds: Mapping[str, Any] | None = None,
) -> RowsPage[Any]:
    sort = params.sort or default_sort
    name = sort.removeprefix("-")
    column = sortable.get(name)
    if column is None:
        raise _invalid("sort", f"sort by one of: {', '.join(sorted(sortable))}")
    descending = sort.startswith("-")
    total = None
    if params.count:
        counted = select(func.count()).select_from(query.order_by(None).subquery())
        total = session.scalar(counted, dict(binds or {}))
    values = {**(binds or {}), "page_limit": params.page_size + 1}
    if params.cursor:
        values["after_value"], values["after_id"] = _decode(params.cursor, sort, column)
    keyset = _keyset if binds is None else _reused_keyset
    statement = keyset(query, column, id_column, descending, bool(params.cursor))
    # Rows go through the session's connection: `Session.execute` would run the ORM result
    # machinery over a select whose WHERE names ORM attributes, for rows holding no entity.
    rows: list[Any] = list(
        session.connection().execute(statement, values).all()
        if tuples
        else session.scalars(statement, values)
    )
    next_cursor = None
    if len(rows) > params.page_size:
        rows = rows[: params.page_size]
        last = rows[-1]
        next_cursor = _encode(sort, getattr(last, column.key), getattr(last, id_column.key))
    return RowsPage(rows=rows, next_cursor=next_cursor, total=total)


def _keyset(
    query: Select[Any],
    column: InstrumentedAttribute[Any],
    id_column: InstrumentedAttribute[uuid.UUID],
    descending: bool,
    after: bool,
) -> Select[Any]:
    """`query` in keyset order, limited by `page_limit`, after (`after_value`, `after_id`):
    values are parameters, so for a reused `query` the statement can be reused too."""
    if after:
        key = tuple_(column, id_column)
        last = tuple_(
            bindparam("after_value", type_=column.type), bindparam("after_id", type_=id_column.type)
        )
        query = query.where(key < last if descending else key > last)
    order = (column.desc(), id_column.desc()) if descending else (column.asc(), id_column.asc())
    return query.order_by(*order).limit(bindparam("page_limit", type_=Integer()))


#: `_keyset` per query object (statements hash by identity) and shape, for reused queries.
_reused_keyset = lru_cache(maxsize=512)(_keyset)
