"""Domain functions for subscribers: create, upsert (one or in bulk), read, list, update, delete."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import ReturnDocument, UpdateOne
from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.core.errors import AlreadyExistsError, NotFoundError, UnavailableError, ValidationError
from tidings.core.limits import Limits
from tidings.core.pagination import COUNT_CAP, Count, Page, PageRequest, count_up_to, paginate, paginate_any
from tidings.preferences.documents import SubscriberPreference
from tidings.subscribers.commands import SubscriberFields, UpsertSubscriber
from tidings.subscribers.documents import Subscriber
from tidings.topics.documents import TopicSubscription

# Attempts of an upsert that lost a race to create the same record: the retry finds it and updates it.
UPSERT_ATTEMPTS = 5
MAX_SEARCH_LENGTH = 256
_MAX_CODE_POINT = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


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


def _upsert_update(command: UpsertSubscriber, now: Any, new_id: ObjectId | None = None) -> dict[str, Any]:
    on_insert: dict[str, Any] = {"created_at": now, "is_online": False}
    if new_id is not None:
        on_insert["_id"] = new_id
    return {"$set": {**command.changes(), "updated_at": now}, "$setOnInsert": on_insert}


def check_bulk_size(count: int, limits: Limits) -> None:
    """Before anything else looks at the items: validating 100,000 of them costs seconds of CPU."""
    if not 1 <= count <= limits.bulk_upsert_max:
        raise ValidationError(f"send 1 to {limits.bulk_upsert_max} subscribers", field="input.subscribers")


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
    # Each attempt offers its own `_id` for the insert: the record was created by this call exactly when it carries
    # one of them (two calls in the same millisecond would both see their `created_at`).
    offered: list[ObjectId] = []
    for _ in range(UPSERT_ATTEMPTS):
        offered.append(ObjectId())
        try:
            raw = await Subscriber.get_pymongo_collection().find_one_and_update(
                _key(environment_id, command.subscriber_id),
                _upsert_update(command, utcnow(), offered[-1]),
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:
            continue  # MongoDB: a parallel upsert inserted it first; the retry updates it
        if raw is None:
            continue  # SecantusDB answers some parallel upserts with nothing; the retry updates the record
        subscriber = Subscriber.model_validate(raw)
        return subscriber, subscriber.id in offered
    raise UnavailableError(f"subscriber {command.subscriber_id!r} changed too often to upsert; try again")


async def bulk_upsert_subscribers(
    environment_id: PydanticObjectId, commands: Sequence[UpsertSubscriber], limits: Limits
) -> BulkUpsertResult:
    """Validate every item first (nothing is written if one is bad), then upsert all in one bulk write."""
    check_bulk_size(len(commands), limits)
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


async def subscriber_object_ids(
    environment_id: PydanticObjectId, subscriber_ids: Sequence[str]
) -> dict[str, PydanticObjectId]:
    """The database id of each subscriber that exists: it tells a subscriber from one re-created with its id."""
    rows = Subscriber.get_pymongo_collection().find(
        {"environment_id": environment_id, "subscriber_id": {"$in": list(subscriber_ids)}}, {"subscriber_id": 1}
    )
    return {row["subscriber_id"]: row["_id"] async for row in rows}


async def still_existing(environment_id: PydanticObjectId, object_ids: Sequence[ObjectId]) -> set[ObjectId]:
    """Which of these subscriber records were not deleted (by database id, so a re-created one does not count)."""
    rows = Subscriber.get_pymongo_collection().find(
        {"environment_id": environment_id, "_id": {"$in": list(object_ids)}}, {"_id": 1}
    )
    return {row["_id"] async for row in rows}


async def subscribers_by_id(environment_id: PydanticObjectId, subscriber_ids: Sequence[str]) -> dict[str, Subscriber]:
    found = await Subscriber.find(
        {"environment_id": environment_id, "subscriber_id": {"$in": list(subscriber_ids)}}
    ).to_list()
    return {subscriber.subscriber_id: subscriber for subscriber in found}


def prefix_range(prefix: str) -> dict[str, str]:
    """The strings starting with `prefix`, as a range an index serves: [prefix, prefix with its last character
    incremented). A last character that cannot be incremented (U+10FFFF) is dropped and the one before it taken."""
    for end in range(len(prefix), 0, -1):
        code = ord(prefix[end - 1]) + 1
        if code in _SURROGATES:
            code = _SURROGATES.stop  # BSON strings are UTF-8, which has no surrogates
        if code <= _MAX_CODE_POINT:
            return {"$gte": prefix, "$lt": prefix[: end - 1] + chr(code)}
    return {"$gte": prefix}


def _check_search(search: str) -> str:
    if len(search) > MAX_SEARCH_LENGTH:
        raise ValidationError(f"search is at most {MAX_SEARCH_LENGTH} characters", field="search")
    try:
        search.encode()
    except UnicodeEncodeError:
        raise ValidationError("search must be valid Unicode text", field="search") from None
    return search


async def list_subscribers(
    environment_id: PydanticObjectId, request: PageRequest, search: str | None = None
) -> Page[Subscriber]:
    """Subscribers in creation order; `search` matches the start of the subscriberId, or of the email in any case."""
    if not search:
        return await paginate(Subscriber.find({"environment_id": environment_id}), request)
    _check_search(search)
    # A range, not an anchored regex, and a hint: SecantusDB's planner scans the collection for `^` regexes and for
    # a range next to the `_id` bound of the page; MongoDB plans both well and honours the hint just the same.
    return await paginate_any(
        [
            Subscriber.find(
                {"environment_id": environment_id, field: prefix_range(value)},
                hint=[("environment_id", 1), (field, 1)],
            )
            for field, value in (("subscriber_id", search), ("email_lower", search.lower()))
        ],
        request,
    )


async def subscribers_at(environment_id: PydanticObjectId, page: int, size: int) -> tuple[list[Subscriber], bool]:
    """Page `page` (from 0) of `size` subscribers in creation order, and whether more follow: numbered pages for
    Novu's v1 list, up to `COUNT_CAP` subscribers deep (`list_subscribers` pages any depth by cursor)."""
    if page * size >= COUNT_CAP:
        raise ValidationError(
            f"numbered pages reach the first {COUNT_CAP} subscribers; page with a cursor beyond", field="page"
        )
    found = (
        await Subscriber.find({"environment_id": environment_id})
        .sort("_id")
        .skip(page * size)
        .limit(size + 1)
        .to_list()
    )
    # The page past the deepest one is refused, so the deepest one does not promise more.
    return found[:size], len(found) > size and (page + 1) * size < COUNT_CAP


