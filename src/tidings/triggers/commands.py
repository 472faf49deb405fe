"""The trigger command: what a backend sends to start a workflow for some recipients."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from tidings.subscribers.commands import (
    MAX_ENDPOINTS,
    SUBSCRIBER_ID,
    ChatEndpointInput,
    PushEndpointInput,
    UpsertSubscriber,
)

TRANSACTION_ID = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
# `@` too: Novu allows an email address as a topic key.
TOPIC_KEY = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:@-]{1,128}$")]
# Subscribers a topic recipient leaves out: a few (the author of a comment), not a second audience.
MAX_EXCLUDED = 100


class To(BaseModel):
    """One recipient: a subscriber id, a subscriber to upsert on the way, a topic (less the subscribers in
    `exclude`), or every subscriber of the environment (a broadcast) — exactly one."""

    model_config = ConfigDict(extra="forbid")

    subscriber_id: SUBSCRIBER_ID | None = None
    subscriber: UpsertSubscriber | None = None
    topic_key: TOPIC_KEY | None = None
    all_subscribers: Literal[True] | None = None
    exclude: list[SUBSCRIBER_ID] | None = Field(default=None, max_length=MAX_EXCLUDED)
    # What an inline subscriber brings along (Novu's `channels`): each replaces its endpoint for that integration,
    # and its endpoints of other integrations stay.
    endpoints: list[PushEndpointInput | ChatEndpointInput] | None = Field(default=None, max_length=MAX_ENDPOINTS)

    @model_validator(mode="after")
    def _exactly_one(self) -> To:
        kinds = ("subscriber_id", "subscriber", "topic_key", "all_subscribers")
        given = [name for name in kinds if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of subscriberId, subscriber, topicKey or allSubscribers")
        if self.exclude is not None and self.topic_key is None:
            raise ValueError("exclude applies to a topic only")
        if self.endpoints is not None and self.subscriber is None:
            raise ValueError("endpoints apply to an inline subscriber only")
        return self


class TriggerEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workflow_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    to: list[To] = Field(min_length=1)
    payload: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)
    actor: SUBSCRIBER_ID | None = None
    tenant: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    transaction_id: TRANSACTION_ID | None = None
