"""Relay-style connections shared by every list in the API."""

from collections.abc import Callable

import strawberry

from tidings.core.pagination import Page


@strawberry.type
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class Edge[T]:
    cursor: str
    node: T


@strawberry.type
class Connection[T]:
    edges: list[Edge[T]]
    page_info: PageInfo


def to_connection[S, T](page: Page[S], mapper: Callable[[S], T]) -> Connection[T]:
    return Connection(
        edges=[Edge(cursor=cursor, node=mapper(item)) for item, cursor in zip(page.items, page.cursors, strict=True)],
        page_info=PageInfo(has_next_page=page.has_next_page, end_cursor=page.end_cursor),
    )
