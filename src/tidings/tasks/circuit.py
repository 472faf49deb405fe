"""Circuit breakers for integrations, in Redis so that every worker sees the same state.

Closed: sends go through; each outcome is counted in a window of `window_seconds`. When at least `min_calls`
sends in the current and previous windows failed transiently at a rate of `failure_rate` or more, the circuit
opens for `open_seconds`: the engine skips the integration (failing over to the next). Then it is half-open: one
send at a time is let through as a probe; a healthy probe closes the circuit (counts cleared), a failed one opens
it again.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from enum import IntEnum

from prometheus_client import Gauge
from redis.asyncio import Redis
from redis.exceptions import RedisError


class CircuitState(IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2


CIRCUIT_STATE = Gauge(
    "tidings_integration_circuit_state",
    "Circuit of an integration as last seen by this process: 0 closed, 1 open, 2 half-open",
    ["integration"],
)


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    window_seconds: float = 60.0
    min_calls: int = 5
    failure_rate: float = 0.5
    open_seconds: float = 30.0


class RedisCircuitBreaker:
    def __init__(self, redis: Redis, policy: CircuitPolicy, prefix: str = "tidings:circuit") -> None:
        self._redis = redis
        self._policy = policy
        self._prefix = prefix

    def _key(self, integration_id: str, part: str) -> str:
        return f"{self._prefix}:{integration_id}:{part}"

    def _window(self, now: float) -> int:
        return int(now // self._policy.window_seconds)

    async def state(self, integration_id: str) -> CircuitState:
        opened, tripped = await self._redis.mget(
            self._key(integration_id, "open"), self._key(integration_id, "tripped")
        )
        if opened is not None:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN if tripped is not None else CircuitState.CLOSED

    async def allow(self, integration_id: str) -> bool:
        try:
            state = await self.state(integration_id)
            if state is CircuitState.HALF_OPEN:
                # One probe at a time; it holds the slot for as long as an open circuit would stay open.
                probe = await self._redis.set(
                    self._key(integration_id, "probe"), "1", nx=True, px=int(self._policy.open_seconds * 1000)
                )
                CIRCUIT_STATE.labels(integration_id).set(state)
                return bool(probe)
        except RedisError:
            return True  # without Redis there is no shared view: send, as if closed
        CIRCUIT_STATE.labels(integration_id).set(state)
        return state is CircuitState.CLOSED

    async def record(self, integration_id: str, *, healthy: bool) -> None:
        with contextlib.suppress(RedisError):
            await self._record(integration_id, healthy=healthy)

    async def _record(self, integration_id: str, *, healthy: bool) -> None:
        policy = self._policy
        tripped = await self._redis.get(self._key(integration_id, "tripped"))
        if tripped is not None:  # this was the half-open probe
            await self._redis.delete(self._key(integration_id, "probe"))
            if healthy:
                await self._close(integration_id)
            else:
                await self._open(integration_id)
            return
        window = self._window(time.time())
        current = self._key(integration_id, f"w{window}")
        ttl = int(policy.window_seconds * 2) + 1
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.hincrby(current, "calls", 1)
            pipe.hincrby(current, "failures", 0 if healthy else 1)
            pipe.expire(current, ttl)
            pipe.hgetall(self._key(integration_id, f"w{window - 1}"))
            calls, failures, _, previous = await pipe.execute()
        calls += int(previous.get(b"calls", 0))
        failures += int(previous.get(b"failures", 0))
        if not healthy and calls >= policy.min_calls and failures / calls >= policy.failure_rate:
            await self._open(integration_id)

    async def _open(self, integration_id: str) -> None:
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._key(integration_id, "open"), "1", px=int(self._policy.open_seconds * 1000))
            # Remembers that the circuit tripped, so the first send after `open` expires is a probe.
            pipe.set(self._key(integration_id, "tripped"), "1", px=int(self._policy.open_seconds * 1000 * 20))
            await pipe.execute()
        CIRCUIT_STATE.labels(integration_id).set(CircuitState.OPEN)

    async def _close(self, integration_id: str) -> None:
        window = self._window(time.time())
        await self._redis.delete(
            self._key(integration_id, "tripped"),
            self._key(integration_id, f"w{window}"),
            self._key(integration_id, f"w{window - 1}"),
        )
        CIRCUIT_STATE.labels(integration_id).set(CircuitState.CLOSED)
