"""A graphql-transport-ws client for the inbox, written against the protocol (not against our widget)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import websockets

SUBSCRIBE = """subscription($after: String) { inboxEvents(after: $after) {
    __typename
    ... on NotificationReceived { seq cursor notification { id subject isRead } }
    ... on NotificationUpdated { seq cursor notificationId deleted notification { id isRead isArchived } }
    ... on CountsChanged { seq cursor counts { total unread unseen } } } }"""


class Socket:
    """A graphql-transport-ws client, written against the protocol (not our widget)."""

    def __init__(self, connection: websockets.ClientConnection) -> None:
        self.connection = connection

    @classmethod
    async def open(cls, base: str, payload: dict[str, Any] | None, **options: Any) -> Socket:
        url = base.replace("http://", "ws://") + "/graphql"
        connection = await websockets.connect(
            url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], **options
        )
        await connection.send(json.dumps({"type": "connection_init", "payload": payload or {}}))
        return cls(connection)

    async def acked(self) -> None:
        message = json.loads(await asyncio.wait_for(self.connection.recv(), 10))
        assert message["type"] == "connection_ack", message

    async def subscribe(self, after: str | None = None, query: str = SUBSCRIBE) -> None:
        await self.acked()
        await self.connection.send(
            json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": after}}})
        )

    async def next(self, wait: float = 10) -> dict[str, Any]:
        while True:
            message = json.loads(await asyncio.wait_for(self.connection.recv(), wait))
            if message["type"] == "ping":
                await self.connection.send(json.dumps({"type": "pong"}))
                continue
            assert message["type"] == "next", message
            event: dict[str, Any] = message["payload"]["data"]["inboxEvents"]
            return event

    async def until(self, typename: str, wait: float = 10) -> dict[str, Any]:
        while True:
            event = await self.next(wait)
            if event["__typename"] == typename:
                return event

    async def close(self) -> None:
        await self.connection.close()
