"""GraphQL inputs of the workflows area, and their conversion to domain commands."""

from __future__ import annotations

import dataclasses
from typing import Any

import strawberry
from strawberry.scalars import JSON

from tidings.graphql.channels import Channel
from tidings.graphql.workflows.types import DigestStrategy, TimeUnit
from tidings.workflows.commands import CreateWorkflow, UpdateWorkflow
from tidings.workflows.errors import parse_command

_TEMPLATE = "A Jinja2 template, compiled when saved."
_URL = "http(s) URL, path starting with /, or a template starting with {{ that renders to one."


@strawberry.input
class DurationInput:
    amount: int = strawberry.field(description="At least 1.")
    unit: TimeUnit


@strawberry.input
class StepActionInput:
    label: str = strawberry.field(description=_TEMPLATE)
    url: str | None = strawberry.field(default=None, description=_URL)


@strawberry.input
class StepFieldsInput:
    step_id: str | None = strawberry.field(
        default=None,
        description="Slug unique in the workflow. Omitted: made from the type (`email`, `email-2`…). Send a step's "
        "stepId back on update to keep its identity.",
    )
    active: bool = True
    conditions: JSON | None = strawberry.field(
        default=None, description="JSON-logic; `var` paths start with payload, subscriber, steps, actor or tenant."
    )


@strawberry.input
class InAppStepInput(StepFieldsInput):
    subject: str | None = strawberry.field(default=None, description=_TEMPLATE)
    body: str = strawberry.field(description=_TEMPLATE)
    avatar: str | None = strawberry.field(default=None, description=_URL)
    redirect_url: str | None = strawberry.field(default=None, description=_URL)
    primary_action: StepActionInput | None = None
    secondary_action: StepActionInput | None = None
    data: JSON | None = None


@strawberry.input
class EmailStepInput(StepFieldsInput):
    subject: str = strawberry.field(description=_TEMPLATE)
    body: str = strawberry.field(description="HTML; a Jinja2 template whose values are escaped.")
    layout: str | None = strawberry.field(default=None, description="Identifier of a layout.")


@strawberry.input
class SmsStepInput(StepFieldsInput):
    body: str = strawberry.field(description=_TEMPLATE)


@strawberry.input
class PushStepInput(StepFieldsInput):
    title: str = strawberry.field(description=_TEMPLATE)
    body: str = strawberry.field(description=_TEMPLATE)
    data: JSON | None = None


@strawberry.input
class ChatStepInput(StepFieldsInput):
    body: str = strawberry.field(description=_TEMPLATE)


@strawberry.input(description="Give amount and unit, or untilPath.")
class DelayStepInput(StepFieldsInput):
    amount: int | None = None
    unit: TimeUnit | None = None
    until_path: str | None = strawberry.field(default=None, description="e.g. payload.sendAt (an ISO 8601 time).")


@strawberry.input
class DigestStepInput(StepFieldsInput):
    window: DurationInput
    strategy: DigestStrategy = DigestStrategy.REGULAR
    backoff_window: DurationInput | None = strawberry.field(default=None, description="BACKOFF strategy only.")
    digest_key: str | None = strawberry.field(default=None, description="e.g. payload.postId.")


@strawberry.input
class ThrottleStepInput(StepFieldsInput):
    window: DurationInput
    threshold: int = strawberry.field(description="Events let through per window, at least 1.")
    key: str | None = strawberry.field(default=None, description="e.g. payload.deviceId.")


@strawberry.input(one_of=True, description="One step: set exactly one field.")
class StepInput:
    in_app: InAppStepInput | None = strawberry.UNSET
    email: EmailStepInput | None = strawberry.UNSET
    sms: SmsStepInput | None = strawberry.UNSET
    push: PushStepInput | None = strawberry.UNSET
    chat: ChatStepInput | None = strawberry.UNSET
    delay: DelayStepInput | None = strawberry.UNSET
    digest: DigestStepInput | None = strawberry.UNSET
    throttle: ThrottleStepInput | None = strawberry.UNSET


@strawberry.input
class WorkflowChannelPreferenceInput:
    channel: Channel
    enabled: bool


@strawberry.input
class WorkflowPreferencesInput:
    read_only: bool = False
    channels: list[WorkflowChannelPreferenceInput] = strawberry.field(
        default_factory=list, description="Channels not listed are enabled."
    )


@strawberry.input
class CreateWorkflowInput:
    workflow_id: str = strawberry.field(description="Slug: lowercase letters, digits and single dashes, 1 to 64.")
    name: str
    description: str | None = None
    tags: list[str] = strawberry.field(default_factory=list)
    critical: bool = False
    payload_schema: JSON | None = strawberry.field(default=None, description="A JSON Schema (draft 2020-12).")
    preferences: WorkflowPreferencesInput | None = None
    steps: list[StepInput] = strawberry.field(default_factory=list)


@strawberry.input(description="Only the fields given change; `steps`, when given, replaces every step.")
class UpdateWorkflowInput:
    name: str | None = strawberry.UNSET
    description: str | None = strawberry.UNSET
    tags: list[str] | None = strawberry.UNSET
    critical: bool | None = strawberry.UNSET
    payload_schema: JSON | None = strawberry.UNSET
    preferences: WorkflowPreferencesInput | None = strawberry.UNSET
    steps: list[StepInput] | None = strawberry.UNSET


def _plain(value: Any) -> Any:
    """Strawberry input → plain data, leaving out what the client did not send (UNSET)."""
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, StepInput):
        # The one-of field names the step type; the domain union is tagged by `type`.
        ((kind, step),) = ((name, item) for name, item in vars(value).items() if item not in (None, strawberry.UNSET))
        return {"type": kind, **_plain(step)}
    # Inputs are dataclasses; enum members are not (though they see their class's Strawberry definition).
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {name: _plain(item) for name, item in vars(value).items() if item is not strawberry.UNSET}
    return value


def to_create(value: CreateWorkflowInput) -> CreateWorkflow:
    # A null at the top level means "not given": the command's default applies.
    return parse_command(CreateWorkflow, {name: item for name, item in _plain(value).items() if item is not None})


def to_update(value: UpdateWorkflowInput) -> UpdateWorkflow:
    return parse_command(UpdateWorkflow, _plain(value))
