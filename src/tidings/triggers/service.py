"""Accept triggers: validate, record once per transactionId, and queue the fan-out. Cancel them."""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from jsonschema import Draft202012Validator
from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.core.errors import NotFoundError, TidingsError, UnavailableError, ValidationError
from tidings.core.inserts import refused_as_duplicates
from tidings.core.limits import Limits
from tidings.core.queue import QueueUnavailableError, TaskQueue
from tidings.core.validation import field_path
from tidings.notifications.documents import (
    OPEN_JOB_STATUSES,
    Job,
    JobStatus,
    Notification,
    NotificationStatus,
    Recipient,
    Trigger,
    TriggerStatus,
    WorkflowSnapshot,
)
from tidings.notifications.retention import finished_job_fields, finished_notification_fields, trigger_expiry
from tidings.notifications.service import PROCESS_TRIGGER_TASK
from tidings.subscribers.endpoints import put_endpoint
from tidings.subscribers.service import bulk_upsert_subscribers
from tidings.triggers.commands import To, TriggerEvent
from tidings.triggers.metrics import count_accepted, count_rejected
from tidings.workflows.documents import Workflow
from tidings.workflows.service import get_workflow


@dataclass(frozen=True, slots=True)
class TriggerResult:
    transaction_id: str
    status: TriggerStatus
    duplicate: bool  # the transactionId was seen before: this call created nothing


def snapshot(workflow: Workflow) -> WorkflowSnapshot:
    return WorkflowSnapshot(
        workflow_id=workflow.workflow_id,
        name=workflow.name,
        critical=workflow.critical,
        read_only=workflow.preferences.read_only,
        tags=list(workflow.tags),
        channel_defaults={channel.value: enabled for channel, enabled in workflow.preferences.channels.items()},
        steps=[step.model_dump(mode="json") for step in workflow.steps],
    )


def _check_payload(workflow: Workflow, payload: dict[str, Any], limits: Limits, prefix: str) -> None:
    size = len(json.dumps(payload, default=str).encode())
    if size > limits.payload_bytes:
        raise ValidationError(
            f"payload is {size} bytes; the limit is {limits.payload_bytes}", field=field_path(("payload",), prefix)
        )
    if workflow.payload_schema is None:
        return
    error = next(iter(Draft202012Validator(workflow.payload_schema).iter_errors(payload)), None)
    if error is not None:
        # The payload's own keys are the caller's, named as sent (not camel-cased like our input fields).
        location = [field_path(("payload",), prefix), *map(str, error.absolute_path)]
        raise ValidationError(error.message, field=".".join(location))


async def _prepare(
    environment_id: PydanticObjectId,
    event: TriggerEvent,
    limits: Limits,
    prefix: str,
    workflows: dict[str, Workflow] | None = None,
) -> tuple[Workflow, list[Recipient]]:
    """Everything that can refuse the event, before anything is written. `workflows` keeps the ones already read
    by this call, so a bulk of events for one workflow reads it once."""
    if len(event.to) > limits.trigger_recipients_max:
        raise ValidationError(
            f"send 1 to {limits.trigger_recipients_max} recipients", field=field_path(("to",), prefix)
        )
    workflows = {} if workflows is None else workflows
    try:
        workflow = workflows.get(event.workflow_id) or await get_workflow(environment_id, event.workflow_id)
    except NotFoundError:
        raise NotFoundError(
            f"workflow {event.workflow_id!r} not found", field=field_path(("workflowId",), prefix)
        ) from None
    workflows[event.workflow_id] = workflow
    _check_payload(workflow, event.payload, limits, prefix)
    return workflow, [_recipient(item) for item in event.to]


def _recipient(item: To) -> Recipient:
    if item.all_subscribers:
        return Recipient(all_subscribers=True)
    if item.topic_key is not None:
        return Recipient(topic_key=item.topic_key, exclude=item.exclude or [])
    return Recipient(subscriber_id=item.subscriber.subscriber_id if item.subscriber else item.subscriber_id)


async def accept_trigger(
    environment_id: PydanticObjectId, event: TriggerEvent, queue: TaskQueue, limits: Limits, prefix: str = "input"
) -> TriggerResult:
    try:
        result = await _accept(environment_id, event, queue, limits, prefix)
    except Exception as exc:
        count_rejected(1, exc)
        raise
    count_accepted([result])
    return result


