"""Persistence of subscriber preferences: one global row per subscriber, and one per workflow they changed."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from tidings.core.channels import Channel
from tidings.core.clock import utcnow


class SubscriberPreference(Document):
    environment_id: PydanticObjectId
    subscriber_id: str
    workflow_id: str | None = None  # None: the subscriber's global preference
    channels: dict[Channel, bool] = Field(default_factory=dict)  # only the channels the subscriber chose
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "subscriber_preferences"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel(
                [("environment_id", ASCENDING), ("subscriber_id", ASCENDING), ("workflow_id", ASCENDING)], unique=True
            ),
            # Deleting a workflow deletes every subscriber's choices for it.
            IndexModel([("environment_id", ASCENDING), ("workflow_id", ASCENDING)]),
        ]
