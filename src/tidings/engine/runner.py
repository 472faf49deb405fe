"""Run one job: claim it, run its step, record what happened, and queue the next step.

A job is claimed by a conditional update (`queued → running`, or a `running` job whose lease ran out), so a
redelivered or duplicated wake-up never runs a step twice at the same time. The claim's attempt number fences
the final write: a worker that lost its lease cannot overwrite the outcome of the one that took over.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import ConnectionFailure, PyMongoError
from structlog.contextvars import bound_contextvars

from tidings.core.channels import Channel
from tidings.core.clock import utcnow
from tidings.engine.channels import after_failure, run_in_app, run_provider_channel
from tidings.engine.conditions import ConditionError, evaluate, is_truthy
from tidings.engine.context import STEP, StepContext
from tidings.engine.delivery import DeliveryError, FailureKind
from tidings.engine.flow import run_delay, run_digest, run_throttle
from tidings.engine.metrics import record_job
from tidings.engine.outcome import Outcome, failed, skipped
from tidings.engine.policy import EngineDeps
from tidings.notifications.documents import (
    ExecutionDetail,
    Job,
    JobStatus,
    Notification,
    NotificationStatus,
    Trigger,
    TriggerStatus,
)
from tidings.notifications.retention import finished_notification_fields, outcome_fields
from tidings.notifications.service import insert_new, wake
from tidings.preferences.documents import SubscriberPreference, applied_choices
from tidings.preferences.merge import merge_channel
from tidings.subscribers.documents import Subscriber
from tidings.webhooks.events import WebhookEventType
from tidings.webhooks.service import emit
from tidings.workflows.steps import DelayStep, DigestStep, InAppStep, ThrottleStep

logger = logging.getLogger(__name__)

_CONTINUES = (JobStatus.COMPLETED, JobStatus.SKIPPED)
_ENDS_NOTIFICATION = {
    JobStatus.FAILED: NotificationStatus.FAILED,
    JobStatus.MERGED: NotificationStatus.COMPLETED,
    JobStatus.CANCELED: NotificationStatus.CANCELED,
}


async def claim(job_id: str, lease_seconds: float) -> Job | None:
    """Take the job if it is queued, or running under a lease that ran out; None if another run has it.

    Two conditional updates on `_id` and one read, not one findAndModify with `$or`: each update is atomic, so only
    one caller moves the job out of either state, and on SecantusDB (the embedded server of `tidings dev` and the
    tests) findAndModify, or an `$or` filter, scans the whole collection where these are indexed lookups — 70 ms
    instead of 2 at 4,000 jobs, the largest cost of the worker (docs/benchmarks.md). On MongoDB it costs one more
    round trip.
    """
    now = utcnow()
    key = PydanticObjectId(job_id)
    update = {
        "$set": {"status": JobStatus.RUNNING, "lease_until": now + timedelta(seconds=lease_seconds), "updated_at": now},
        "$inc": {"attempts": 1},
    }
    collection = Job.get_pymongo_collection()
    taken = await collection.update_one({"_id": key, "status": JobStatus.QUEUED}, update)
    if not taken.modified_count:
        expired = {"_id": key, "status": JobStatus.RUNNING, "lease_until": {"$lt": now}}
        taken = await collection.update_one(expired, update)
    if not taken.modified_count:
        return None
    raw = await collection.find_one({"_id": key})
    if raw is None:
        return None  # erased in between
    job: Job = Job.model_validate(raw)
    return job


async def run_job(job_id: str, deps: EngineDeps) -> None:
    job = await claim(job_id, deps.policy.lease_seconds)
    if job is None:
        return  # done, parked, canceled, or running elsewhere: this wake-up is a duplicate
    # Every line logged while the job runs names it (docs/operations.md, "Logs"); contextvars are per asyncio task,
    # so the jobs a worker runs at once don't mix.
    with bound_contextvars(
        jobId=str(job.id),
        transactionId=job.transaction_id,
        environmentId=str(job.environment_id),
        notificationId=str(job.notification_id),
        workflowId=job.workflow_id,
        step=job.step_id,
    ):
        await _run_claimed(job, deps)


async def _run_claimed(job: Job, deps: EngineDeps) -> None:
    started = time.perf_counter()
    trigger = await _trigger(job.trigger_id)
    if trigger is None:
        outcome = Outcome(JobStatus.CANCELED, reason="the trigger is gone")
    else:
        outcome = await _run_step(job, trigger, deps)
    if await _record(job, outcome, started):
        record_job(job.step_type, outcome.status, time.perf_counter() - started)
        await _follow_up(job, trigger, outcome, deps)


_TRIGGERS: OrderedDict[PydanticObjectId, Trigger] = OrderedDict()
_TRIGGERS_KEPT = 256


async def _trigger(trigger_id: PydanticObjectId) -> Trigger | None:
    """Triggers don't change once fanned out (a cancel changes the jobs, which the claim sees), so a worker keeps
    the recent ones: the steps of one trigger's thousands of notifications read it once."""
    if (cached := _TRIGGERS.get(trigger_id)) is not None:
        _TRIGGERS.move_to_end(trigger_id)
        return cached
    trigger = await Trigger.get(trigger_id)
    if trigger is not None:
        _TRIGGERS[trigger_id] = trigger
        if len(_TRIGGERS) > _TRIGGERS_KEPT:
            _TRIGGERS.popitem(last=False)
    return trigger


