"""The live inbox stream (graphql-transport-ws, subscriber token in connection_init)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

import strawberry
from starlette.websockets import WebSocket

from tidings.graphql.context import Info
from tidings.graphql.inbox.mappers import event_to_graphql
from tidings.graphql.inbox.types import InboxEvent
from tidings.graphql.permissions import require_subscriber
from tidings.inbox.metrics import CLIENTS_DROPPED, EVENTS_SENT
from tidings.inbox.stream import ClientTooSlowError, inbox_events, parse_after

# RFC 6455 "Try Again Later": graphql-ws clients retry it (4xxx codes they treat as fatal).
SLOW_CLIENT_CLOSE_CODE = 1013


@strawberry.type
class InboxSubscriptions:
    @strawberry.subscription(
        description="Everything that happens to the subscriber's inbox, in order. With `after` (a cursor received "
        "earlier), the events after it are replayed first, then the stream goes live: no gap, no duplicate."
    )
    async def inbox_events(self, info: Info, after: str | None = None) -> AsyncGenerator[InboxEvent]:
        owner = require_subscriber(info)
        options = info.context.inbox
        socket = info.context.response
        closing: set[asyncio.Task[None]] = set()

        def drop() -> None:
            # Called from the hub while this stream may be blocked sending to the full socket: close it from outside.
            CLIENTS_DROPPED.inc()
            if isinstance(socket, WebSocket):
                task = asyncio.create_task(_close(socket, "slow consumer: reconnect with after=<last cursor>"))
                closing.add(task)
                task.add_done_callback(closing.discard)

        stream = inbox_events(
            info.context.hub,
            owner,
            parse_after(after),
            page=options.replay_page,
            max_lag=options.client_max_lag,
            on_too_slow=drop,
        )
        with contextlib.suppress(ClientTooSlowError):
            async for event in stream:
                graphql_event = event_to_graphql(event)
                EVENTS_SENT.labels(type(graphql_event).__name__).inc()
                yield graphql_event


async def _close(socket: WebSocket, reason: str) -> None:
    with contextlib.suppress(RuntimeError, OSError):  # already closed by the client or by us
        await socket.close(code=SLOW_CLIENT_CLOSE_CODE, reason=reason)
