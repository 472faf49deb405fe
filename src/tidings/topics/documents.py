"""Persistence of topics and their memberships."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from tidings.core.clock import utcnow


class Topic(Document):
    environment_id: PydanticObjectId
    key: str
    name: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "topics"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("environment_id", ASCENDING), ("key", ASCENDING)], unique=True),
            IndexModel([("environment_id", ASCENDING), ("_id", ASCENDING)]),
        ]


class TopicSubscription(Document):
    """One subscriber in one topic: a document each, so a topic of a million subscribers pages by `_id`."""

    environment_id: PydanticObjectId
    topic_key: str
    subscriber_id: str
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "topic_subscriptions"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel(
                [("environment_id", ASCENDING), ("topic_key", ASCENDING), ("subscriber_id", ASCENDING)], unique=True
            ),
            # Fan-out and listing page through a topic in `_id` order.
            IndexModel([("environment_id", ASCENDING), ("topic_key", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("subscriber_id", ASCENDING), ("_id", ASCENDING)]),
        ]
