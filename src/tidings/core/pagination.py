"""Keyset (cursor) pagination: pages follow `_id` order, so page N costs the same as page 1 (no skip/offset)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from beanie import Document, SortDirection
from beanie.odm.queries.find import FindMany
from bson import ObjectId
from bson.errors import InvalidId

from tidings.core.errors import ValidationError

_PREFIX = "c1:"


def encode_cursor(object_id: ObjectId) -> str:
    return base64.urlsafe_b64encode((_PREFIX + str(object_id)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> ObjectId:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(_PREFIX):
            raise ValueError(raw)
        return ObjectId(raw.removeprefix(_PREFIX))
    except (ValueError, UnicodeDecodeError, binascii.Error, InvalidId):
        raise ValidationError("not a cursor returned by this API", field="after") from None


# Counts beside a page stop here: a count reads every match (Novu caps its list counts too).
COUNT_CAP = 50_000


@dataclass(frozen=True, slots=True)
class Count:
    count: int
    capped: bool  # more than `count` match: counting stopped there


async def count_up_to[D: Document](document: type[D], query: dict[str, Any], cap: int = COUNT_CAP) -> Count:
    counted = await document.get_pymongo_collection().count_documents(query, limit=cap + 1)
    return Count(count=min(counted, cap), capped=counted > cap)


@dataclass(frozen=True, slots=True)
class PageRequest:
    first: int
    after: ObjectId | None = None

    @classmethod
    def parse(cls, first: int | None, after: str | None, *, default: int, maximum: int) -> PageRequest:
        size = default if first is None else first
        if not 1 <= size <= maximum:
            raise ValidationError(f"first must be between 1 and {maximum}", field="first")
        return cls(first=size, after=None if after is None else decode_cursor(after))


@dataclass(frozen=True, slots=True)
class Page[T]:
    items: list[T]
    cursors: list[str]
    has_next_page: bool

    @property
    def end_cursor(self) -> str | None:
        return self.cursors[-1] if self.cursors else None


async def paginate[D: Document](
    query: FindMany[D], request: PageRequest, id_field: str = "_id", *, descending: bool = False
) -> Page[D]:
    """One page of `query` in `id_field` (an ObjectId) order, ascending unless `descending` (newest first);
    fetches one extra row to know if more exist."""
    if request.after is not None:
        query = query.find({id_field: {"$lt" if descending else "$gt": request.after}})
    direction = SortDirection.DESCENDING if descending else SortDirection.ASCENDING
    rows = await query.sort((id_field, direction)).limit(request.first + 1).to_list()
    more = len(rows) > request.first
    rows = rows[: request.first]
    return Page(items=rows, cursors=[encode_cursor(_key(row, id_field)) for row in rows], has_next_page=more)


async def paginate_any[D: Document](queries: list[FindMany[D]], request: PageRequest) -> Page[D]:
    """One page of the union of `queries` in `_id` order: each is planned on its own index (servers differ in how
    well they plan an `$or`), then the pages are merged."""
    pages = [await paginate(query, request) for query in queries]
    merged = sorted({_key(row, "_id"): row for page in pages for row in page.items}.items())
    rows = [row for _, row in merged[: request.first]]
    more = len(merged) > request.first or any(page.has_next_page for page in pages)
    return Page(items=rows, cursors=[encode_cursor(_key(row, "_id")) for row in rows], has_next_page=more)


def _key(row: Any, id_field: str) -> ObjectId:
    value = row.id if id_field == "_id" else getattr(row, id_field)
    assert isinstance(value, ObjectId)
    return value
