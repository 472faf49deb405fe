"""Inbox doorbells on Redis: one pub/sub channel per subscriber carrying only the newest event's `seq`.

The events themselves are read from MongoDB (the log in `log.py`); a doorbell says "there is something up to seq
N". So a lost, duplicated or reordered doorbell costs at most one extra read, never a lost or repeated event.
"""

from __future__ import annotations

from typing import Protocol

from beanie import PydanticObjectId

CHANNEL_PREFIX = "tidings:inbox:"


class Publisher(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...


def subscriber_channel(environment_id: PydanticObjectId, subscriber_id: str) -> str:
    return f"{CHANNEL_PREFIX}{environment_id}:{subscriber_id}"


async def ring(publisher: Publisher, environment_id: PydanticObjectId, subscriber_id: str, seq: int) -> None:
    await publisher.publish(subscriber_channel(environment_id, subscriber_id), str(seq))


def parse_doorbell(message: str | bytes) -> int | None:
    try:
        return int(message)
    except ValueError:
        return None
