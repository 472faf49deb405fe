"""When activity records expire (environments.retention): jobs and notifications once they finish, triggers once
the last of their parked jobs could have finished. Nothing open is ever given an expiry that could pass first."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from beanie import PydanticObjectId

from tidings.environments.retention import retention_for
from tidings.notifications.documents import Job, JobStatus, Trigger


async def finished_job_fields(environment_id: PydanticObjectId, now: datetime) -> dict[str, Any]:
    retention = await retention_for(environment_id)
    return {"expires_at": retention.jobs_until(now), "details_expire_at": retention.details_until(now)}


async def finished_notification_fields(environment_id: PydanticObjectId, now: datetime) -> dict[str, Any]:
    return {"expires_at": (await retention_for(environment_id)).jobs_until(now)}


async def trigger_expiry(environment_id: PydanticObjectId, now: datetime) -> datetime:
    return (await retention_for(environment_id)).jobs_until(now)


async def outcome_fields(job: Job, status: JobStatus, due_at: datetime | None, now: datetime) -> dict[str, Any]:
    """What a job's outcome adds to its record: an expiry when it finished. A job that parks keeps none, and pushes
    its trigger's expiry past its wake-up (the job reads the trigger's workflow when it runs again)."""
    if status != JobStatus.DELAYED:
        return await finished_job_fields(job.environment_id, now)
    if due_at is not None:
        until = (await retention_for(job.environment_id)).jobs_until(due_at)
        await Trigger.get_pymongo_collection().update_one({"_id": job.trigger_id}, {"$max": {"expires_at": until}})
    return {}
