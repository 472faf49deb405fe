"""Engine tasks: they take ids, reload from MongoDB, and call one domain function (DESIGN §3)."""

from __future__ import annotations

from typing import Annotated

from taskiq import Context, TaskiqDepends, async_shared_broker

from tidings.engine.policy import EngineDeps
from tidings.engine.runner import run_job as run_engine_job
from tidings.notifications.service import PROCESS_TRIGGER_TASK, RUN_JOB_TASK
from tidings.triggers.fanout import process_trigger as fan_out


def _deps(context: Context) -> EngineDeps:
    deps: EngineDeps = context.state.engine
    return deps


@async_shared_broker.task(task_name=PROCESS_TRIGGER_TASK)
async def process_trigger(trigger_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    await fan_out(trigger_id, _deps(context).queue)


@async_shared_broker.task(task_name=RUN_JOB_TASK)
async def run_job(job_id: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    await run_engine_job(job_id, _deps(context))
