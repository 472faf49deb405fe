"""Worker probes: operators and tests enqueue one to prove that a separate worker consumes the queue."""

from __future__ import annotations

import asyncio
import os
import socket

from beanie import PydanticObjectId

from tidings.core.errors import NotFoundError, ValidationError
from tidings.core.queue import TaskQueue
from tidings.diagnostics.documents import Probe, ProbeAttempt, ProbeStatus

MAX_HOLD_SECONDS = 60.0
PROBE_TASK = "tidings.diagnostics.probe"


async def create_probe(hold_seconds: float = 0.0, environment_id: PydanticObjectId | None = None) -> Probe:
    if not 0 <= hold_seconds <= MAX_HOLD_SECONDS:
        raise ValidationError(f"hold_seconds must be between 0 and {MAX_HOLD_SECONDS}", field="holdSeconds")
    return await Probe(hold_seconds=hold_seconds, environment_id=environment_id).insert()


async def start_probe(
    queue: TaskQueue, hold_seconds: float = 0.0, environment_id: PydanticObjectId | None = None
) -> Probe:
    """Record a probe and queue it; whichever worker picks it up records itself on it."""
    probe = await create_probe(hold_seconds, environment_id)
    await queue.enqueue(PROBE_TASK, str(probe.id))
    return probe


async def get_probe(probe_id: str, environment_id: PydanticObjectId | None = None) -> Probe:
    """The probe; with `environment_id`, only one that environment started (another's is NOT_FOUND, like any record
    of another environment: which hosts and processes run its workers is none of its business)."""
    if not PydanticObjectId.is_valid(probe_id):
        raise NotFoundError(f"probe {probe_id[:64]} not found", field="id")
    query: dict[str, object] = {"_id": PydanticObjectId(probe_id)}
    if environment_id is not None:
        query["environment_id"] = environment_id
    probe = await Probe.find_one(query)
    if probe is None:
        raise NotFoundError(f"probe {probe_id} not found", field="id")
    return probe


async def run_probe(probe_id: str) -> None:
    """Record this attempt, hold for the probe's time (a window in which a test can kill us), then complete."""
    attempt = ProbeAttempt(pid=os.getpid(), host=socket.gethostname())
    collection = Probe.get_pymongo_collection()
    probe = await collection.find_one_and_update(
        {"_id": PydanticObjectId(probe_id), "status": {"$ne": ProbeStatus.COMPLETED}},
        {"$set": {"status": ProbeStatus.RUNNING}, "$push": {"attempts": attempt.model_dump()}},
    )
    if probe is None:
        return  # already completed: a redelivery after success does nothing
    await asyncio.sleep(float(probe.get("hold_seconds", 0.0)))
    await collection.update_one(
        {"_id": PydanticObjectId(probe_id)},
        {"$set": {"status": ProbeStatus.COMPLETED, "completed_by": attempt.model_dump()}},
    )
