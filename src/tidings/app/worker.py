"""The worker role: consumes the task stream with Taskiq's receiver; SIGTERM drains it gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from concurrent.futures import ThreadPoolExecutor

from taskiq.acks import AcknowledgeType
from taskiq.receiver import Receiver

import tidings.tasks.registry  # noqa: F401  (registers every task)
from tidings.app.engine import engine_deps
from tidings.app.heartbeat import beat_forever, heartbeat_path
from tidings.app.metrics_server import metrics_server
from tidings.app.resources import open_resources
from tidings.app.settings import Settings
from tidings.app.signals import stop_event_on_signals
from tidings.core.crypto import Cipher
from tidings.webhooks.delivery import WebhookDeps, new_http_client

logger = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Run tasks until SIGTERM; then fetch nothing new and give running tasks the grace period to finish.

    A task still running after the grace period is cancelled and left unacknowledged, so another worker runs it
    after `task_idle_timeout_seconds`: a deploy never loses work, at worst it repeats some.
    """
    stop = stop_event_on_signals()
    grace = settings.worker_shutdown_grace_seconds
    metrics = metrics_server(settings.host, settings.worker_metrics_port, "worker")
    async with open_resources(settings, worker=True) as resources, metrics:
        deps, sender = engine_deps(settings, resources)
        resources.broker.state.engine = deps  # what tasks reach through Taskiq's Context
        webhook_client = new_http_client()
        resources.broker.state.webhooks = WebhookDeps(
            cipher=Cipher(settings.require_secret_key()),
            client=webhook_client,
            allow_private=settings.allow_private_network_urls,
        )
        finish = asyncio.Event()
        with ThreadPoolExecutor(max_workers=4) as executor:
            receiver = Receiver(
                broker=resources.broker,
                executor=executor,
                run_startup=False,
                max_async_tasks=settings.worker_max_async_tasks,
                # Acknowledge only after the task ran: a worker killed mid-task leaves the delivery pending.
                ack_type=AcknowledgeType.WHEN_SAVED,
                wait_tasks_timeout=grace,
            )
            listening = asyncio.create_task(receiver.listen(finish))
            heartbeat = asyncio.create_task(
                beat_forever(heartbeat_path(settings.heartbeat_dir, "worker"), settings.heartbeat_interval_seconds)
            )
            logger.info("worker consuming %s", settings.queue_name)
            stopping = asyncio.create_task(stop.wait())
            await asyncio.wait({listening, stopping}, return_when=asyncio.FIRST_COMPLETED)
            logger.info("worker stopping: waiting up to %gs for running tasks", grace)
            finish.set()
            try:
                await asyncio.wait_for(asyncio.shield(listening), timeout=grace + 1.0)
            except TimeoutError:
                logger.warning("tasks still running after %gs: cancelled, left for another worker", grace)
            for task in (listening, heartbeat, stopping):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await sender.aclose()
        await webhook_client.aclose()
        with contextlib.suppress(Exception):  # best effort: Redis may be the reason we stop
            await resources.broker.forget_consumer()
