"""Domain functions for topics and their subscribers."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.core.errors import AlreadyExistsError, NotFoundError, UnavailableError, ValidationError
from tidings.core.inserts import refused_as_duplicates
from tidings.core.limits import Limits
from tidings.core.pagination import Count, Page, PageRequest, count_up_to, paginate
from tidings.subscribers.commands import is_subscriber_id
from tidings.subscribers.documents import Subscriber
from tidings.subscribers.service import get_subscriber, still_existing, subscriber_object_ids, subscribers_by_id
from tidings.topics.documents import Topic, TopicSubscription

_KEY = re.compile(r"^[A-Za-z0-9_.:@-]{1,128}$")
_MAX_NAME = 256
_UPSERT_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class MembershipChange:
    """What adding or removing subscribers did, per subscriber id."""

    changed: list[str]
    unchanged: list[str]
    not_found: list[str]


def _check_key(key: str, field: str) -> str:
    if not _KEY.match(key):
        raise ValidationError("a topic key is 1 to 128 letters, digits, or _ . : @ -", field=field)
    return key


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > _MAX_NAME:
        raise ValidationError(f"name must be 1 to {_MAX_NAME} characters", field="input.name")
    return name


def _scope(environment_id: PydanticObjectId, key: str) -> dict[str, Any]:
    return {"environment_id": environment_id, "key": key}


async def create_topic(environment_id: PydanticObjectId, key: str, name: str) -> Topic:
    topic = Topic(environment_id=environment_id, key=_check_key(key, "input.key"), name=_check_name(name))
    try:
        await topic.insert()
    except DuplicateKeyError:
        raise AlreadyExistsError(f"topic {key!r} already exists", field="input.key") from None
    return topic


async def upsert_topic(environment_id: PydanticObjectId, key: str, name: str | None) -> tuple[Topic, bool]:
    """Create the topic, or rename it when it exists and `name` is given; returns it and whether it was created.
    Without a name a new topic is named by its key."""
    _check_key(key, "input.key")
    now = utcnow()
    update: dict[str, Any] = {"$setOnInsert": {"created_at": now, "_id": PydanticObjectId()}}
    if name is not None:
        update["$set"] = {"name": _check_name(name), "updated_at": now}
    else:
        update["$setOnInsert"] |= {"name": key, "updated_at": now}
    offered = update["$setOnInsert"]["_id"]
    for _ in range(_UPSERT_ATTEMPTS):
        try:
            raw = await Topic.get_pymongo_collection().find_one_and_update(
                _scope(environment_id, key), update, upsert=True, return_document=ReturnDocument.AFTER
            )
        except DuplicateKeyError:
            continue  # a parallel upsert inserted it first; the retry updates it
        if raw is not None:
            topic: Topic = Topic.model_validate(raw)
            return topic, topic.id == offered
    raise UnavailableError(f"topic {key!r} changed too often to upsert; try again")


async def get_topic(environment_id: PydanticObjectId, key: str) -> Topic:
    topic = await Topic.find_one(_scope(environment_id, key))
    if topic is None:
        raise NotFoundError(f"topic {key!r} not found", field="key")
    return topic


async def list_topics(environment_id: PydanticObjectId, request: PageRequest) -> Page[Topic]:
    return await paginate(Topic.find({"environment_id": environment_id}), request)


async def count_topics(environment_id: PydanticObjectId) -> Count:
    return await count_up_to(Topic, {"environment_id": environment_id})


async def rename_topic(environment_id: PydanticObjectId, key: str, name: str) -> Topic:
    raw = await Topic.get_pymongo_collection().find_one_and_update(
        _scope(environment_id, key),
        {"$set": {"name": _check_name(name), "updated_at": utcnow()}},
        return_document=ReturnDocument.AFTER,
    )
    if raw is None:
        raise NotFoundError(f"topic {key!r} not found", field="key")
    renamed: Topic = Topic.model_validate(raw)
    return renamed


async def delete_topic(environment_id: PydanticObjectId, key: str) -> None:
    deleted = await Topic.get_pymongo_collection().delete_one(_scope(environment_id, key))
    if deleted.deleted_count == 0:
        raise NotFoundError(f"topic {key!r} not found", field="key")
    await TopicSubscription.get_pymongo_collection().delete_many({"environment_id": environment_id, "topic_key": key})


def _check_batch(subscriber_ids: Sequence[str], limits: Limits) -> list[str]:
    if not 1 <= len(subscriber_ids) <= limits.topic_subscribers_per_call:
        raise ValidationError(
            f"send 1 to {limits.topic_subscribers_per_call} subscriber ids", field="input.subscriberIds"
        )
    for index, subscriber_id in enumerate(subscriber_ids):
        if not is_subscriber_id(subscriber_id):
            raise ValidationError(
                "a subscriberId is 1 to 128 characters without control characters",
                field=f"input.subscriberIds.{index}",
            )
    return list(dict.fromkeys(subscriber_ids))  # de-duplicated, order kept


async def add_subscribers(
    environment_id: PydanticObjectId, key: str, subscriber_ids: Sequence[str], limits: Limits
) -> MembershipChange:
    """Add existing subscribers; unknown ids are reported, members already in the topic are left as they are."""
    wanted = _check_batch(subscriber_ids, limits)
    topic = await get_topic(environment_id, key)
    existing = await subscriber_object_ids(environment_id, wanted)
    to_add = [subscriber_id for subscriber_id in wanted if subscriber_id in existing]
    duplicates: set[str] = set()
    rows = [
        TopicSubscription(id=PydanticObjectId(), environment_id=environment_id, topic_key=key, subscriber_id=one)
        for one in to_add
    ]
    if rows:
        refused = await refused_as_duplicates(TopicSubscription.insert_many(rows, ordered=False))
        duplicates = {to_add[index] for index in refused}
    written = [row for row in rows if row.subscriber_id not in duplicates]
    gone = await _drop_orphans(environment_id, topic, written, existing)
    return MembershipChange(
        changed=[one for one in to_add if one not in duplicates and one not in gone],
        unchanged=[one for one in to_add if one in duplicates],
        not_found=[one for one in wanted if one not in existing or one in gone],
    )


async def _drop_orphans(
    environment_id: PydanticObjectId,
    topic: Topic,
    written: list[TopicSubscription],
    existing: dict[str, PydanticObjectId],
) -> set[str]:
    """Delete the memberships just written whose topic or subscriber was deleted since it was read.

    `delete_topic` and `delete_subscriber` remove memberships after the record, so a membership written between
    the two is theirs to remove, and one written after is ours: checking again after the write leaves no orphan.
    Records are compared by database id, so a topic or subscriber re-created meanwhile does not inherit them.
    Returns the subscriber ids whose membership was dropped; NOT_FOUND if the topic itself went.
    """
    if not written:
        return set()
    # By key, then compared: SecantusDB scans the collection for a filter on key and `_id` together.
    now = await Topic.get_pymongo_collection().find_one(_scope(environment_id, topic.key), {"_id": 1})
    topic_alive = now is not None and now["_id"] == topic.id
    if not topic_alive:
        orphans = written
    else:
        alive = await still_existing(environment_id, [existing[row.subscriber_id] for row in written])
        orphans = [row for row in written if existing[row.subscriber_id] not in alive]
    if orphans:
        await TopicSubscription.get_pymongo_collection().delete_many(
            {"environment_id": environment_id, "topic_key": topic.key, "_id": {"$in": [row.id for row in orphans]}}
        )
    if not topic_alive:
        raise NotFoundError(f"topic {topic.key!r} not found", field="key")
    return {row.subscriber_id for row in orphans}


async def remove_subscribers(
    environment_id: PydanticObjectId, key: str, subscriber_ids: Sequence[str], limits: Limits
) -> MembershipChange:
    wanted = _check_batch(subscriber_ids, limits)
    await get_topic(environment_id, key)
    scope = {"environment_id": environment_id, "topic_key": key, "subscriber_id": {"$in": wanted}}
    members = {row["subscriber_id"] async for row in TopicSubscription.get_pymongo_collection().find(scope)}
    await TopicSubscription.get_pymongo_collection().delete_many(scope)
    return MembershipChange(
        changed=[subscriber_id for subscriber_id in wanted if subscriber_id in members],
        unchanged=[],
        not_found=[subscriber_id for subscriber_id in wanted if subscriber_id not in members],
    )


async def list_topic_subscribers(environment_id: PydanticObjectId, key: str, request: PageRequest) -> Page[Subscriber]:
    """A topic's subscribers in the order they joined; the cursor is the membership's."""
    await get_topic(environment_id, key)
    members = await paginate(TopicSubscription.find({"environment_id": environment_id, "topic_key": key}), request)
    found = await subscribers_by_id(environment_id, [member.subscriber_id for member in members.items])
    return _joined(members, lambda member: found.get(member.subscriber_id))


async def topic_memberships(
    environment_id: PydanticObjectId, key: str, subscriber_ids: Sequence[str]
) -> list[TopicSubscription]:
    """The memberships of these subscribers in the topic (those that exist)."""
    return await TopicSubscription.find(
        {"environment_id": environment_id, "topic_key": key, "subscriber_id": {"$in": list(subscriber_ids)}}
    ).to_list()


async def get_membership(environment_id: PydanticObjectId, key: str, subscriber_id: str) -> TopicSubscription:
    await get_topic(environment_id, key)
    found = await TopicSubscription.find_one(
        {"environment_id": environment_id, "topic_key": key, "subscriber_id": subscriber_id}
    )
    if found is None:
        raise NotFoundError(f"subscriber {subscriber_id!r} is not in topic {key!r}", field="subscriberId")
    return found


async def list_topic_memberships(
    environment_id: PydanticObjectId, key: str, request: PageRequest
) -> tuple[Topic, Page[TopicSubscription], dict[str, Subscriber], Count]:
    """The topic, a page of its memberships in the order they were made, their subscribers, and how many there
    are."""
    topic = await get_topic(environment_id, key)
    scope = {"environment_id": environment_id, "topic_key": key}
    members = await paginate(TopicSubscription.find(scope), request)
    found = await subscribers_by_id(environment_id, [member.subscriber_id for member in members.items])
    return topic, members, found, await count_up_to(TopicSubscription, scope)


async def list_subscriber_topics(
    environment_id: PydanticObjectId, subscriber_id: str, request: PageRequest
) -> Page[Topic]:
    """The topics a subscriber belongs to, in the order it joined them."""
    await get_subscriber(environment_id, subscriber_id)
    scope = {"environment_id": environment_id, "subscriber_id": subscriber_id}
    members, by_key = await _memberships_with_topics(environment_id, scope, request)
    return _joined(members, lambda member: by_key.get(member.topic_key))


async def list_subscriber_memberships(
    environment_id: PydanticObjectId, subscriber_id: str, request: PageRequest, topic_key: str | None = None
) -> tuple[Subscriber, Page[TopicSubscription], dict[str, Topic], Count]:
    """The subscriber, a page of its memberships in the order it joined (of `topic_key` only, if given), their
    topics, and how many there are."""
    subscriber = await get_subscriber(environment_id, subscriber_id)
    scope: dict[str, Any] = {"environment_id": environment_id, "subscriber_id": subscriber_id}
    if topic_key is not None:
        scope["topic_key"] = topic_key
    members, by_key = await _memberships_with_topics(environment_id, scope, request)
    return subscriber, members, by_key, await count_up_to(TopicSubscription, scope)


async def _memberships_with_topics(
    environment_id: PydanticObjectId, scope: dict[str, Any], request: PageRequest
) -> tuple[Page[TopicSubscription], dict[str, Topic]]:
    members = await paginate(TopicSubscription.find(scope), request)
    topics = await Topic.find(
        {"environment_id": environment_id, "key": {"$in": [member.topic_key for member in members.items]}}
    ).to_list()
    return members, {topic.key: topic for topic in topics}


def _joined[T](members: Page[TopicSubscription], lookup: Callable[[TopicSubscription], T | None]) -> Page[T]:
    """Swap each membership for what it points to; a row deleted meanwhile drops out with its cursor."""
    pairs = [
        (found, cursor)
        for member, cursor in zip(members.items, members.cursors, strict=True)
        if (found := lookup(member))
    ]
    return Page(
        items=[found for found, _ in pairs],
        cursors=[cursor for _, cursor in pairs],
        has_next_page=members.has_next_page,
    )
