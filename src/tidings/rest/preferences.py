"""A subscriber's preferences as Novu's v2 API has them: the global choice and every workflow's effective channels."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict
from starlette.responses import Response

from tidings.core.channels import Channel
from tidings.core.pagination import PageRequest
from tidings.preferences import service
from tidings.preferences.merge import Reason
from tidings.rest.bodies import NovuBody
from tidings.rest.http import Call, RefusedError, iso, ok

# Workflows read per round trip while listing them all.
_PAGE = 100
_SUBSCRIBER_REASONS = {Reason.SUBSCRIBER_GLOBAL, Reason.SUBSCRIBER_WORKFLOW}


class ChannelChoices(NovuBody):
    """Novu's channel keys, `in_app` included (the SDK's `inApp` is sent so); absent = unchanged."""

    email: bool | None = None
    sms: bool | None = None
    in_app: bool | None = None
    push: bool | None = None
    chat: bool | None = None

    model_config = ConfigDict(extra="forbid")


class PreferencesBody(NovuBody):
    channels: ChannelChoices | None = None
    workflow_id: str | None = None
    schedule: dict[str, Any] | None = None  # Novu's delivery schedule: refused below, not stored
    context: dict[str, Any] | None = None  # Novu's context keys: accepted, not used


async def preferences(call: Call) -> Response:
    """`GET /v2/subscribers/{id}/preferences`."""
    return ok(await _preferences(call, call.path("subscriberId")))


async def update(call: Call) -> Response:
    """`PATCH /v2/subscribers/{id}/preferences`: the global choice, or one workflow's with `workflowId`."""
    body = await call.body(PreferencesBody)
    subscriber_id = call.path("subscriberId")
    if body.schedule is not None:
        message = "schedule is not supported (docs/novu-compat.md)"
        raise RefusedError(422, message, errors={"schedule": {"messages": [message]}})
    sent = body.channels.model_dump(exclude_unset=True) if body.channels else {}
    channels = {Channel(name): value for name, value in sent.items() if value is not None}
    await service.set_subscriber_preference(call.environment_id, subscriber_id, body.workflow_id, channels)
    return ok(await _preferences(call, subscriber_id))


def _workflow(one: service.EffectivePreference) -> dict[str, Any]:
    return {
        "enabled": True,
        "channels": {channel.value: decision.enabled for channel, decision in one.channels.items()},
        "overrides": [
            {"channel": channel.value, "source": "subscriber"}
            for channel, decision in one.channels.items()
            if decision.reason in _SUBSCRIBER_REASONS
        ],
        "workflow": {
            "slug": one.workflow.workflow_id,
            "identifier": one.workflow.workflow_id,
            "name": one.workflow.name,
            "updatedAt": iso(one.workflow.updated_at),
        },
    }


async def _preferences(call: Call, subscriber_id: str) -> dict[str, Any]:
    chosen = (await service.get_global_preference(call.environment_id, subscriber_id)).channels
    workflows: list[dict[str, Any]] = []
    request = PageRequest(first=_PAGE)
    while True:
        page = await service.effective_preferences(call.environment_id, subscriber_id, request)
        workflows.extend(_workflow(one) for one in page.items)
        if not page.has_next_page or page.end_cursor is None:
            break
        request = PageRequest.parse(_PAGE, page.end_cursor, default=_PAGE, maximum=_PAGE)
    return {
        "global": {"enabled": True, "channels": {channel.value: chosen.get(channel, True) for channel in Channel}},
        "workflows": workflows,
    }
