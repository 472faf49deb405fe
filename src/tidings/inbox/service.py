"""Domain functions of the inbox that the engine calls: write an in-app message and announce it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.environments.retention import retention_for
from tidings.inbox.documents import Action, EventType, InboxEvent, InboxMessage
from tidings.inbox.events import Publisher, ring
from tidings.inbox.feed import inbox_counts
from tidings.inbox.log import append_events, received_logged


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
    tags: list[str] = field(default_factory=list)


async def deliver_in_app(new: NewMessage, publisher: Publisher) -> tuple[InboxMessage, bool]:
    """Write the message once (a redelivered job finds it), log its event and ring; returns it and whether it is new.

    A run that died between the message and its event is completed by the redelivery: the event is logged then.
    """
    message = InboxMessage(
        environment_id=new.environment_id,
        subscriber_id=new.subscriber_id,
        notification_id=new.notification_id,
        transaction_id=new.transaction_id,
        workflow_id=new.workflow_id,
        step_id=new.step_id,
        subject=new.subject,
        body=new.body,
        avatar=new.avatar,
        redirect_url=new.redirect_url,
        primary_action=new.primary_action,
        secondary_action=new.secondary_action,
        data=new.data or {},
        tags=new.tags,
        expires_at=(await retention_for(new.environment_id)).messages_until(utcnow()),
    )
    created = True
    try:
        await message.insert()
    except DuplicateKeyError:
        found = await InboxMessage.find_one({"notification_id": new.notification_id, "step_id": new.step_id})
        assert found is not None
        message, created = found, False
    assert message.id is not None
    if not created and await received_logged(message.id):
        return message, False
    seq = await append_events(new.environment_id, new.subscriber_id, [(EventType.RECEIVED, message.id)])
    if seq is not None:
        # Counted once here rather than by every connected client of this subscriber (see `events.py`).
        counts = asdict(await inbox_counts(new.environment_id, new.subscriber_id))
        json_message = message.model_dump(mode="json")
        await ring(publisher, new.environment_id, new.subscriber_id, seq, message=json_message, counts=counts)
    return message, created


async def delete_subscriber_inbox(environment_id: PydanticObjectId, subscriber_id: str) -> tuple[int, int]:
    """Every in-app message and event of the subscriber (erasure); how many of each."""
    scope = {"environment_id": environment_id, "subscriber_id": subscriber_id}
    messages = await InboxMessage.get_pymongo_collection().delete_many(scope)
    events = await InboxEvent.get_pymongo_collection().delete_many(scope)
    return messages.deleted_count, events.deleted_count
