"""Bulk inserts where a duplicate key means "already there", the idempotent writes of fan-out and re-runs."""

from __future__ import annotations

from collections.abc import Awaitable

from pymongo.errors import BulkWriteError

DUPLICATE_KEY = 11000


async def refused_as_duplicates(insert: Awaitable[object]) -> set[int]:
    """Awaits an unordered `insert_many`; returns the positions it refused because their unique key exists (in the
    collection or earlier in the same batch). Any other write error is raised."""
    try:
        await insert
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(error.get("code") != DUPLICATE_KEY for error in errors):
            raise
        return {int(error["index"]) for error in errors}
    return set()
