"""The scheduler role: one elected leader moves due and lost work back onto the queue, every tick."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from tidings.app.engine import sweep_policy
from tidings.app.heartbeat import beat_forever, heartbeat_path
from tidings.app.metrics_server import metrics_server
from tidings.app.resources import open_resources
from tidings.app.settings import Settings
from tidings.app.signals import stop_event_on_signals
from tidings.engine.scheduling import Sweeper
from tidings.tasks.publisher import RedisPublisher
from tidings.tasks.queue import BrokerTaskQueue
from tidings.tasks.scheduler import LeaderLock, run_scheduler

logger = logging.getLogger(__name__)


async def run_scheduler_role(settings: Settings) -> None:
    stop = stop_event_on_signals()
    metrics = metrics_server(settings.host, settings.scheduler_metrics_port, "scheduler")
    async with open_resources(settings) as resources, metrics:
        heartbeat = asyncio.create_task(
            beat_forever(heartbeat_path(settings.heartbeat_dir, "scheduler"), settings.heartbeat_interval_seconds)
        )
        try:
            lock = LeaderLock(resources.redis, settings.scheduler_lock_ttl_seconds)
            sweeper = Sweeper(
                BrokerTaskQueue(resources.broker), sweep_policy(settings), RedisPublisher(resources.redis)
            )
            await run_scheduler(lock, sweeper, settings.scheduler_tick_seconds, stop)
        finally:
            heartbeat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await heartbeat