async def _run_step(job: Job, trigger: Trigger, deps: EngineDeps) -> Outcome:
    step = STEP.validate_python(trigger.workflow.steps[job.step_index])
    subscriber = await Subscriber.find_one({"environment_id": job.environment_id, "subscriber_id": job.subscriber_id})
    if subscriber is None:
        return skipped("the subscriber was deleted")
    earlier = (
        await Job.find({"notification_id": job.notification_id, "step_index": {"$lt": job.step_index}}).to_list()
        if job.step_index
        else []
    )
    ctx = StepContext(
        job=job,
        step=step,
        trigger=trigger,
        subscriber=subscriber,
        previous={row.step_id: row.output for row in sorted(earlier, key=lambda row: row.step_index)},
        deps=deps,
        now=utcnow(),
    )
    # A parked job waking up (delay, digest window, retry) passed its checks before it parked.
    refusal = None if job.due_at is not None else await _refusal(ctx)
    if refusal is not None:
        return refusal
    try:
        return await _dispatch(ctx)
    except Exception as exc:
        if _database_unavailable(exc):
            if ctx.step.channel is None:
                # A delay, digest or throttle parked for a retry would wake as if its own time had come; left
                # running, it is run afresh once its lease expires (the scheduler's sweep).
                raise
            # A stalled, restarting or failing-over MongoDB is passing trouble, like a provider's 503: retry with
            # backoff. A rerun is safe: the in-app message is keyed by notification and step, and a provider's
            # message id is stored the moment the provider accepts.
            error = DeliveryError(f"database unavailable: {type(exc).__name__}", kind=FailureKind.TRANSIENT)
            return after_failure(ctx, error, {})
        # An unexpected bug must not leave the job running until its lease expires.
        logger.exception("step %s of job %s failed unexpectedly", job.step_id, job.id)
        return failed(f"internal error: {type(exc).__name__}")


def _database_unavailable(exc: Exception) -> bool:
    """Unreachable (network error, no server selected, a primary stepping down) or out of time."""
    return isinstance(exc, ConnectionFailure) or (isinstance(exc, PyMongoError) and exc.timeout)


async def _refusal(ctx: StepContext) -> Outcome | None:
    """Why this step should not run: inactive, conditions false, or the subscriber's preferences."""
    step = ctx.step
    if not step.active:
        return skipped("the step is inactive")
    if step.conditions is not None:
        try:
            if not is_truthy(evaluate(step.conditions, ctx.data())):
                return skipped("conditions are false")
        except ConditionError as exc:
            return skipped(f"conditions could not be evaluated: {exc}")
    if step.channel is not None:
        return await _preference_refusal(ctx, step.channel)
    return None


async def _dispatch(ctx: StepContext) -> Outcome:
    match ctx.step:
        case DelayStep():
            return await run_delay(ctx, ctx.step)
        case DigestStep():
            return await run_digest(ctx, ctx.step)
        case ThrottleStep():
            return await run_throttle(ctx, ctx.step)
        case InAppStep():
            return await run_in_app(ctx, ctx.step)
    return await run_provider_channel(ctx, ctx.step)


async def _preference_refusal(ctx: StepContext, channel: Channel) -> Outcome | None:
    rows = await SubscriberPreference.find(
        {
            "environment_id": ctx.job.environment_id,
            "subscriber_id": ctx.job.subscriber_id,
            "workflow_id": {"$in": [None, ctx.job.workflow_id]},
        }
    ).to_list()
    by_workflow = {row.workflow_id: row for row in rows}
    chosen_globally, chosen_here = applied_choices(by_workflow.get(None), by_workflow.get(ctx.job.workflow_id))
    workflow = ctx.trigger.workflow
    decision = merge_channel(
        default=workflow.channel_defaults.get(channel.value, True),
        read_only=workflow.read_only,
        critical=workflow.critical,
        subscriber_global=chosen_globally.get(channel),
        subscriber_workflow=chosen_here.get(channel),
    )
    if decision.enabled:
        return None
    return skipped(f"{channel.value} is off for this subscriber ({decision.reason.value})")


