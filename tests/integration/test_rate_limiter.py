"""The token bucket script on a real Redis, with the clock passed in so the arithmetic is exact; and failing open."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from tidings.app.embedded import free_port
from tidings.core.errors import RateLimitedError
from tidings.environments.ratelimits import Decision, Rate, RateClass, RateLimiter

TRIGGER, CONFIG = RateClass.TRIGGER, RateClass.CONFIG
RATES = {
    TRIGGER: Rate(per_second=2, burst=10),
    CONFIG: Rate(per_second=0.5, burst=3),
    RateClass.INBOX_SESSION: Rate(0, 1),
}


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def environment() -> str:
    return uuid.uuid4().hex


async def test_a_burst_is_spent_then_refill_follows_the_rate(redis: Redis, environment: str) -> None:
    limiter = RateLimiter(redis, RATES)
    assert await limiter.decide(environment, {TRIGGER: 7}, now=1000.0) == Decision(True, 0.0)
    assert await limiter.decide(environment, {TRIGGER: 3}, now=1000.0) == Decision(True, 0.0)
    refused = await limiter.decide(environment, {TRIGGER: 1}, now=1000.0)
    assert refused == Decision(False, 0.5)  # one token at 2 per second
    assert refused.retry_after == 1
    assert (await limiter.decide(environment, {TRIGGER: 4}, now=1001.0)).wait_seconds == 1.0  # 2 refilled, 2 missing
    assert await limiter.decide(environment, {TRIGGER: 4}, now=1002.0) == Decision(True, 0.0)
    # Refill stops at the burst, however long the bucket stayed idle.
    assert await limiter.decide(environment, {TRIGGER: 10}, now=5000.0) == Decision(True, 0.0)
    assert not (await limiter.decide(environment, {TRIGGER: 1}, now=5000.0)).allowed


async def test_a_refused_call_takes_nothing_from_any_bucket(redis: Redis, environment: str) -> None:
    limiter = RateLimiter(redis, RATES)
    assert (await limiter.decide(environment, {CONFIG: 3}, now=10.0)).allowed
    refused = await limiter.decide(environment, {TRIGGER: 5, CONFIG: 1}, now=10.0)
    assert refused == Decision(False, 2.0)  # config needs 1 token at 0.5 per second
    assert refused.retry_after == 2
    assert await limiter.decide(environment, {TRIGGER: 10}, now=10.0) == Decision(True, 0.0)  # trigger kept all 10
    assert await limiter.decide(environment, {CONFIG: 1}, now=12.0) == Decision(True, 0.0)


async def test_environments_and_classes_have_their_own_buckets(redis: Redis, environment: str) -> None:
    limiter = RateLimiter(redis, RATES)
    assert (await limiter.decide(environment, {CONFIG: 3}, now=10.0)).allowed
    assert not (await limiter.decide(environment, {CONFIG: 1}, now=10.0)).allowed
    assert (await limiter.decide(environment, {TRIGGER: 1}, now=10.0)).allowed
    assert (await limiter.decide(uuid.uuid4().hex, {CONFIG: 3}, now=10.0)).allowed


async def test_a_call_above_the_burst_takes_a_full_bucket_and_zero_rate_is_unlimited(
    redis: Redis, environment: str
) -> None:
    limiter = RateLimiter(redis, RATES)
    assert (await limiter.decide(environment, {CONFIG: 50}, now=10.0)).allowed
    assert not (await limiter.decide(environment, {CONFIG: 1}, now=10.0)).allowed
    for _ in range(100):
        await limiter.take(environment, RateClass.INBOX_SESSION)
    assert await redis.exists(f"tidings:rate:{environment}:inbox_session") == 0


async def test_take_raises_with_whole_seconds_on_redis_clock(redis: Redis, environment: str) -> None:
    limiter = RateLimiter(redis, RATES)
    await limiter.take(environment, CONFIG, 3)
    with pytest.raises(RateLimitedError) as refused:
        await limiter.take(environment, CONFIG)
    assert refused.value.code == "RATE_LIMITED"
    assert refused.value.retry_after == 2
    # The key expires once the bucket would be full again, so idle environments leave nothing behind.
    ttl = await redis.pttl(f"tidings:rate:{environment}:config")
    assert 0 < ttl <= 7000


async def test_without_redis_calls_pass_and_a_warning_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}", socket_connect_timeout=1)
    limiter = RateLimiter(unreachable, RATES)
    with caplog.at_level(logging.WARNING, logger="tidings.environments.ratelimits"):
        for _ in range(3):
            await limiter.take("any", CONFIG, 3)
    warnings = [record.getMessage() for record in caplog.records]
    assert warnings == ["rate limits not enforced: Redis unavailable (ConnectionError); letting calls through"]
    await unreachable.aclose()
