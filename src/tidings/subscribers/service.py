"""Domain functions for subscribers: create, upsert (one or in bulk), read, list, update, delete."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.core.errors import AlreadyExistsError, NotFoundError, ValidationError
from tidings.core.limits import Limits
from tidings.core.pagination import Page, PageRequest, paginate, paginate_any
from tidings.preferences.documents import SubscriberPreference
from tidings.subscribers.commands import SubscriberFields, UpsertSubscriber
from tidings.subscribers.documents import Subscriber
from tidings.topics.documents import TopicSubscription


@dataclass(frozen=True, slots=True)
class BulkUpsertResult:
    created: list[str]
    updated: list[str]


def _check_data(fields: SubscriberFields, limits: Limits, prefix: str) -> None:
    if "data" not in fields.model_fields_set or not fields.data:
        return
    size = len(json.dumps(fields.data, default=str).encode())
    if size > limits.subscriber_data_bytes:
        raise ValidationError(
            f"data is {size} bytes; the limit is {limits.subscriber_data_bytes}", field=f"{prefix}.data"
        )
    _check_keys(fields.data, f"{prefix}.data")


def _check_keys(value: Any, path: str) -> None:
    """MongoDB reads keys starting with `$` as operators; refuse them rather than store something unqueryable."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key.startswith("$") or "\x00" in key:
                raise ValidationError(f"key {key!r} may not start with $ or contain NUL", field=path)
            _check_keys(item, path)
    elif isinstance(value, list):
        for item in value:
            _check_keys(item, path)


def _key(environment_id: PydanticObjectId, subscriber_id: str) -> dict[str, Any]:
    return {"environment_id": environment_id, "subscriber_id": subscriber_id}


def _upsert_update(command: UpsertSubscriber, now: Any) -> dict[str, Any]:
    return {"$set": {**command.changes(), "updated_at": now}, "$setOnInsert": {"created_at": now, "is_online": False}}


async def create_subscriber(environment_id: PydanticObjectId, command: UpsertSubscriber, limits: Limits) -> Subscriber:
    _check_data(command, limits, "input")
    subscriber = Subscriber(environment_id=environment_id, subscriber_id=command.subscriber_id, **command.changes())
    try:
        await subscriber.insert()
    except DuplicateKeyError:
        raise AlreadyExistsError(
            f"subscriber {command.subscriber_id!r} already exists", field="input.subscriberId"
        ) from None
    return subscriber


async def upsert_subscriber(
    environment_id: PydanticObjectId, command: UpsertSubscriber, limits: Limits
) -> tuple[Subscriber, bool]:
    """Create the subscriber or apply the sent fields to it, atomically; returns it and whether it was created."""
    _check_data(command, limits, "input")
    now = utcnow()
    raw = await Subscriber.get_pymongo_collection().find_one_and_update(
        _key(environment_id, command.subscriber_id),
        _upsert_update(command, now),
        upsert=True,
        return_document=ReturnDocument.AFTER,
    )
    subscriber = Subscriber.model_validate(raw)
    return subscriber, subscriber.created_at == now


async def bulk_upsert_subscribers(
    environment_id: PydanticObjectId, commands: Sequence[UpsertSubscriber], limits: Limits
) -> BulkUpsertResult:
    """Validate every item first (nothing is written if one is bad), then upsert all in one bulk write."""
    if not 1 <= len(commands) <= limits.bulk_upsert_max:
        raise ValidationError(f"send 1 to {limits.bulk_upsert_max} subscribers", field="input.subscribers")
    seen: set[str] = set()
    for index, command in enumerate(commands):
        if command.subscriber_id in seen:
            raise ValidationError(
                f"subscriber {command.subscriber_id!r} appears twice", field=f"input.subscribers.{index}.subscriberId"
            )
        seen.add(command.subscriber_id)
        _check_data(command, limits, f"input.subscribers.{index}")
    now = utcnow()
    operations = [
        UpdateOne(_key(environment_id, command.subscriber_id), _upsert_update(command, now), upsert=True)
        for command in commands
    ]
    result = await Subscriber.get_pymongo_collection().bulk_write(operations, ordered=False)
    created_indexes = set(result.upserted_ids or {})
    return BulkUpsertResult(
        created=[command.subscriber_id for index, command in enumerate(commands) if index in created_indexes],
        updated=[command.subscriber_id for index, command in enumerate(commands) if index not in created_indexes],
    )


async def get_subscriber(environment_id: PydanticObjectId, subscriber_id: str) -> Subscriber:
    subscriber = await Subscriber.find_one(_key(environment_id, subscriber_id))
    if subscriber is None:
        raise NotFoundError(f"subscriber {subscriber_id!r} not found", field="subscriberId")
    return subscriber


async def existing_subscriber_ids(environment_id: PydanticObjectId, subscriber_ids: Sequence[str]) -> set[str]:
    rows = Subscriber.get_pymongo_collection().find(
        {"environment_id": environment_id, "subscriber_id": {"$in": list(subscriber_ids)}}, {"subscriber_id": 1}
    )
    return {row["subscriber_id"] async for row in rows}


async def subscribers_by_id(environment_id: PydanticObjectId, subscriber_ids: Sequence[str]) -> dict[str, Subscriber]:
    found = await Subscriber.find(
        {"environment_id": environment_id, "subscriber_id": {"$in": list(subscriber_ids)}}
    ).to_list()
    return {subscriber.subscriber_id: subscriber for subscriber in found}


async def list_subscribers(
    environment_id: PydanticObjectId, request: PageRequest, search: str | None = None
) -> Page[Subscriber]:
    """Subscribers in creation order; `search` matches the start of the subscriberId or the email."""
    if not search:
        return await paginate(Subscriber.find({"environment_id": environment_id}), request)
    # A range, not an anchored regex, and a hint: SecantusDB's planner scans the collection for `^` regexes and for
    # a range next to the `_id` bound of the page; MongoDB plans both well and honours the hint just the same.
    prefix = {"$gte": search, "$lt": search[:-1] + chr(ord(search[-1]) + 1)}
    return await paginate_any(
        [
            Subscriber.find({"environment_id": environment_id, field: prefix}, hint=[("environment_id", 1), (field, 1)])
            for field in ("subscriber_id", "email")
        ],
        request,
    )


async def update_subscriber(
    environment_id: PydanticObjectId, subscriber_id: str, fields: SubscriberFields, limits: Limits
) -> Subscriber:
    _check_data(fields, limits, "input")
    raw = await Subscriber.get_pymongo_collection().find_one_and_update(
        _key(environment_id, subscriber_id),
        {"$set": {**fields.changes(), "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise NotFoundError(f"subscriber {subscriber_id!r} not found", field="subscriberId")
    updated: Subscriber = Subscriber.model_validate(raw)
    return updated


async def delete_subscriber(environment_id: PydanticObjectId, subscriber_id: str) -> None:
    """Delete the subscriber with its topic memberships and preferences."""
    deleted = await Subscriber.get_pymongo_collection().delete_one(_key(environment_id, subscriber_id))
    if deleted.deleted_count == 0:
        raise NotFoundError(f"subscriber {subscriber_id!r} not found", field="subscriberId")
    scope = _key(environment_id, subscriber_id)
    await TopicSubscription.get_pymongo_collection().delete_many(scope)
    await SubscriberPreference.get_pymongo_collection().delete_many(scope)