async def _accept(
    environment_id: PydanticObjectId, event: TriggerEvent, queue: TaskQueue, limits: Limits, prefix: str
) -> TriggerResult:
    """Record the trigger (once per transactionId) and queue its fan-out.

    If the queue is down the trigger is kept and the caller gets UNAVAILABLE: the scheduler queues it when the
    queue is back, and a retry with the same transactionId creates nothing new.
    """
    workflow, recipients = await _prepare(environment_id, event, limits, prefix)
    await _write_inline(environment_id, event, limits, prefix)
    trigger = await _record(environment_id, event, workflow, recipients)
    try:
        await trigger.insert()
    except DuplicateKeyError:
        return await _first(environment_id, trigger.transaction_id)
    await _enqueue(trigger, queue)
    return TriggerResult(transaction_id=trigger.transaction_id, status=trigger.status, duplicate=False)


async def _write_inline(environment_id: PydanticObjectId, event: TriggerEvent, limits: Limits, prefix: str) -> None:
    """Upsert the event's inline subscribers with the endpoints they bring, before its trigger is recorded."""
    inline = [item.subscriber for item in event.to if item.subscriber is not None]
    if inline:
        await bulk_upsert_subscribers(environment_id, inline, limits)
    for index, item in enumerate(event.to):
        for place, endpoint in enumerate(item.endpoints or []):
            assert item.subscriber is not None  # To refuses endpoints without one
            try:
                await put_endpoint(environment_id, item.subscriber.subscriber_id, endpoint)
            except ValidationError as exc:  # too many endpoints or tokens: named as the event has the endpoint
                where = field_path(("to", index, "endpoints", place), prefix)
                raise ValidationError(exc.message, field=where) from None


async def _record(
    environment_id: PydanticObjectId, event: TriggerEvent, workflow: Workflow, recipients: list[Recipient]
) -> Trigger:
    return Trigger(
        id=PydanticObjectId(),
        environment_id=environment_id,
        transaction_id=event.transaction_id or uuid.uuid4().hex,
        workflow=snapshot(workflow),
        to=recipients,
        payload=event.payload,
        overrides=event.overrides,
        actor=event.actor,
        tenant=event.tenant,
        expires_at=await trigger_expiry(environment_id, utcnow()),  # cached per process: no round trip each
    )


async def _first(environment_id: PydanticObjectId, transaction_id: str) -> TriggerResult:
    first = await Trigger.find_one({"environment_id": environment_id, "transaction_id": transaction_id})
    assert first is not None
    return TriggerResult(transaction_id=first.transaction_id, status=first.status, duplicate=True)


async def _enqueue(trigger: Trigger, queue: TaskQueue) -> None:
    try:
        await queue.enqueue(PROCESS_TRIGGER_TASK, str(trigger.id))
    except QueueUnavailableError:
        raise UnavailableError(
            f"the task queue is unavailable; trigger {trigger.transaction_id!r} is recorded and runs when the queue "
            "is back; retrying with the same transactionId creates nothing new"
        ) from None


async def accept_triggers(
    environment_id: PydanticObjectId, events: Sequence[TriggerEvent], queue: TaskQueue, limits: Limits
) -> list[TriggerResult]:
    """Validate every event first (nothing is recorded if one is refused), record them in one bulk insert, then
    queue each: a hundred events cost a few round trips to MongoDB, not several hundred (docs/benchmarks.md)."""
    results: list[TriggerResult] = []
    try:
        _check_bulk_size(len(events), limits)
        workflows: dict[str, Workflow] = {}
        prepared = [
            (event, *await _prepare(environment_id, event, limits, f"input.events.{index}", workflows))
            for index, event in enumerate(events)
        ]
        for index, event in enumerate(events):
            await _write_inline(environment_id, event, limits, f"input.events.{index}")
        await _record_all(environment_id, prepared, queue, results)
    except Exception as exc:
        # Events accepted before the failure stay accepted (the queue went down mid-way); the rest were refused.
        count_rejected(len(events) - len(results), exc)
        raise
    finally:
        count_accepted(results)
    return results


