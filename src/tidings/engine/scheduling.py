"""The scheduler's work, done by the elected leader on every tick: put due and lost work back on the queue, and wake
snoozed inbox messages whose time came; and, every `retention_every_seconds`, delete expired records
(engine.retention).

MongoDB is the truth: parked jobs (delays, digest windows, retries) carry `due_at`; a job `queued` long ago whose
wake-up was lost (Redis restarted empty, or was down when it was queued), a `running` job whose worker's lease ran
out, and a trigger whose fan-out never started are found here and queued again. Every transition is conditional,
so any number of sweeps, in any order, never queue a job twice at once.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.errors import PyMongoError
from redis.exceptions import RedisError

from tidings.core.clock import utcnow
from tidings.core.queue import QueueUnavailableError, TaskQueue
from tidings.engine.metrics import record_oldest_due
from tidings.engine.retention import sweep_expired
from tidings.inbox.events import Publisher
from tidings.inbox.state import wake_snoozed
from tidings.notifications.documents import Job, JobStatus, Trigger, TriggerStatus
from tidings.notifications.service import PROCESS_TRIGGER_TASK, RUN_JOB_TASK
from tidings.webhooks.sweep import sweep_webhook_deliveries

logger = logging.getLogger(__name__)
_RETENTION_BACKLOG_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class SweepPolicy:
    batch: int = 500
    requeue_after_seconds: float = 300.0  # a queued job or accepted trigger untouched this long lost its wake-up
    retention_every_seconds: float = 60.0  # the retention sweep (engine.retention), sooner while it has a backlog


async def _oldest(query: dict[str, object], sort: str, batch: int) -> list[dict[str, Any]]:
    return await Job.get_pymongo_collection().find(query, {"_id": 1, sort: 1}).sort(sort, 1).limit(batch).to_list()


async def _requeue(query: dict[str, object], sort: str, now: datetime, batch: int, queue: TaskQueue) -> int:
    return await _requeue_rows(await _oldest(query, sort, batch), query, now, queue)


async def _requeue_rows(rows: list[dict[str, Any]], query: dict[str, object], now: datetime, queue: TaskQueue) -> int:
    jobs = Job.get_pymongo_collection()
    woken = 0
    for row in rows:
        moved = await jobs.update_one(
            {"_id": row["_id"], **query},
            {"$set": {"status": JobStatus.QUEUED, "queued_at": now, "updated_at": now}},
        )
        if moved.modified_count:
            await queue.enqueue(RUN_JOB_TASK, str(row["_id"]))
            woken += 1
    return woken


async def wake_due_jobs(queue: TaskQueue, policy: SweepPolicy, now: datetime | None = None) -> int:
    """Parked jobs whose time has come. Runs every tick, so a 2 s delay fires within a tick of 2 s."""
    now = now or utcnow()
    query: dict[str, object] = {"status": JobStatus.DELAYED, "due_at": {"$lte": now}}
    rows = await _oldest(query, "due_at", policy.batch)
    # The same read measures how far behind the scheduler is, before a queue outage can interrupt the requeue.
    record_oldest_due(now, rows[0]["due_at"] if rows else None)
    return await _requeue_rows(rows, query, now, queue)


async def recover_lost_work(queue: TaskQueue, policy: SweepPolicy, now: datetime | None = None) -> int:
    now = now or utcnow()
    stale = now - timedelta(seconds=policy.requeue_after_seconds)
    woken = await _requeue(
        {"status": JobStatus.QUEUED, "queued_at": {"$lt": stale}}, "queued_at", now, policy.batch, queue
    )
    woken += await _requeue(
        {"status": JobStatus.RUNNING, "lease_until": {"$lt": now}}, "lease_until", now, policy.batch, queue
    )
    triggers = Trigger.get_pymongo_collection()
    query = {"status": TriggerStatus.ACCEPTED, "updated_at": {"$lt": stale}}
    async for row in triggers.find(query, {"_id": 1}).limit(policy.batch):
        if (await triggers.update_one({"_id": row["_id"], **query}, {"$set": {"updated_at": now}})).modified_count:
            await queue.enqueue(PROCESS_TRIGGER_TASK, str(row["_id"]))
            woken += 1
    return woken


class Sweeper:
    """The scheduler's tick: due jobs and ended snoozes every time, the slower recovery sweep every
    `recovery_every` ticks."""

    def __init__(self, queue: TaskQueue, policy: SweepPolicy, publisher: Publisher, recovery_every: int = 25) -> None:
        self.queue = queue
        self.policy = policy
        self.publisher = publisher
        self.recovery_every = recovery_every
        self.ticks = 0
        self.retention_due = 0.0  # monotonic time of the next retention sweep

    async def __call__(self) -> None:
        self.ticks += 1
        with contextlib.suppress(RedisError):  # the snoozes stay due in MongoDB; the next tick tries again
            await wake_snoozed(self.publisher, self.policy.batch)
        with contextlib.suppress(QueueUnavailableError):  # due webhook deliveries stay due in MongoDB
            await sweep_webhook_deliveries(self.queue, batch=self.policy.batch)
        try:
            await wake_due_jobs(self.queue, self.policy)
            if self.ticks % self.recovery_every == 1:
                await recover_lost_work(self.queue, self.policy)
        except QueueUnavailableError:
            pass  # the jobs stay where they are in MongoDB; the next tick tries again
        if time.monotonic() >= self.retention_due:
            # Optional housekeeping (MongoDB's TTL monitor does the same): it must neither stop the tick that wakes
            # due jobs nor crowd it out, so a failure waits for the next period and a backlog is taken a batch per
            # collection a second, not every tick.
            wait = self.policy.retention_every_seconds
            try:
                swept = await sweep_expired(self.policy.batch)
                if swept.backlog:
                    wait = min(wait, _RETENTION_BACKLOG_SECONDS)
            except PyMongoError as error:
                logger.warning("retention sweep failed, next try in %gs: %s", wait, type(error).__name__)
            self.retention_due = time.monotonic() + wait
