"""Persistence of webhook endpoints and of each event's delivery to one of them."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from tidings.core.clock import utcnow


class WebhookEndpoint(Document):
    environment_id: PydanticObjectId
    url: str
    description: str | None = None
    event_types: list[str] = Field(default_factory=list)
    active: bool = True
    # The signing secret, encrypted and bound to this endpoint's id (`service.sealed_owner`): shown once, in clear.
    secret: str
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "webhook_endpoints"
        indexes: ClassVar[list[IndexModel]] = [
            # Listing in creation order, and every lookup by id within an environment.
            IndexModel([("environment_id", ASCENDING), ("_id", ASCENDING)]),
            # `emit`: the active endpoints of an environment subscribed to one event type (multikey).
            IndexModel([("environment_id", ASCENDING), ("event_types", ASCENDING), ("active", ASCENDING)]),
        ]


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class DeliveryAttempt(BaseModel):
    at: datetime
    status_code: int | None = None
    # Why no answer came (timeout, refused connection, refused address); never the URL's path or the body.
    error: str | None = None
    duration_ms: int = 0


class WebhookDelivery(Document):
    environment_id: PydanticObjectId
    endpoint_id: PydanticObjectId
    # Shared by the deliveries of one event to several endpoints; receivers deduplicate on it.
    event_id: str
    event_type: str
    payload: dict[str, Any] = Field(default_factory=dict)
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempts: list[DeliveryAttempt] = Field(default_factory=list)
    # A claim names the attempt it makes, so a stale or repeated task can never make the same attempt twice.
    attempt_count: int = 0
    # When the sweep should (re)queue it: the next retry, or the time after which a queued or running attempt counts
    # as lost. None once finished.
    next_attempt_at: datetime | None = None
    # An attempt is running until then; a claim needs it in the past.
    lease_until: datetime = Field(default_factory=utcnow)
    expires_at: datetime | None = None  # the environment's jobs retention (environments.retention)
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "webhook_deliveries"
        indexes: ClassVar[list[IndexModel]] = [
            # An endpoint's deliveries, newest first, optionally of one status.
            IndexModel([("environment_id", ASCENDING), ("endpoint_id", ASCENDING), ("_id", DESCENDING)]),
            IndexModel(
                [("environment_id", ASCENDING), ("endpoint_id", ASCENDING), ("status", ASCENDING), ("_id", DESCENDING)]
            ),
            # The scheduler's sweep of due deliveries, across environments.
            IndexModel([("status", ASCENDING), ("next_attempt_at", ASCENDING)]),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]
