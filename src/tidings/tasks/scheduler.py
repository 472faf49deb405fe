"""The scheduler: one leader at a time, elected by a Redis lock that expires unless renewed.

Any number of scheduler processes may run; only the holder of the lock acts on each tick. A leader that dies
stops renewing, the lock expires after its TTL, and another process takes over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Awaitable, Callable

from prometheus_client import Gauge
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

LEADER_KEY = "tidings:scheduler:leader"
# Followers keep the last values the leader's work set (they were leaders once): dashboards select the leader's.
LEADER = Gauge("tidings_scheduler_leader", "1 while this scheduler process holds the leader lock, else 0")

# Renew or take the lock only if we hold it or nobody does; compare-and-set in one round trip.
_ACQUIRE_OR_RENEW = """
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

type Tick = Callable[[], Awaitable[None]]


class LeaderLock:
    def __init__(self, redis: Redis, ttl_seconds: float, key: str = LEADER_KEY) -> None:
        self.redis = redis
        self.key = key
        self.ttl_ms = int(ttl_seconds * 1000)
        self.token = secrets.token_hex(16)

    async def acquire_or_renew(self) -> bool:
        result = await self.redis.eval(_ACQUIRE_OR_RENEW, 1, self.key, self.token, str(self.ttl_ms))
        return bool(result)

    async def release(self) -> None:
        await self.redis.eval(_RELEASE, 1, self.key, self.token)


async def run_scheduler(lock: LeaderLock, tick: Tick, tick_seconds: float, stop: asyncio.Event) -> None:
    """Tick while leader until `stop` is set; a Redis outage makes us a follower until it is back."""
    leading = False
    reachable = True
    try:
        while not stop.is_set():
            try:
                now_leading = await lock.acquire_or_renew()
                if not reachable:
                    logger.info("scheduler reaches Redis again")
                reachable = True
            except RedisError as exc:
                if reachable:  # once per outage, not once per tick
                    logger.warning("scheduler cannot reach Redis, following until it is back: %s", exc)
                reachable = False
                now_leading = False
            if now_leading != leading:
                logger.info("scheduler %s leadership", "took" if now_leading else "lost")
                leading = now_leading
                LEADER.set(int(leading))
            if leading:
                try:
                    await tick()
                except PyMongoError as exc:
                    # A primary election or a network blip: what the tick did not do is still due in MongoDB and
                    # the next tick does it; the leader stays (its lock is in Redis).
                    logger.warning("scheduler tick failed, retrying next tick: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=tick_seconds)
    finally:
        LEADER.set(0)
        if leading:
            try:
                await lock.release()
            except RedisError:
                logger.warning("could not release the leader lock; it expires by itself")
