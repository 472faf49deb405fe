"""GraphQL types of the workflows area."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry
from strawberry.scalars import JSON

from tidings.graphql.channels import Channel
from tidings.workflows.steps import DigestStrategy, TimeUnit

__all__ = ["DigestStrategy", "TimeUnit"]  # with the types below; import them from here so they are registered

# The domain enums themselves are registered (as with Channel), so resolvers take and return them unchanged.
strawberry.enum(TimeUnit, name="TimeUnit", description="Unit of a step's duration.")
strawberry.enum(
    DigestStrategy,
    name="DigestStrategy",
    description="REGULAR collects for the window after the first event; BACKOFF sends the first event at once and "
    "digests only events that follow it within the backoff window.",
)


@strawberry.type(description="An amount of time.")
class Duration:
    amount: int
    unit: TimeUnit


@strawberry.type(description="A button of an in-app notification.")
class StepAction:
    label: str
    url: str | None


@strawberry.interface(description="What every workflow step has.")
class Step:
    step_id: str = strawberry.field(description="Stable identifier of the step within its workflow.")
    active: bool = strawberry.field(description="An inactive step is skipped.")
    conditions: JSON | None = strawberry.field(
        description="JSON-logic over `payload`, `subscriber`, `steps`, `actor` and `tenant`; the step runs when true."
    )


@strawberry.type(description="Writes a message to the subscriber's in-app inbox.")
class InAppStep(Step):
    subject: str | None
    body: str
    avatar: str | None
    redirect_url: str | None
    primary_action: StepAction | None
    secondary_action: StepAction | None
    data: JSON | None


@strawberry.type(description="Sends an email; `body` is HTML, escaped when rendered.")
class EmailStep(Step):
    subject: str
    body: str
    layout: str | None = strawberry.field(description="Identifier of the layout the body is wrapped in.")


@strawberry.type(description="Sends a text message.")
class SmsStep(Step):
    body: str


@strawberry.type(description="Sends a push notification.")
class PushStep(Step):
    title: str
    body: str
    data: JSON | None


@strawberry.type(description="Posts to a chat channel (Slack, Discord, Teams…).")
class ChatStep(Step):
    body: str


@strawberry.type(description="Waits `amount` `unit`s, or until the timestamp at `untilPath` in the payload.")
class DelayStep(Step):
    amount: int | None
    unit: TimeUnit | None
    until_path: str | None


@strawberry.type(description="Collects events during `window` and continues once with all of them.")
class DigestStep(Step):
    window: Duration
    strategy: DigestStrategy
    backoff_window: Duration | None
    digest_key: str | None = strawberry.field(description="Path whose value separates digests, e.g. payload.postId.")


@strawberry.type(description="Lets at most `threshold` events through per `window`; the rest stop here.")
class ThrottleStep(Step):
    window: Duration
    threshold: int
    key: str | None = strawberry.field(description="Path whose value separates throttles, e.g. payload.deviceId.")


WorkflowStep = Annotated[
    InAppStep | EmailStep | SmsStep | PushStep | ChatStep | DelayStep | DigestStep | ThrottleStep,
    strawberry.union("WorkflowStep", description="One step of a workflow."),
]


@strawberry.type
class WorkflowChannelPreference:
    channel: Channel
    enabled: bool


@strawberry.type(description="Defaults for subscribers who chose nothing.")
class WorkflowPreferences:
    read_only: bool = strawberry.field(description="When true, subscribers cannot change these choices.")
    channels: list[WorkflowChannelPreference] = strawberry.field(description="Every channel, on or off.")


@strawberry.type(description="What happens, step by step, when an event is triggered.")
class Workflow:
    workflow_id: str = strawberry.field(description="The slug triggers name, unique in the environment.")
    name: str
    description: str | None
    tags: list[str]
    critical: bool = strawberry.field(
        description="Subscribers cannot turn off a channel that a critical workflow enables; they may still turn on "
        "one it disables."
    )
    payload_schema: JSON | None = strawberry.field(description="JSON Schema the trigger payload must satisfy.")
    preferences: WorkflowPreferences
    steps: list[WorkflowStep]
    created_at: datetime
    updated_at: datetime
