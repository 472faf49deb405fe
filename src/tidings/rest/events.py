"""`/v1/events/trigger…`: trigger, bulk trigger, broadcast and cancel, as Novu's API has them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import Field
from starlette.responses import Response

from tidings.core.errors import NotFoundError, TidingsError, ValidationError
from tidings.core.validation import validated
from tidings.environments.ratelimits import RateClass
from tidings.rest.bodies import NovuBody, SubscriberPayload, TriggerSubscriber
from tidings.rest.http import Call, RefusedError, ok, refused
from tidings.rest.providers import novu_endpoint
from tidings.triggers import service
from tidings.triggers.commands import TriggerEvent
from tidings.triggers.service import TriggerResult


class TopicTarget(NovuBody):
    topic_key: str
    type: Literal["Topic"] = "Topic"
    exclude: list[str] | None = None


class Tenant(NovuBody):
    identifier: str | None = None
    name: str | None = None
    data: dict[str, Any] | None = None


type Recipient = str | TriggerSubscriber | TopicTarget


class EventFields(NovuBody):
    payload: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)
    transaction_id: str | None = None
    actor: str | SubscriberPayload | None = None
    tenant: str | Tenant | None = None
    context: dict[str, Any] | None = None  # Novu's context keys: accepted, not used


class EventBody(EventFields):
    """Novu's TriggerEventRequestDto. `name` is the workflow id (the SDK's `workflowId` goes out as `name`)."""

    name: str
    to: Recipient | list[Recipient]
    bridge_url: str | None = None  # Novu's bridge for code-first workflows: accepted, not used


class BroadcastBody(EventFields):
    name: str
    payload: dict[str, Any]


class BulkBody(NovuBody):
    events: list[EventBody]


async def _recipient(call: Call, recipient: Recipient, place: str) -> dict[str, Any]:
    match recipient:
        case str():
            return {"subscriber_id": recipient}
        case TriggerSubscriber():
            if not recipient.channels:
                return {"subscriber": recipient.sent()}
            endpoints = [
                await novu_endpoint(call.environment_id, one, f"{place}.channels.{index}")
                for index, one in enumerate(recipient.channels)
            ]
            return {"subscriber": recipient.sent(), "endpoints": endpoints}
        case TopicTarget():
            return {"topic_key": recipient.topic_key, "exclude": recipient.exclude}


def _event(body: EventFields, workflow_id: str, to: list[dict[str, Any]], prefix: str) -> TriggerEvent:
    data = {
        "workflow_id": workflow_id,
        "to": to,
        "payload": body.payload,
        "overrides": body.overrides,
        "actor": body.actor.subscriber_id if isinstance(body.actor, SubscriberPayload) else body.actor,
        "tenant": body.tenant.identifier if isinstance(body.tenant, Tenant) else body.tenant,
        "transaction_id": body.transaction_id,
    }
    return validated(TriggerEvent, data, prefix=prefix)


async def _trigger_event(call: Call, body: EventBody) -> TriggerEvent:
    """The event, an inline subscriber's `channels` resolved to the environment's integrations. A single recipient
    is named `to.0` in errors, as the domain names it."""
    recipients = body.to if isinstance(body.to, list) else [body.to]
    to = [await _recipient(call, one, f"to.{index}") for index, one in enumerate(recipients)]
    return _event(body, body.name, to, "")


def _novu_field(exc: TidingsError) -> str:
    """Named as the body has it: the workflow is `name`, an inline subscriber's fields sit on the recipient itself,
    and the endpoints it brings are its `channels`."""
    field = (exc.field or "").replace("workflowId", "name").replace(".subscriber.", ".")
    return field.replace(".endpoints.", ".channels.")


def _refused(exc: TidingsError) -> RefusedError:
    """Novu's answers: an unknown workflow is 422, a payload its schema refuses is 400 with `type` and `errors`."""
    field = _novu_field(exc)
    if isinstance(exc, NotFoundError) and field.endswith("name"):
        return refused(exc, status=422, field=field)
    if isinstance(exc, ValidationError) and "payload" in field.split("."):
        errors = [{"field": field, "message": exc.message}]
        return refused(exc, status=400, type="PAYLOAD_VALIDATION_ERROR", errors=errors)
    return refused(exc, field=field or None)


def _response(result: TriggerResult) -> dict[str, Any]:
    # Accepted is Novu's "processed": the fan-out runs from the queue either way.
    return {"acknowledged": True, "status": "processed", "transactionId": result.transaction_id}


async def trigger(call: Call) -> Response:
    body = await call.body(EventBody)
    return await _accept(call, lambda: _trigger_event(call, body), "event")


async def broadcast(call: Call) -> Response:
    body = await call.body(BroadcastBody)

    async def event() -> TriggerEvent:
        return _event(body, body.name, [{"all_subscribers": True}], "")

    return await _accept(call, event, "broadcast")


async def _accept(call: Call, event: Callable[[], Awaitable[TriggerEvent]], place: str) -> Response:
    """One event: converted (`event` raises what the body's values break), recorded, answered 201."""
    await call.spend(RateClass.TRIGGER)
    try:
        accepted = service.with_derived_transaction_id(await event(), call.idempotency_seed, place)
        result = await service.accept_trigger(call.environment_id, accepted, call.queue, call.options.limits, prefix="")
    except (ValidationError, NotFoundError) as exc:
        raise _refused(exc) from None
    return ok(_response(result), 201)


async def trigger_bulk(call: Call) -> Response:
    """Each event is accepted or refused on its own, as on Novu: a refused one is an item with status `error`."""
    body = await call.body(BulkBody)
    limit = call.options.limits.bulk_trigger_max
    if not 1 <= len(body.events) <= limit:
        message = f"send 1 to {limit} events"
        raise RefusedError(422, message, errors={"events": {"messages": [message]}})
    await call.spend(RateClass.TRIGGER, len(body.events))
    converted: list[TriggerEvent | TidingsError] = []
    for index, one in enumerate(body.events):
        try:
            event = await _trigger_event(call, one)
            converted.append(service.with_derived_transaction_id(event, call.idempotency_seed, f"events.{index}"))
        except ValidationError as exc:
            converted.append(exc)
    events = [one for one in converted if isinstance(one, TriggerEvent)]
    outcomes = iter(
        await service.accept_each(call.environment_id, events, call.queue, call.options.limits) if events else []
    )
    items = [one if isinstance(one, TidingsError) else next(outcomes) for one in converted]
    return ok([_item(one) for one in items], 201)


def _item(outcome: TriggerResult | TidingsError) -> dict[str, Any]:
    if isinstance(outcome, TriggerResult):
        return _response(outcome)
    field = _novu_field(outcome)
    return {
        "acknowledged": True,
        "status": "error",
        "error": [f"{field}: {outcome.message}" if field else outcome.message],
    }


async def cancel(call: Call) -> Response:
    """`true` when something was canceled; `false` (not 404) when nothing matched, as on Novu."""
    try:
        canceled = await service.cancel_trigger(call.environment_id, call.path("transactionId"))
    except NotFoundError:
        return ok(False)
    return ok(canceled > 0)
