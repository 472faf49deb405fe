"""The worker role: consumes the task stream with Taskiq's receiver until SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from taskiq.acks import AcknowledgeType
from taskiq.api import run_receiver_task

import tidings.tasks.registry  # noqa: F401  (registers every task)
from tidings.app.heartbeat import beat_forever, heartbeat_path
from tidings.app.resources import open_resources
from tidings.app.settings import Settings
from tidings.app.signals import stop_event_on_signals

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    stop = stop_event_on_signals()
    async with open_resources(settings, worker=True) as resources:
        receiver = asyncio.create_task(
            run_receiver_task(
                resources.broker,
                max_async_tasks=settings.worker_max_async_tasks,
                # Acknowledge only after the task ran: a worker killed mid-task leaves the delivery pending, and
                # another worker reclaims it after `task_idle_timeout_seconds`.
                ack_time=AcknowledgeType.WHEN_SAVED,
                run_startup=False,
            )
        )
        heartbeat = asyncio.create_task(
            beat_forever(heartbeat_path(settings.heartbeat_dir, "worker"), settings.heartbeat_interval_seconds)
        )
        logger.info("worker consuming %s", settings.queue_name)
        await stop.wait()
        logger.info("worker stopping")
        for task in (receiver, heartbeat):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
