"""Inbox doorbells on Redis: one pub/sub channel per subscriber, announcing the newest event's `seq`.

The events themselves are the log in MongoDB (`log.py`); a doorbell says "there is something up to seq N". So a
lost, duplicated or reordered doorbell costs at most one extra read, never a lost or repeated event. A new in-app
message's doorbell also carries the message and the counts after it, so a stream that is caught up (the doorbell
is exactly its next seq) sends it without reading MongoDB at all: on a busy inbox those reads, six per event per
connected client, were the realtime path's largest cost (docs/benchmarks.md). Anything else, or any gap, and the
stream reads the log as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from beanie import PydanticObjectId

CHANNEL_PREFIX = "tidings:inbox:"


class Publisher(Protocol):
    async def publish(self, channel: str, message: str) -> None: ...


@dataclass(frozen=True, slots=True)
class Doorbell:
    """`seq` announced; `message` and `counts` (JSON, as written by the publisher) when the doorbell carries them."""

    seq: int | None
    message: dict[str, Any] | None = None
    counts: dict[str, int] | None = None


def subscriber_channel(environment_id: PydanticObjectId, subscriber_id: str) -> str:
    return f"{CHANNEL_PREFIX}{environment_id}:{subscriber_id}"


async def ring(
    publisher: Publisher,
    environment_id: PydanticObjectId,
    subscriber_id: str,
    seq: int,
    *,
    message: dict[str, Any] | None = None,
    counts: dict[str, int] | None = None,
) -> None:
    body = str(seq) if message is None else json.dumps({"seq": seq, "message": message, "counts": counts})
    await publisher.publish(subscriber_channel(environment_id, subscriber_id), body)


def parse_doorbell(raw: str | bytes) -> Doorbell:
    try:
        return Doorbell(int(raw))
    except ValueError:
        pass
    try:
        carried = json.loads(raw)
        return Doorbell(int(carried["seq"]), carried.get("message"), carried.get("counts"))
    except (ValueError, TypeError, KeyError):
        return Doorbell(None)  # not ours to understand: still a reason to read the log
