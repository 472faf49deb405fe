"""Writing jobs and waking workers: shared by the fan-out (first jobs) and the engine (every next job)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from beanie import PydanticObjectId

from tidings.core.clock import utcnow
from tidings.core.inserts import refused_as_duplicates
from tidings.core.queue import QueueUnavailableError, TaskQueue
from tidings.notifications.documents import Job, JobStatus

RUN_JOB_TASK = "tidings.engine.run_job"
PROCESS_TRIGGER_TASK = "tidings.triggers.process"

logger = logging.getLogger(__name__)


async def insert_new(documents: Sequence[Job]) -> list[PydanticObjectId]:
    """Insert jobs whose ids were chosen up front; one that exists already (a re-run) is skipped, not an error."""
    if not documents:
        return []
    rejected = await refused_as_duplicates(
        Job.get_pymongo_collection().insert_many([job.model_dump(by_alias=True) for job in documents], ordered=False)
    )
    return [job.id for index, job in enumerate(documents) if index not in rejected and job.id is not None]


async def wake(queue: TaskQueue, job_ids: Sequence[PydanticObjectId]) -> None:
    """Queue the jobs' ids. If the broker is down they stay `queued` in MongoDB and the scheduler re-queues them."""
    for job_id in job_ids:
        try:
            await queue.enqueue(RUN_JOB_TASK, str(job_id))
        except QueueUnavailableError:
            logger.warning("queue unavailable: %d job(s) wait for the scheduler's sweep", len(job_ids))
            return


def queued_now() -> dict[str, object]:
    now = utcnow()
    return {"status": JobStatus.QUEUED, "queued_at": now, "updated_at": now}
