"""Per-environment rate limits: token buckets in Redis, shared by every API process (DESIGN §5).

A bucket holds up to `burst` tokens and refills at `per_second`; a call takes `cost` tokens or is refused with the
seconds after which it would pass. One Lua script reads, refills and takes every bucket a call needs, atomically, on
Redis' clock (so API processes with skewed clocks agree), and takes nothing unless all of them have enough: a refused
call costs nothing. Keys expire once a bucket would be full again, so idle environments leave nothing behind.

Availability over strictness: when Redis cannot be reached the call is let through and a warning is logged (at most
every `_WARN_EVERY_SECONDS`), since refusing every trigger while Redis restarts would be an outage of its own.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from redis.asyncio import Redis
from redis.exceptions import RedisError

from tidings.core.errors import RateLimitedError

logger = logging.getLogger(__name__)

_WARN_EVERY_SECONDS = 10.0
KEY_PREFIX = "tidings:rate"

# KEYS: the buckets. ARGV[1]: now in seconds ('' = Redis' clock); then per bucket: per_second, burst, cost.
# Returns {1 if taken else 0, seconds until the refused call would pass (as a string: Lua numbers become integers)}.
_TAKE = """
local now = tonumber(ARGV[1])
if now == nil then
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
end
local levels, stamps, wait = {}, {}, 0
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local state = redis.call('HMGET', key, 'tokens', 'at')
  local level, at = tonumber(state[1]) or burst, tonumber(state[2]) or now
  if now > at then
    level = math.min(burst, level + (now - at) * rate)
    at = now
  end
  levels[i], stamps[i] = level, at
  if level < cost then wait = math.max(wait, (cost - level) / rate) end
end
for i, key in ipairs(KEYS) do
  local rate, burst, cost = tonumber(ARGV[3 * i - 1]), tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1])
  local level = levels[i]
  if wait == 0 then level = level - cost end
  redis.call('HSET', key, 'tokens', tostring(level), 'at', tostring(stamps[i]))
  redis.call('PEXPIRE', key, math.ceil((burst - level) / rate * 1000) + 1000)
end
if wait == 0 then return {1, '0'} end
return {0, tostring(wait)}
"""


class RateClass(StrEnum):
    """What a call spends: triggers, configuration changes, or inbox sessions opened from browsers."""

    TRIGGER = "trigger"
    CONFIG = "config"
    INBOX_SESSION = "inbox_session"


@dataclass(frozen=True, slots=True)
class Rate:
    """`per_second` tokens refill a bucket of `burst`; a rate of 0 means unlimited."""

    per_second: float
    burst: int

    @property
    def unlimited(self) -> bool:
        return self.per_second <= 0


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    wait_seconds: float

    @property
    def retry_after(self) -> int:
        """Whole seconds for a `Retry-After` header: rounded up, at least 1."""
        return max(1, math.ceil(self.wait_seconds))


class RateLimiter:
    def __init__(self, redis: Redis, rates: Mapping[RateClass, Rate]) -> None:
        self._redis = redis
        self._rates = dict(rates)
        self._script = redis.register_script(_TAKE)
        self._warned_at = -math.inf

    def rate(self, rate_class: RateClass) -> Rate:
        return self._rates.get(rate_class, Rate(0, 1))

    async def take(self, environment_id: str, rate_class: RateClass, cost: int = 1) -> None:
        """Spend `cost` tokens of one of the environment's buckets, or raise RateLimitedError."""
        await self.take_all(environment_id, {rate_class: cost})

    async def take_all(self, environment_id: str, costs: Mapping[RateClass, int]) -> None:
        """Spend from several buckets at once (an operation with a trigger and a config change), all or nothing."""
        decision = await self.decide(environment_id, costs)
        if not decision.allowed:
            raise RateLimitedError(
                f"rate limit of this environment reached; retry after {decision.retry_after} s",
                retry_after=decision.retry_after,
            )

    async def decide(
        self, environment_id: str, costs: Mapping[RateClass, int], *, now: float | None = None
    ) -> Decision:
        """The decision without raising; `now` (seconds) replaces Redis' clock, for tests of the bucket arithmetic."""
        keys: list[str] = []
        args: list[str | float | int] = ["" if now is None else repr(now)]
        for rate_class, cost in costs.items():
            rate = self.rate(rate_class)
            if rate.unlimited or cost <= 0:
                continue
            keys.append(f"{KEY_PREFIX}:{environment_id}:{rate_class.value}")
            # A call larger than the burst could never pass; it takes a full bucket instead.
            args.extend([repr(float(rate.per_second)), rate.burst, min(cost, rate.burst)])
        if not keys:
            return Decision(allowed=True, wait_seconds=0.0)
        try:
            taken, wait = await self._script(keys=keys, args=args)
        except (RedisError, OSError) as error:
            self._warn(error)
            return Decision(allowed=True, wait_seconds=0.0)
        return Decision(allowed=int(taken) == 1, wait_seconds=float(wait))

    def _warn(self, error: Exception) -> None:
        now = time.monotonic()
        if now - self._warned_at >= _WARN_EVERY_SECONDS:
            self._warned_at = now
            logger.warning(
                "rate limits not enforced: Redis unavailable (%s); letting calls through", type(error).__name__
            )
