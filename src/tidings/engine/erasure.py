"""Erase a subscriber (GDPR): the record and everything of theirs, each domain deleting its own part.

The subscriber record goes first, so a job of theirs that is running meanwhile skips its step ("the subscriber was
deleted") instead of sending; then their jobs, notifications, triggers meant for them alone, digests, throttle
windows, inbox, preferences, topic memberships and presence. Every part deletes what is there and no more, so
running the erasure again after a failure finishes the job; it is NOT_FOUND only when nothing of theirs was left.
"""

from __future__ import annotations

from dataclasses import dataclass

from beanie import PydanticObjectId
from redis.asyncio import Redis

from tidings.core.errors import NotFoundError
from tidings.inbox.presence import forget
from tidings.inbox.service import delete_subscriber_inbox
from tidings.notifications.erasure import erase_subscriber_activity
from tidings.subscribers.service import erase_subscriber_record


@dataclass(frozen=True, slots=True)
class Erasure:
    """How many records of each kind were deleted."""

    subscribers: int
    notifications: int
    jobs: int
    triggers: int
    digests: int
    throttle_windows: int
    inbox_messages: int
    inbox_events: int
    preferences: int
    topic_subscriptions: int

    def total(self) -> int:
        return sum(getattr(self, name) for name in self.__slots__)


async def erase_subscriber(redis: Redis, environment_id: PydanticObjectId, subscriber_id: str) -> Erasure:
    record = await erase_subscriber_record(environment_id, subscriber_id)
    activity = await erase_subscriber_activity(environment_id, subscriber_id)
    messages, events = await delete_subscriber_inbox(environment_id, subscriber_id)
    await forget(redis, environment_id, subscriber_id)
    erasure = Erasure(**record, **activity, inbox_messages=messages, inbox_events=events)
    if not erasure.total():
        raise NotFoundError(f"subscriber {subscriber_id!r} not found", field="subscriberId")
    return erasure
