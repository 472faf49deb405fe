"""The engine's knobs (from settings) and its dependencies (wired by the worker)."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tidings.core.queue import TaskQueue
from tidings.engine.delivery import CircuitBreaker, Sender
from tidings.inbox.events import Publisher


@dataclass(frozen=True, slots=True)
class EnginePolicy:
    max_attempts: int = 5
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 600.0
    lease_seconds: float = 120.0
    render_max_bytes: int = 262_144
    render_timeout_seconds: float = 2.0

    def retry_delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with full jitter (attempt 1 → up to base, 2 → up to 2 x base…), capped."""
        ceiling = min(self.retry_max_seconds, self.retry_base_seconds * 2 ** max(0, attempt - 1))
        delay = random.uniform(ceiling / 2, ceiling)  # noqa: S311 (jitter, not cryptography)
        return max(delay, min(retry_after or 0.0, self.retry_max_seconds))


@dataclass(frozen=True, slots=True)
class EngineDeps:
    queue: TaskQueue
    sender: Sender
    publisher: Publisher
    policy: EnginePolicy
    breaker: CircuitBreaker
