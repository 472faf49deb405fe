"""Inbox events go out on Redis pub/sub (`tidings.inbox.events.Publisher`)."""

from __future__ import annotations

from redis.asyncio import Redis


class RedisPublisher:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    async def publish(self, channel: str, message: str) -> None:
        await self.redis.publish(channel, message)
