"""The trigger command: what a backend sends to start a workflow for some recipients."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from tidings.subscribers.commands import SUBSCRIBER_ID, UpsertSubscriber

TRANSACTION_ID = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
TOPIC_KEY = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]


class To(BaseModel):
    """One recipient: a subscriber id, a subscriber to upsert on the way, or a topic — exactly one."""

    model_config = ConfigDict(extra="forbid")

    subscriber_id: SUBSCRIBER_ID | None = None
    subscriber: UpsertSubscriber | None = None
    topic_key: TOPIC_KEY | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> To:
        given = [name for name in ("subscriber_id", "subscriber", "topic_key") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of subscriberId, subscriber or topicKey")
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
