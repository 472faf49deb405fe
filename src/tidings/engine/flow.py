"""The steps that shape the flow rather than deliver: delay, digest and throttle."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from tidings.engine.context import StepContext, lookup
from tidings.engine.outcome import Outcome, completed, failed, parked, skipped
from tidings.notifications.documents import Digest, DigestStatus, JobStatus, ThrottleWindow
from tidings.notifications.retention import trigger_expiry
from tidings.workflows.steps import DelayStep, DigestStep, DigestStrategy, ThrottleStep, to_timedelta

_MAX_EVENTS_KEPT = 1000  # a digest stores at most this many payloads (the count keeps counting)


def _resumed(ctx: StepContext) -> bool:
    """This run is the wake-up of a job that parked itself (it has a due time that has come)."""
    return ctx.job.due_at is not None and ctx.job.due_at <= ctx.now


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


async def run_delay(ctx: StepContext, step: DelayStep) -> Outcome:
    if _resumed(ctx):
        return completed(waited_until=ctx.job.due_at)
    if step.until_path is not None:
        due = _parse_time(lookup(ctx.data(), step.until_path))
        if due is None:
            return failed(f"{step.until_path} is not a timestamp (ISO 8601 or Unix seconds)")
    else:
        assert step.amount is not None
        assert step.unit is not None
        due = ctx.now + to_timedelta(step.amount, step.unit)
    if due <= ctx.now:
        return completed(waited_until=due)
    return parked(due, f"delayed until {due.isoformat()}")


def _key_value(ctx: StepContext, path: str | None) -> str:
    return "" if path is None else str(lookup(ctx.data(), path))


def _scope(ctx: StepContext, key_value: str) -> dict[str, Any]:
    return {
        "environment_id": ctx.job.environment_id,
        "workflow_id": ctx.job.workflow_id,
        "subscriber_id": ctx.job.subscriber_id,
        "step_id": ctx.job.step_id,
        "key_value": key_value,
    }


def _event(ctx: StepContext) -> dict[str, Any]:
    return {"payload": ctx.trigger.payload, "transactionId": ctx.job.transaction_id, "at": ctx.now.isoformat()}


async def run_digest(ctx: StepContext, step: DigestStep) -> Outcome:
    if _resumed(ctx):
        return await _close_digest(ctx)
    key_value = _key_value(ctx, step.digest_key)
    scope = _scope(ctx, key_value)
    if step.strategy is DigestStrategy.BACKOFF:
        window = (step.backoff_window or step.window).to_timedelta()
        recent = await Digest.find({**scope, "created_at": {"$gte": ctx.now - window}}).limit(1).to_list()
        if not recent:
            # Quiet lately: this event goes out at once; it opens the backoff window for the next ones.
            await Digest(
                **scope,
                status=DigestStatus.CLOSED,
                leader_job_id=ctx.job.id,
                events=[_event(ctx)],
                event_count=1,
                window_ends_at=ctx.now,
                expires_at=await trigger_expiry(ctx.job.environment_id, ctx.now),
            ).insert()
            return completed({"events": [_event(ctx)], "count": 1}, strategy="backoff", sent_at_once=True)
    return await _join_digest(ctx, scope, step.window.to_timedelta())


async def _join_digest(ctx: StepContext, scope: dict[str, Any], window: timedelta) -> Outcome:
    """One atomic upsert on the open digest of this key: the first event creates it and leads, later ones join."""
    update = {
        "$push": {"events": {"$each": [_event(ctx)], "$slice": _MAX_EVENTS_KEPT}},
        "$inc": {"event_count": 1},
        "$setOnInsert": {"leader_job_id": ctx.job.id, "window_ends_at": ctx.now + window, "created_at": ctx.now},
    }
    collection = Digest.get_pymongo_collection()
    digest = None
    for _ in range(5):
        # Two first events racing: one inserts, the other hits the unique index (or, on SecantusDB, gets no
        # document back) and tries again, now joining the digest the first one opened.
        with contextlib.suppress(DuplicateKeyError):
            digest = await collection.find_one_and_update(
                {**scope, "status": DigestStatus.OPEN}, update, upsert=True, return_document=ReturnDocument.AFTER
            )
        if digest is not None:
            break
        # No document back may still mean the update was applied (SecantusDB under concurrency): joining again
        # would count this event twice, so look for it first (one job per transaction in a digest's scope).
        digest = await collection.find_one(
            {**scope, "status": DigestStatus.OPEN, "events.transactionId": ctx.job.transaction_id}
        )
        if digest is not None:
            break
    if digest is None:
        return failed("could not join the open digest")
    if digest["leader_job_id"] == ctx.job.id:
        return parked(digest["window_ends_at"], "digesting", output={"digest_id": str(digest["_id"])})
    return Outcome(JobStatus.MERGED, reason=f"merged into the digest led by job {digest['leader_job_id']}")


async def _close_digest(ctx: StepContext) -> Outcome:
    digest = await Digest.get_pymongo_collection().find_one_and_update(
        {"leader_job_id": ctx.job.id, "status": DigestStatus.OPEN},
        {"$set": {"status": DigestStatus.CLOSED, "expires_at": await trigger_expiry(ctx.job.environment_id, ctx.now)}},
        return_document=ReturnDocument.AFTER,
    )
    if digest is None:  # closed by an earlier run of this job that died before recording its outcome
        digest = await Digest.get_pymongo_collection().find_one({"leader_job_id": ctx.job.id})
        if digest is None:
            return failed("the digest of this job is gone")
    return completed({"events": digest["events"], "count": digest["event_count"]})


async def run_throttle(ctx: StepContext, step: ThrottleStep) -> Outcome:
    window = step.window.to_timedelta()
    seconds = window.total_seconds()
    start = datetime.fromtimestamp(ctx.now.timestamp() // seconds * seconds, UTC)
    count = await _hit(
        {**_scope(ctx, _key_value(ctx, step.key)), "window_start": start},
        {"$inc": {"hits": 1}, "$setOnInsert": {"expires_at": start + window + timedelta(minutes=1)}},
    )
    if count > step.threshold:
        return skipped(f"throttled: {count} events in this window, {step.threshold} allowed", stops_workflow=True)
    return completed({"count": count, "threshold": step.threshold})


async def _hit(query: dict[str, Any], update: dict[str, Any]) -> int:
    collection = ThrottleWindow.get_pymongo_collection()
    for _ in range(5):  # a concurrent first hit of the window: retry and land on the document it created
        with contextlib.suppress(DuplicateKeyError):
            counter = await collection.find_one_and_update(
                query, update, upsert=True, return_document=ReturnDocument.AFTER
            )
            if counter is not None:
                return int(counter["hits"])
    raise RuntimeError("could not count this event in its throttle window")
