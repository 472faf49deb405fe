"""Whether a subscriber is online: marked so by the backend (the stored `is_online`, Novu's online status), or with
an inbox websocket open on any API process, kept in Redis.

Each connection is a member of the subscriber's sorted set, scored by when it stops counting; the process that
holds it pushes that time forward while it is open. A process that dies stops doing so, and its connections stop
counting after `ttl` with nobody cleaning up. `lastOnlineAt` is written to MongoDB at connect and disconnect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from beanie import PydanticObjectId
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tidings.core.clock import utcnow
from tidings.subscribers.documents import Subscriber

logger = logging.getLogger(__name__)


def presence_key(environment_id: PydanticObjectId, subscriber_id: str) -> str:
    return f"tidings:presence:{environment_id}:{subscriber_id}"


async def _stamp(environment_id: PydanticObjectId, subscriber_id: str) -> None:
    await Subscriber.get_pymongo_collection().update_one(
        {"environment_id": environment_id, "subscriber_id": subscriber_id},
        {"$set": {"last_online_at": utcnow()}},
    )


async def connected(
    redis: Redis, environment_id: PydanticObjectId, subscriber_id: str, connection_id: str, ttl: float
) -> None:
    key = presence_key(environment_id, subscriber_id)
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zadd(key, {connection_id: time.time() + ttl})
        pipe.expire(key, int(ttl * 2) + 1)
        await pipe.execute()
    await _stamp(environment_id, subscriber_id)


async def refresh(redis: Redis, connections: Iterable[tuple[str, PydanticObjectId, str]], ttl: float) -> None:
    until = time.time() + ttl
    async with redis.pipeline(transaction=False) as pipe:
        for connection_id, environment_id, subscriber_id in connections:
            key = presence_key(environment_id, subscriber_id)
            pipe.zadd(key, {connection_id: until})
            pipe.expire(key, int(ttl * 2) + 1)
        await pipe.execute()


async def disconnected(redis: Redis, environment_id: PydanticObjectId, subscriber_id: str, connection_id: str) -> None:
    key = presence_key(environment_id, subscriber_id)
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        pipe.zrem(key, connection_id)
        pipe.zremrangebyscore(key, "-inf", now)
        await pipe.execute()
    await _stamp(environment_id, subscriber_id)


async def is_online(redis: Redis, environment_id: PydanticObjectId, subscriber_id: str, marked: bool = False) -> bool:
    return marked or subscriber_id in await _with_inbox_open(redis, environment_id, [subscriber_id])


async def online_among(redis: Redis, environment_id: PydanticObjectId, subscribers: Sequence[Subscriber]) -> set[str]:
    """Which of these subscribers are online, in one round trip to Redis."""
    marked = {subscriber.subscriber_id for subscriber in subscribers if subscriber.is_online}
    others = [subscriber.subscriber_id for subscriber in subscribers if not subscriber.is_online]
    return marked | await _with_inbox_open(redis, environment_id, others)


async def _with_inbox_open(redis: Redis, environment_id: PydanticObjectId, subscriber_ids: Sequence[str]) -> set[str]:
    """Those with an open inbox connection. Without Redis none count: reading a subscriber must not fail for it."""
    if not subscriber_ids:
        return set()
    now = time.time()
    try:
        async with redis.pipeline(transaction=False) as pipe:
            for subscriber_id in subscriber_ids:
                pipe.zcount(presence_key(environment_id, subscriber_id), now, "+inf")
            counts = await pipe.execute()
    except (RedisError, OSError) as exc:
        logger.warning("presence unknown, Redis failed: %s", exc)
        return set()
    return {subscriber_id for subscriber_id, count in zip(subscriber_ids, counts, strict=True) if int(count) > 0}


async def forget(redis: Redis, environment_id: PydanticObjectId, subscriber_id: str) -> None:
    """Drop the subscriber's presence (erasure): its open connections stop counting at once."""
    await redis.delete(presence_key(environment_id, subscriber_id))
