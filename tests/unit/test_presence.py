"""Presence without Redis: reading a subscriber must not fail for it, and the backend's own flag still counts."""

from __future__ import annotations

from beanie import PydanticObjectId
from redis.asyncio import Redis

from tidings.inbox.presence import is_online, online_among
from tidings.subscribers.documents import Subscriber


async def test_without_redis_only_the_backend_flag_counts() -> None:
    environment_id = PydanticObjectId()
    # Port 9 (discard) has no Redis: every command fails to connect.
    redis = Redis.from_url("redis://127.0.0.1:9", socket_connect_timeout=1)
    try:
        marked = Subscriber.model_construct(environment_id=environment_id, subscriber_id="marked", is_online=True)
        other = Subscriber.model_construct(environment_id=environment_id, subscriber_id="other", is_online=False)
        assert await online_among(redis, environment_id, [marked, other]) == {"marked"}
        assert await is_online(redis, environment_id, "other") is False
        assert await is_online(redis, environment_id, "marked", marked=True) is True
    finally:
        await redis.aclose()
