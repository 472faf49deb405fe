"""The scheduler role: leader election now; moving due jobs onto the queue arrives with the engine."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tidings.app.heartbeat import beat_forever, heartbeat_path
from tidings.app.resources import open_redis
from tidings.app.settings import Settings
from tidings.app.signals import stop_event_on_signals
from tidings.tasks.scheduler import LeaderLock, run_scheduler

logger = logging.getLogger(__name__)


async def _no_due_work() -> None:
    """Nothing is parked yet: delays, digests and retries (and their due jobs) come with the workflow engine."""


async def run_scheduler_role(settings: Settings) -> None:
    stop = stop_event_on_signals()
    redis = open_redis(settings)
    heartbeat = asyncio.create_task(
        beat_forever(heartbeat_path(settings.heartbeat_dir, "scheduler"), settings.heartbeat_interval_seconds)
    )
    try:
        lock = LeaderLock(redis, settings.scheduler_lock_ttl_seconds)
        await run_scheduler(lock, _no_due_work, settings.scheduler_tick_seconds, stop)
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat
        await redis.aclose()
