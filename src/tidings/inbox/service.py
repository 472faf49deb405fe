"""Domain functions of the inbox that the engine calls: write an in-app message and announce it."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from beanie import PydanticObjectId
from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from tidings.inbox.documents import Action, InboxEvent, InboxMessage, InboxSequence
from tidings.inbox.events import NOTIFICATION_RECEIVED, Publisher, encode_event, subscriber_channel


@dataclass(frozen=True, slots=True)
class NewMessage:
    environment_id: PydanticObjectId
    subscriber_id: str
    notification_id: PydanticObjectId
    transaction_id: str
    workflow_id: str
    step_id: str
    body: str
    subject: str | None = None
    avatar: str | None = None
    redirect_url: str | None = None
    primary_action: Action | None = None
    secondary_action: Action | None = None
    data: dict[str, Any] | None = None


async def next_seq(environment_id: PydanticObjectId, subscriber_id: str) -> int:
    collection = InboxSequence.get_pymongo_collection()
    for _ in range(5):  # a concurrent first message: retry and increment the counter the other one created
        with contextlib.suppress(DuplicateKeyError):
            raw = await collection.find_one_and_update(
                {"environment_id": environment_id, "subscriber_id": subscriber_id},
                {"$inc": {"value": 1}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
            if raw is not None:
                return int(raw["value"])
    raise RuntimeError("could not allocate an inbox sequence number")


async def deliver_in_app(new: NewMessage, publisher: Publisher) -> tuple[InboxMessage, bool]:
    """Write the message once (a redelivered job finds it) and publish its event; returns it and whether it is new."""
    # No read first: the unique (notification, step) index catches a redelivery (at the cost of an unused seq).
    seq = await next_seq(new.environment_id, new.subscriber_id)
    message = InboxMessage(
        environment_id=new.environment_id,
        subscriber_id=new.subscriber_id,
        notification_id=new.notification_id,
        transaction_id=new.transaction_id,
        workflow_id=new.workflow_id,
        step_id=new.step_id,
        seq=seq,
        subject=new.subject,
        body=new.body,
        avatar=new.avatar,
        redirect_url=new.redirect_url,
        primary_action=new.primary_action,
        secondary_action=new.secondary_action,
        data=new.data or {},
    )
    try:
        await message.insert()
    except DuplicateKeyError:
        found = await InboxMessage.find_one({"notification_id": new.notification_id, "step_id": new.step_id})
        assert found is not None
        return found, False
    await InboxEvent(
        environment_id=new.environment_id,
        subscriber_id=new.subscriber_id,
        seq=seq,
        type=NOTIFICATION_RECEIVED,
        message_id=message.id,
    ).insert()
    await publisher.publish(
        subscriber_channel(new.environment_id, new.subscriber_id),
        encode_event(seq, NOTIFICATION_RECEIVED, messageId=str(message.id)),
    )
    return message, True
