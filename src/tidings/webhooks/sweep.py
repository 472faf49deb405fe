"""The scheduler's part: queue deliveries whose next attempt is due, or whose queued attempt was lost."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from tidings.core.clock import utcnow
from tidings.core.queue import QueueUnavailableError, TaskQueue
from tidings.webhooks.documents import DeliveryStatus, WebhookDelivery
from tidings.webhooks.service import DELIVER_TASK, REQUEUE_AFTER_SECONDS

logger = logging.getLogger(__name__)

DEFAULT_SWEEP_BATCH = 500


async def due_deliveries(now: datetime, batch: int = DEFAULT_SWEEP_BATCH) -> list[tuple[str, int]]:
    """Take up to `batch` due deliveries, as (id, attempt number) to queue.

    Each is pushed `REQUEUE_AFTER_SECONDS` into the future by a conditional update, so two sweeps never take the
    same one, and one whose task is lost is taken again later.
    """
    collection = WebhookDelivery.get_pymongo_collection()
    cursor = (
        collection.find(
            {"status": DeliveryStatus.PENDING.value, "next_attempt_at": {"$lte": now}},
            {"_id": 1, "next_attempt_at": 1, "attempt_count": 1},
        )
        .sort("next_attempt_at", 1)
        .limit(batch)
    )
    later = now + timedelta(seconds=REQUEUE_AFTER_SECONDS)
    taken: list[tuple[str, int]] = []
    async for row in cursor:
        result = await collection.update_one(
            {"_id": row["_id"], "status": DeliveryStatus.PENDING.value, "next_attempt_at": row["next_attempt_at"]},
            {"$set": {"next_attempt_at": later}},
        )
        if result.modified_count == 1:
            taken.append((str(row["_id"]), int(row.get("attempt_count", 0))))
    return taken


async def sweep_webhook_deliveries(
    queue: TaskQueue, batch: int = DEFAULT_SWEEP_BATCH, now: datetime | None = None
) -> int:
    """Queue the due deliveries; returns how many were queued. Call it on every scheduler tick."""
    queued = 0
    for delivery_id, attempt in await due_deliveries(now or utcnow(), batch):
        try:
            await queue.enqueue(DELIVER_TASK, delivery_id, str(attempt))
        except QueueUnavailableError:
            logger.warning("webhook sweep stopped: the task queue is unavailable")
            break  # what was taken is taken again after REQUEUE_AFTER_SECONDS
        queued += 1
    return queued
