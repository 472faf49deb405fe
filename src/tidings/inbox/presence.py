"""Whether a subscriber is online: its open websocket connections, across every API process, kept in Redis.

Each connection is a member of the subscriber's sorted set, scored by when it stops counting; the process that
holds it pushes that time forward while it is open. A process that dies stops doing so, and its connections stop
counting after `ttl` with nobody cleaning up. `lastOnlineAt` is written to MongoDB at connect and disconnect.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from beanie import PydanticObjectId
from redis.asyncio import Redis

from tidings.core.clock import utcnow
from tidings.subscribers.documents import Subscriber


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


async def is_online(redis: Redis, environment_id: PydanticObjectId, subscriber_id: str) -> bool:
    return int(await redis.zcount(presence_key(environment_id, subscriber_id), time.time(), "+inf")) > 0


async def online_among(redis: Redis, environment_id: PydanticObjectId, subscriber_ids: Iterable[str]) -> set[str]:
    """Which of these subscribers have an inbox websocket open, in one round trip."""
    wanted = list(subscriber_ids)
    if not wanted:
        return set()
    now = time.time()
    async with redis.pipeline(transaction=False) as pipe:
        for subscriber_id in wanted:
            pipe.zcount(presence_key(environment_id, subscriber_id), now, "+inf")
        counts = await pipe.execute()
    return {subscriber_id for subscriber_id, count in zip(wanted, counts, strict=True) if int(count) > 0}


async def forget(redis: Redis, environment_id: PydanticObjectId, subscriber_id: str) -> None:
    """Drop the subscriber's presence (erasure): its open connections stop counting at once."""
    await redis.delete(presence_key(environment_id, subscriber_id))
