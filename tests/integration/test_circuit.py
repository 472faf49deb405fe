"""The integration circuit breaker against a real Redis: opens on a transient failure rate, lets one probe through
when half-open, closes on a healthy probe and reopens on a failed one; its state is a Prometheus gauge."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from tidings.tasks.circuit import CircuitPolicy, CircuitState, RedisCircuitBreaker

POLICY = CircuitPolicy(window_seconds=30, min_calls=4, failure_rate=0.5, open_seconds=0.5)


@pytest.fixture
async def breaker(redis_url: str) -> AsyncIterator[RedisCircuitBreaker]:
    redis = Redis.from_url(redis_url)
    yield RedisCircuitBreaker(redis, POLICY, prefix=f"test:circuit:{uuid.uuid4().hex}")
    await redis.aclose()


def _gauge(integration: str) -> float | None:
    return REGISTRY.get_sample_value("tidings_integration_circuit_state", {"integration": integration})


async def test_opens_at_the_failure_rate_and_not_before(breaker: RedisCircuitBreaker) -> None:
    for healthy in (True, True, False):
        assert await breaker.allow("a")
        await breaker.record("a", healthy=healthy)
    assert await breaker.state("a") is CircuitState.CLOSED  # 1 of 3: below min_calls and rate
    await breaker.record("a", healthy=False)  # 2 of 4 = 0.5
    assert await breaker.state("a") is CircuitState.OPEN
    assert not await breaker.allow("a")
    assert _gauge("a") == CircuitState.OPEN
    # Healthy sends alone never open it.
    for _ in range(10):
        await breaker.record("b", healthy=True)
    assert await breaker.allow("b")


async def test_half_open_lets_one_probe_through_then_closes_or_reopens(breaker: RedisCircuitBreaker) -> None:
    for _ in range(4):
        await breaker.record("c", healthy=False)
    assert not await breaker.allow("c")
    await asyncio.sleep(POLICY.open_seconds + 0.1)
    assert await breaker.state("c") is CircuitState.HALF_OPEN
    assert await breaker.allow("c")  # the probe
    assert not await breaker.allow("c")  # only one at a time
    assert _gauge("c") == CircuitState.HALF_OPEN
    await breaker.record("c", healthy=False)
    assert await breaker.state("c") is CircuitState.OPEN  # failed probe: open again
    await asyncio.sleep(POLICY.open_seconds + 0.1)
    assert await breaker.allow("c")
    await breaker.record("c", healthy=True)
    assert await breaker.state("c") is CircuitState.CLOSED
    assert _gauge("c") == CircuitState.CLOSED
    assert await breaker.allow("c")
    assert await breaker.allow("c")  # closed: no probe limit
    # The counts were cleared: one more failure does not reopen it.
    await breaker.record("c", healthy=False)
    assert await breaker.state("c") is CircuitState.CLOSED