async def set_online(environment_id: PydanticObjectId, subscriber_id: str, online: bool) -> Subscriber:
    """Mark the subscriber online or offline from the backend (Novu's online status): it counts as online with this
    flag or with an inbox websocket open; going offline stamps `last_online_at`."""
    changes: dict[str, Any] = {"is_online": online}
    if not online:
        changes["last_online_at"] = utcnow()
    return await apply_update(environment_id, subscriber_id, {"$set": changes})


async def count_subscribers(environment_id: PydanticObjectId, search: str | None = None) -> Count:
    """How many subscribers `list_subscribers` would page through (up to `COUNT_CAP`)."""
    query: dict[str, Any] = {"environment_id": environment_id}
    if search:
        _check_search(search)
        query["$or"] = [{"subscriber_id": prefix_range(search)}, {"email_lower": prefix_range(search.lower())}]
    return await count_up_to(Subscriber, query)


async def update_subscriber(
    environment_id: PydanticObjectId, subscriber_id: str, fields: SubscriberFields, limits: Limits
) -> Subscriber:
    _check_data(fields, limits, "input")
    return await apply_update(environment_id, subscriber_id, {"$set": {**fields.changes(), "updated_at": utcnow()}})


async def apply_update(environment_id: PydanticObjectId, subscriber_id: str, update: dict[str, Any]) -> Subscriber:
    """Apply a MongoDB update to the subscriber and return it as it is afterwards."""
    raw = await Subscriber.get_pymongo_collection().find_one_and_update(
        _key(environment_id, subscriber_id), update, return_document=ReturnDocument.AFTER
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


async def erase_subscriber_record(environment_id: PydanticObjectId, subscriber_id: str) -> dict[str, int]:
    """The subscriber, its topic memberships and its preferences, deleted without complaint when already gone (an
    erasure that is run again finishes what an interrupted one left); how many of each."""
    scope = _key(environment_id, subscriber_id)
    subscribers = await Subscriber.get_pymongo_collection().delete_one(scope)
    topics = await TopicSubscription.get_pymongo_collection().delete_many(scope)
    preferences = await SubscriberPreference.get_pymongo_collection().delete_many(scope)
    return {
        "subscribers": subscribers.deleted_count,
        "topic_subscriptions": topics.deleted_count,
        "preferences": preferences.deleted_count,
    }
