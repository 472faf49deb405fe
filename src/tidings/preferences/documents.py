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
    # False: the subscriber turned everything here off (Novu's `enabled`); `channels` is kept for turning it back on.
    enabled: bool = True
    updated_at: datetime = Field(default_factory=utcnow)

    def choices(self) -> dict[Channel, bool]:
        """The subscriber's choice per channel as delivery applies it."""
        return dict.fromkeys(Channel, False) if not self.enabled else dict(self.channels)

    class Settings:
        name = "subscriber_preferences"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel(
                [("environment_id", ASCENDING), ("subscriber_id", ASCENDING), ("workflow_id", ASCENDING)], unique=True
            ),
            # Deleting a workflow deletes every subscriber's choices for it.
            IndexModel([("environment_id", ASCENDING), ("workflow_id", ASCENDING)]),
        ]
