"""Persistence of subscribers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from tidings.core.clock import utcnow


class PushEndpoint(BaseModel):
    """Device tokens of one push integration (FCM, APNs…), addressed by the integration's identifier."""

    integration_identifier: str
    device_tokens: list[str] = Field(default_factory=list)


class ChatEndpoint(BaseModel):
    """Where chat messages for this subscriber go through one chat integration."""

    integration_identifier: str
    webhook_url: str | None = None
    channel_id: str | None = None


class Subscriber(Document):
    environment_id: PydanticObjectId
    subscriber_id: str
    email: str | None = None
    email_lower: str | None = None  # what search matches: addresses differ in case, people search in lowercase
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    avatar: str | None = None
    locale: str | None = None
    timezone: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)
    push: list[PushEndpoint] = Field(default_factory=list)
    chat: list[ChatEndpoint] = Field(default_factory=list)
    # An address a provider reported dead (hard bounce, unknown number): not used while it is still the address.
    bounced_email: str | None = None
    undeliverable_phone: str | None = None
    # Set by the backend (Novu's online status); an open inbox websocket counts too (inbox/presence.py).
    is_online: bool = False
    last_online_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "subscribers"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("environment_id", ASCENDING), ("subscriber_id", ASCENDING)], unique=True),
            IndexModel([("environment_id", ASCENDING), ("email_lower", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("_id", ASCENDING)]),
        ]
