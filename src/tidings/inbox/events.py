"""Inbox events on Redis: one pub/sub channel per subscriber, small JSON messages that point at MongoDB."""

from __future__ import annotations

import json
from typing import Any, Protocol

from beanie import PydanticObjectId

NOTIFICATION_RECEIVED = "notification_received"


class Publisher(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...


def subscriber_channel(environment_id: PydanticObjectId, subscriber_id: str) -> str:
    return f"tidings:inbox:{environment_id}:{subscriber_id}"


def encode_event(seq: int, event_type: str, **fields: Any) -> str:
    return json.dumps({"seq": seq, "type": event_type, **fields}, separators=(",", ":"), default=str)
