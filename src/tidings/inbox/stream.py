"""A subscriber's live event stream: replay from the log after a point, then follow the doorbells.

Gap-free and duplicate-free by construction: the stream listens *before* it reads the log, so an event written
after that first read rings it; and every read asks the log for "seq > the last one sent", which is dense. The
counts that follow each batch are computed after it, so they are exact as of that batch.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from beanie import PydanticObjectId

from tidings.core.errors import ValidationError
from tidings.inbox.documents import EventType, InboxMessage
from tidings.inbox.events import Doorbell
from tidings.inbox.feed import InboxCounts, inbox_counts
from tidings.inbox.hub import InboxHub
from tidings.inbox.log import events_after, last_seq
from tidings.inbox.state import Owner


@dataclass(frozen=True, slots=True)
class MessageEvent:
    seq: int
    type: EventType
    message_id: PydanticObjectId
    message: InboxMessage | None  # None: deleted since (or a deletion)


@dataclass(frozen=True, slots=True)
class CountsEvent:
    seq: int
    counts: InboxCounts


type StreamEvent = MessageEvent | CountsEvent


class ClientTooSlowError(Exception):
    """The client fell more than the allowed number of events behind; it should reconnect with `after`."""

    def __init__(self, last_sent: int) -> None:
        super().__init__(f"slow consumer: reconnect with after={last_sent}")
        self.last_sent = last_sent


def parse_after(after: str | None) -> int | None:
    if after is None:
        return None
    try:
        value = int(after)
    except ValueError:
        raise ValidationError("after must be a cursor received from inboxEvents", field="after") from None
    if value < 0:
        raise ValidationError("after must be a cursor received from inboxEvents", field="after")
    return value


async def _batch(owner: Owner, after: int, page: int) -> list[MessageEvent]:
    events = await events_after(owner.environment_id, owner.subscriber_id, after, page)
    if not events:
        return []
    ids = list({event.message_id for event in events})
    messages = {message.id: message for message in await InboxMessage.find({"_id": {"$in": ids}}).to_list()}
    return [MessageEvent(event.seq, event.type, event.message_id, messages.get(event.message_id)) for event in events]


def _from_doorbell(doorbell: Doorbell) -> tuple[MessageEvent, InboxCounts | None]:
    message = InboxMessage.model_validate(doorbell.message)
    assert doorbell.seq is not None
    assert message.id is not None
    counts = InboxCounts(**doorbell.counts) if doorbell.counts is not None else None
    return MessageEvent(doorbell.seq, EventType.RECEIVED, message.id, message), counts


async def inbox_events(
    hub: InboxHub,
    owner: Owner,
    after: int | None,
    *,
    page: int,
    max_lag: int,
    on_too_slow: Callable[[], None] | None = None,
) -> AsyncIterator[StreamEvent]:
    """The stream; `on_too_slow` is called (once) when the client falls more than `max_lag` events behind the
    newest doorbell, typically to close its connection, and the stream itself then ends with ClientTooSlowError."""
    async with hub.listen(owner.environment_id, owner.subscriber_id) as listener:
        sent = after if after is not None else await last_seq(owner.environment_id, owner.subscriber_id)
        # A replay is not lag: only what is announced while the stream runs counts against `max_lag`.
        listener.sent = listener.top_seq = sent
        listener.max_lag, listener.on_too_slow = max_lag, on_too_slow
        counts_due = True  # a fresh stream starts with the current counts
        counts: InboxCounts | None = None
        while True:
            listener.wake.clear()  # before reading: a doorbell during the read wakes the next wait
            # Caught up, the next event usually came with its doorbell: no read at all.
            while (doorbell := listener.carried.pop(sent + 1, None)) is not None:
                if listener.too_slow:
                    raise ClientTooSlowError(sent)
                event, counts = _from_doorbell(doorbell)
                sent = listener.sent = event.seq
                counts_due = True
                yield event
            if listener.must_read or sent < listener.top_seq:
                listener.must_read, counts = False, None
                while batch := await _batch(owner, sent, page):
                    for event in batch:
                        if listener.too_slow:
                            raise ClientTooSlowError(sent)
                        sent = listener.sent = event.seq
                        counts_due = True
                        if event.type == EventType.RECEIVED and event.message is None:
                            continue  # received, then deleted before this client heard of it: the deletion follows
                        yield event
                    if len(batch) < page:
                        break  # the log had no more: asking again would only return nothing
                listener.carried = {seq: held for seq, held in listener.carried.items() if seq > sent}
                if sent + 1 in listener.carried:
                    listener.wake.set()  # announced past what the log held when read: go round again
            if counts_due:
                counts_due = False
                if counts is None:
                    counts = await inbox_counts(owner.environment_id, owner.subscriber_id)
                yield CountsEvent(sent, counts)
            await listener.wake.wait()
