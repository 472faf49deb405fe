"""A subscriber's preferences as Novu has them: v2 (the global choice and every workflow's effective channels, what
`@novu/api` 3.x calls) and v1 (older SDKs and raw HTTP: a list per workflow, the global row, one workflow's)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, StrictBool, model_validator
from starlette.responses import Response

from tidings.core.channels import Channel
from tidings.preferences import service
from tidings.preferences.merge import Reason
from tidings.rest.bodies import NovuBody
from tidings.rest.http import Call, RefusedError, iso, ok

_SUBSCRIBER_REASONS = {Reason.SUBSCRIBER_GLOBAL, Reason.SUBSCRIBER_WORKFLOW}
_LEVELS = ("global", "template")


class ChannelChoices(NovuBody):
    """Novu's channel keys, `in_app` included (the SDK's `inApp` is sent so); absent = unchanged."""

    email: bool | None = None
    sms: bool | None = None
    in_app: bool | None = None
    push: bool | None = None
    chat: bool | None = None

    model_config = ConfigDict(extra="forbid")

    def chosen(self) -> dict[Channel, bool]:
        sent = self.model_dump(exclude_unset=True)
        return {Channel(name): value for name, value in sent.items() if value is not None}


class PreferencesBody(NovuBody):
    channels: ChannelChoices | None = None
    workflow_id: str | None = None
    schedule: dict[str, Any] | None = None  # Novu's delivery schedule: refused below, not stored
    context: dict[str, Any] | None = None  # Novu's context keys: accepted, not used


class WorkflowChoices(NovuBody):
    workflow_id: str
    channels: ChannelChoices


class BulkPreferencesBody(NovuBody):
    preferences: list[WorkflowChoices]
    context: dict[str, Any] | None = None  # Novu's context keys: accepted, not used


class ChannelPreference(NovuBody):
    """v1's `{type, enabled}` for one channel."""

    type: Literal["in_app", "email", "sms", "push", "chat"]
    enabled: StrictBool


class GlobalBodyV1(NovuBody):
    enabled: StrictBool | None = None
    preferences: list[ChannelPreference] = Field(default_factory=list, max_length=len(Channel))


class WorkflowBodyV1(NovuBody):
    channel: ChannelPreference | None = None
    enabled: StrictBool | None = None

    @model_validator(mode="after")
    def _something(self) -> WorkflowBodyV1:
        if self.channel is None and self.enabled is None:
            raise ValueError("send channel or enabled")
        return self


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
    channels: dict[Channel, bool | None] = dict(body.channels.chosen()) if body.channels else {}
    if body.workflow_id is None:
        await service.set_subscriber_preference(call.environment_id, subscriber_id, None, channels)
    else:  # by identifier or database id, as Novu takes it
        choice = [(body.workflow_id, channels)]
        await service.set_workflow_preferences(call.environment_id, subscriber_id, choice, call.options.limits)
    return ok(await _preferences(call, subscriber_id))


async def update_bulk(call: Call) -> Response:
    """`PATCH /v2/subscribers/{id}/preferences/bulk`: several workflows' channels; an unknown workflow records none."""
    body = await call.body(BulkPreferencesBody)
    choices = [(one.workflow_id, one.channels.chosen()) for one in body.preferences]
    answers = await service.set_workflow_preferences(
        call.environment_id, call.path("subscriberId"), choices, call.options.limits
    )
    return ok(
        [
            {
                "level": "template",
                "enabled": one.enabled,
                "channels": _channels(one),
                "workflow": {
                    "id": str(one.workflow.id),
                    "identifier": one.workflow.workflow_id,
                    "name": one.workflow.name,
                    "critical": one.workflow.critical,
                    "severity": "none",
                    "tags": one.workflow.tags,
                },
            }
            for one in answers
        ]
    )


async def preferences_v1(call: Call) -> Response:
    """`GET /v1/subscribers/{id}/preferences`: every workflow's preference."""
    every = await service.every_effective_preference(call.environment_id, call.path("subscriberId"))
    return ok([_template_v1(one) for one in every])


async def preferences_by_level_v1(call: Call) -> Response:
    """`GET /v1/subscribers/{id}/preferences/{parameter}`: the level, `global` (the global row, in a list) or
    `template`."""
    level = call.path("parameter")
    if level not in _LEVELS:
        message = f"level must be one of {', '.join(_LEVELS)}"
        raise RefusedError(422, message, errors={"parameter": {"messages": [message], "value": level}})
    if level == "template":
        return await preferences_v1(call)
    return ok([await _global_v1(call, call.path("subscriberId"))])


async def update_global_v1(call: Call) -> Response:
    """`PATCH /v1/subscribers/{id}/preferences`: `enabled` turns everything off or back on, `preferences` sets
    channels."""
    body = await call.body(GlobalBodyV1)
    subscriber_id = call.path("subscriberId")
    channels = {Channel(one.type): one.enabled for one in body.preferences}
    await service.set_subscriber_preference(call.environment_id, subscriber_id, None, channels, body.enabled)
    return ok(await _global_v1(call, subscriber_id))


async def update_workflow_v1(call: Call) -> Response:
    """`PATCH /v1/subscribers/{id}/preferences/{parameter}`, the parameter a workflow's identifier or `_id`: one
    channel and/or the whole workflow on or off."""
    body = await call.body(WorkflowBodyV1)
    channels: dict[Channel, bool | None] = {Channel(body.channel.type): body.channel.enabled} if body.channel else {}
    [answer] = await service.set_workflow_preferences(
        call.environment_id,
        call.path("subscriberId"),
        [(call.path("parameter"), channels)],
        call.options.limits,
        enabled=body.enabled,
    )
    return ok(_template_v1(answer))


def _channels(one: service.EffectivePreference) -> dict[str, bool]:
    return {channel.value: decision.enabled for channel, decision in one.channels.items()}


def _overrides(one: service.EffectivePreference) -> list[dict[str, str]]:
    return [
        {"channel": channel.value, "source": "subscriber"}
        for channel, decision in one.channels.items()
        if decision.reason in _SUBSCRIBER_REASONS
    ]


def _workflow(one: service.EffectivePreference) -> dict[str, Any]:
    return {
        "enabled": one.enabled,
        "channels": _channels(one),
        "overrides": _overrides(one),
        "workflow": {
            "slug": one.workflow.workflow_id,
            "identifier": one.workflow.workflow_id,
            "name": one.workflow.name,
            "updatedAt": iso(one.workflow.updated_at),
        },
    }


def _template_v1(one: service.EffectivePreference) -> dict[str, Any]:
    return {
        "template": {
            "_id": str(one.workflow.id),
            "name": one.workflow.name,
            "critical": one.workflow.critical,
            "triggers": [{"type": "event", "identifier": one.workflow.workflow_id, "variables": []}],
        },
        "preference": {"enabled": one.enabled, "channels": _channels(one), "overrides": _overrides(one)},
    }


async def _global(call: Call, subscriber_id: str) -> dict[str, Any]:
    row = await service.get_global_preference(call.environment_id, subscriber_id)
    return {"enabled": row.enabled, "channels": {channel.value: row.channels.get(channel, True) for channel in Channel}}


async def _global_v1(call: Call, subscriber_id: str) -> dict[str, Any]:
    return {"preference": await _global(call, subscriber_id)}


async def _preferences(call: Call, subscriber_id: str) -> dict[str, Any]:
    every = await service.every_effective_preference(call.environment_id, subscriber_id)
    return {"global": await _global(call, subscriber_id), "workflows": [_workflow(one) for one in every]}
