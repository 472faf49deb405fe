"""Persistence of integrations: a provider configured for one channel of one environment."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, ClassVar

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from tidings.core.channels import Channel
from tidings.core.clock import utcnow

IDENTIFIER_INDEX = "environment_identifier"
PRIMARY_INDEX = "one_primary_per_channel"


class Integration(Document):
    environment_id: PydanticObjectId
    identifier: str
    name: str
    channel: Channel
    provider_id: str
    # Non-secret settings only, snake_case, as the provider's settings model dumped them.
    config: dict[str, Any] = Field(default_factory=dict)
    # Secret settings, each encrypted with `tidings.core.crypto.Cipher` bound to this integration's id.
    credentials: dict[str, str] = Field(default_factory=dict)
    active: bool = True
    primary: bool = False
    # Failover order after the primary: active integrations of the channel by ascending priority, then age.
    priority: int = 0
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "integrations"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("environment_id", ASCENDING), ("identifier", ASCENDING)], unique=True, name=IDENTIFIER_INDEX),
            # At most one primary per channel, enforced by the database even when two requests race; it also
            # serves "the primary integration of this channel" (MongoDB and SecantusDB both honour the filter).
            IndexModel(
                [("environment_id", ASCENDING), ("channel", ASCENDING)],
                unique=True,
                partialFilterExpression={"primary": True},
                name=PRIMARY_INDEX,
            ),
            # Listing by channel in `_id` order.
            IndexModel([("environment_id", ASCENDING), ("channel", ASCENDING), ("_id", ASCENDING)]),
            # The oldest active non-primary integration of a channel, promoted when the primary goes.
            IndexModel(
                [
                    ("environment_id", ASCENDING),
                    ("channel", ASCENDING),
                    ("active", ASCENDING),
                    ("primary", ASCENDING),
                    ("_id", ASCENDING),
                ]
            ),
            IndexModel([("environment_id", ASCENDING), ("_id", ASCENDING)]),
        ]


def in_failover_order(integrations: Iterable[Integration]) -> list[Integration]:
    """Active integrations in the order a send tries them: the primary, then by ascending priority, then the oldest."""
    return sorted(integrations, key=lambda integration: (not integration.primary, integration.priority, integration.id))
