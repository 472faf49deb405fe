"""Mutations of the triggers area."""

from __future__ import annotations

import strawberry

from tidings.core.errors import ValidationError
from tidings.graphql.context import Info
from tidings.graphql.permissions import require_environment_id
from tidings.graphql.triggers.inputs import BulkTriggerInput, TriggerInput, to_event
from tidings.graphql.triggers.types import CancelTriggerResult, TriggerResult
from tidings.triggers import service
from tidings.triggers.commands import TriggerEvent


def _with_transaction_id(info: Info, event: TriggerEvent, index: int | None = None) -> TriggerEvent:
    place = ".".join(str(part) for part in info.path.as_list()) + ("" if index is None else f".{index}")
    return service.with_derived_transaction_id(event, info.context.idempotency_seed, place)


def _result(result: service.TriggerResult) -> TriggerResult:
    return TriggerResult(transaction_id=result.transaction_id, status=result.status, duplicate=result.duplicate)


@strawberry.type
class TriggerMutations:
    @strawberry.mutation(description="Start a workflow for subscribers, inline subscribers and topics.")
    async def trigger(self, info: Info, input: TriggerInput) -> TriggerResult:
        environment_id = await require_environment_id(info)
        event = _with_transaction_id(info, to_event(input))
        accepted = await service.accept_trigger(environment_id, event, info.context.queue, info.context.limits)
        return _result(accepted)

    @strawberry.mutation(description="Up to 100 triggers at once; nothing is recorded if one of them is refused.")
    async def bulk_trigger(self, info: Info, input: BulkTriggerInput) -> list[TriggerResult]:
        environment_id = await require_environment_id(info)
        limits = info.context.limits
        if len(input.events) > limits.bulk_trigger_max:  # before converting each event
            raise ValidationError(f"send 1 to {limits.bulk_trigger_max} events", field="input.events")
        events = [
            _with_transaction_id(info, to_event(event, f"input.events.{index}"), index)
            for index, event in enumerate(input.events)
        ]
        accepted = await service.accept_triggers(environment_id, events, info.context.queue, limits)
        return [_result(one) for one in accepted]

    @strawberry.mutation(description="Cancel every job of a trigger that has not run yet (delays and digests too).")
    async def cancel_trigger(self, info: Info, transaction_id: str) -> CancelTriggerResult:
        canceled = await service.cancel_trigger(await require_environment_id(info), transaction_id)
        return CancelTriggerResult(transaction_id=transaction_id, canceled_jobs=canceled)