async def accept_each(
    environment_id: PydanticObjectId, events: Sequence[TriggerEvent], queue: TaskQueue, limits: Limits
) -> list[TriggerResult | TidingsError]:
    """Each event accepted or refused on its own (Novu's bulk trigger); the accepted ones recorded together. A
    refusal names its field within its event (`workflowId`, `payload.text`): the caller knows the event's place."""
    _check_bulk_size(len(events), limits, "events")
    workflows: dict[str, Workflow] = {}
    outcomes: dict[int, TriggerResult | TidingsError] = {}
    prepared: list[tuple[TriggerEvent, Workflow, list[Recipient]]] = []
    places: list[int] = []
    for index, event in enumerate(events):
        try:
            ready = (event, *await _prepare(environment_id, event, limits, "", workflows))
            await _write_inline(environment_id, event, limits, "")
            prepared.append(ready)
            places.append(index)
        except TidingsError as exc:
            count_rejected(1, exc)
            outcomes[index] = exc
    results: list[TriggerResult] = []
    try:
        await _record_all(environment_id, prepared, queue, results)
    except Exception as exc:
        count_rejected(len(prepared) - len(results), exc)
        raise
    finally:
        count_accepted(results)
    outcomes.update(zip(places, results, strict=True))
    return [outcomes[index] for index in range(len(events))]


def _check_bulk_size(count: int, limits: Limits, field: str = "input.events") -> None:
    if not 1 <= count <= limits.bulk_trigger_max:
        raise ValidationError(f"send 1 to {limits.bulk_trigger_max} events", field=field)


async def _record_all(
    environment_id: PydanticObjectId,
    prepared: Sequence[tuple[TriggerEvent, Workflow, list[Recipient]]],
    queue: TaskQueue,
    results: list[TriggerResult],
) -> None:
    """Record prepared events in one bulk insert and queue each, appending to `results` as they are accepted."""
    if not prepared:
        return
    triggers = [await _record(environment_id, event, workflow, recipients) for event, workflow, recipients in prepared]
    # A transactionId seen before, or earlier in this call, is refused by the unique index: a duplicate.
    repeated = await refused_as_duplicates(Trigger.insert_many(triggers, ordered=False))
    for index, trigger in enumerate(triggers):
        if index in repeated:
            results.append(await _first(environment_id, trigger.transaction_id))
        else:
            await _enqueue(trigger, queue)
            results.append(TriggerResult(trigger.transaction_id, trigger.status, duplicate=False))


def with_derived_transaction_id(event: TriggerEvent, idempotency_seed: str | None, place: str) -> TriggerEvent:
    """A trigger sent without a transactionId under an Idempotency-Key gets one derived from the key and its `place`
    in the request, so retrying the request finds what the first attempt recorded even when its answer was lost."""
    if idempotency_seed is None or event.transaction_id is not None:
        return event
    derived = hashlib.sha256(f"{idempotency_seed}|{place}".encode()).hexdigest()[:40]
    return event.model_copy(update={"transaction_id": f"idem-{derived}"})


async def cancel_trigger(environment_id: PydanticObjectId, transaction_id: str) -> int:
    """Cancel every job of the trigger that has not run yet (pending, queued, delayed, digesting): how many."""
    trigger = await Trigger.get_pymongo_collection().find_one_and_update(
        {"environment_id": environment_id, "transaction_id": transaction_id},
        {"$set": {"status": TriggerStatus.CANCELED, "updated_at": utcnow()}},
    )
    if trigger is None:
        raise NotFoundError(f"no trigger with transactionId {transaction_id!r}", field="transactionId")
    scope = {"environment_id": environment_id, "transaction_id": transaction_id}
    now = utcnow()
    canceled = await Job.get_pymongo_collection().update_many(
        {**scope, "status": {"$in": list(OPEN_JOB_STATUSES)}},
        {
            "$set": {
                "status": JobStatus.CANCELED,
                "reason": "canceled",
                "updated_at": now,
                **await finished_job_fields(environment_id, now),
            }
        },
    )
    await Notification.get_pymongo_collection().update_many(
        {**scope, "status": NotificationStatus.PENDING},
        {
            "$set": {
                "status": NotificationStatus.CANCELED,
                "updated_at": now,
                **await finished_notification_fields(environment_id, now),
            }
        },
    )
    return int(canceled.modified_count)