async def _record(job: Job, outcome: Outcome, started: float) -> bool:
    """Write the outcome and this run's execution detail in one update, if we still hold the job (same attempt,
    still running); a worker that lost its lease only logs what it would have written."""
    execution = ExecutionDetail(
        attempt=job.attempts,
        status=outcome.status,
        reason=outcome.reason,
        detail=outcome.detail,
        duration_ms=int((time.perf_counter() - started) * 1000),
    )
    update: dict[str, Any] = {
        "status": outcome.status,
        "reason": outcome.reason,
        "updated_at": execution.created_at,
        "lease_until": None,
        "output": outcome.output,
    }
    if outcome.status == JobStatus.DELAYED:
        update["due_at"] = outcome.due_at
    update |= await outcome_fields(job, outcome.status, outcome.due_at, execution.created_at)
    held = await Job.get_pymongo_collection().update_one(
        {"_id": job.id, "status": JobStatus.RUNNING, "attempts": job.attempts},
        {"$set": update, "$push": {"executions": execution.model_dump()}},
    )
    if not held.modified_count:
        logger.warning("job %s was taken over while attempt %d ran; its outcome is dropped", job.id, job.attempts)
    else:
        _log_outcome(outcome, execution)
    return bool(held.modified_count)


def _log_outcome(outcome: Outcome, execution: ExecutionDetail) -> None:
    """One line per step run, a failure or a retry at WARNING. The reason may quote a provider's answer (an SMTP
    reply can name the recipient's address: personal data, kept because operators need it to act), never the
    rendered message; credentials in it are scrubbed by the log processors (app.logs)."""
    retrying = outcome.status == JobStatus.DELAYED and "error" in outcome.detail
    fields: dict[str, Any] = {
        "status": outcome.status.value,
        "reason": outcome.reason,
        "attempt": execution.attempt,
        "durationMs": execution.duration_ms,
    }
    fields.update((key, outcome.detail[key]) for key in ("provider", "kind") if key in outcome.detail)
    level = logging.WARNING if outcome.status == JobStatus.FAILED or retrying else logging.INFO
    logger.log(level, "step %s", "retrying" if retrying else outcome.status.value, extra=fields)


async def _follow_up(job: Job, trigger: Trigger | None, outcome: Outcome, deps: EngineDeps) -> None:
    if outcome.status in _ENDS_NOTIFICATION:
        await _finish_notification(job, _ENDS_NOTIFICATION[outcome.status], deps)
        return
    if outcome.status not in _CONTINUES or trigger is None:
        return  # parked: the scheduler wakes it at `due_at`
    following = job.step_index + 1
    if outcome.stops_workflow or following >= len(trigger.workflow.steps):
        await _finish_notification(job, NotificationStatus.COMPLETED, deps)
        return
    if await Trigger.find({"_id": job.trigger_id, "status": TriggerStatus.CANCELED}).count():
        # Canceled while this step ran: the cancel could not see a next job that did not exist yet.
        await _finish_notification(job, NotificationStatus.CANCELED, deps)
        return
    step = trigger.workflow.steps[following]
    now = utcnow()
    next_job = Job(
        id=PydanticObjectId(),
        environment_id=job.environment_id,
        trigger_id=job.trigger_id,
        notification_id=job.notification_id,
        transaction_id=job.transaction_id,
        workflow_id=job.workflow_id,
        subscriber_id=job.subscriber_id,
        step_index=following,
        step_id=step["step_id"],
        step_type=step["type"],
        status=JobStatus.QUEUED,
        queued_at=now,
    )
    await wake(deps.queue, await insert_new([next_job]))


_WORKFLOW_EVENTS = {
    NotificationStatus.COMPLETED: WebhookEventType.WORKFLOW_COMPLETED,
    NotificationStatus.FAILED: WebhookEventType.WORKFLOW_FAILED,
}


async def _finish_notification(job: Job, status: NotificationStatus, deps: EngineDeps) -> None:
    now = utcnow()
    finished = await Notification.get_pymongo_collection().update_one(
        {"_id": job.notification_id, "status": NotificationStatus.PENDING},
        {"$set": {"status": status, "updated_at": now, **await finished_notification_fields(job.environment_id, now)}},
    )
    event = _WORKFLOW_EVENTS.get(status)
    if finished.modified_count and event is not None:  # once per notification, by whichever run finished it
        data = {
            "notificationId": str(job.notification_id),
            "transactionId": job.transaction_id,
            "workflowId": job.workflow_id,
            "subscriberId": job.subscriber_id,
            "status": status.value,
            "lastStepId": job.step_id,
        }
        await emit(job.environment_id, event.value, data, deps.queue)
