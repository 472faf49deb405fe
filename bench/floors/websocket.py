"""The realtime floor: a plain Starlette websocket server fanning Redis pub/sub messages out to its clients.

It is our hub with everything Tidings adds taken away (GraphQL, graphql-transport-ws, the MongoDB event log, counts,
presence): one shared Redis pub/sub connection for the process, a channel subscribed once per client
(`/ws/{channel}`), and each published message sent as-is to that channel's sockets. As in the hub, the reader never
awaits a client: it hands the message to each socket's queue and the socket's own task sends it.

Run it as the api runs (uvicorn, uvloop when installed, the websockets-sansio protocol):
`python -m bench.floors.websocket --port PORT --redis-url URL`; it prints "ready" once Redis answered.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

# The same cap on a client's backlog as the api's default `inbox_client_max_lag`: a client that far behind is dropped.
_MAX_QUEUED = 500


@dataclass
class _Channel:
    queues: set[asyncio.Queue[str]] = field(default_factory=set)
    ready: asyncio.Event = field(default_factory=asyncio.Event)


@dataclass
class Fanout:
    """Channel name → the queues of the sockets listening to it, fed by one pub/sub connection."""

    pubsub: PubSub
    channels: dict[str, _Channel] = field(default_factory=dict)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def run(self) -> None:
        while True:
            message = await self.pubsub.get_message(timeout=1.0)
            if message is None:
                continue
            raw_channel, data = message["channel"], message["data"]
            name = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
            channel = self.channels.get(name)
            if channel is None:
                continue
            if message["type"] == "subscribe":
                channel.ready.set()
            elif message["type"] == "message":
                text = data.decode() if isinstance(data, bytes) else str(data)
                for queue in channel.queues:
                    with contextlib.suppress(asyncio.QueueFull):
                        queue.put_nowait(text)

    @contextlib.asynccontextmanager
    async def listen(self, name: str) -> AsyncIterator[asyncio.Queue[str]]:
        """A queue of the channel's messages; entered once Redis confirmed the subscription, as the hub does."""
        queue: asyncio.Queue[str] = asyncio.Queue(_MAX_QUEUED)
        async with self.lock:
            channel = self.channels.get(name)
            if channel is None:
                channel = self.channels[name] = _Channel()
                await self.pubsub.subscribe(name)
            channel.queues.add(queue)
        try:
            await asyncio.wait_for(channel.ready.wait(), 30)
            yield queue
        finally:
            async with self.lock:
                channel.queues.discard(queue)
                if not channel.queues and self.channels.get(name) is channel:
                    del self.channels[name]
                    await self.pubsub.unsubscribe(name)


def create_app(redis_url: str) -> Starlette:
    state: dict[str, Fanout] = {}

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        redis = Redis.from_url(redis_url)
        pubsub = redis.pubsub()
        await pubsub.subscribe("floor:idle")  # keeps the connection in subscribe mode before any client
        fanout = state["fanout"] = Fanout(pubsub)
        reader = asyncio.create_task(fanout.run())
        try:
            yield
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await pubsub.aclose()  # type: ignore[no-untyped-call]
            await redis.aclose()

    async def endpoint(socket: WebSocket) -> None:
        await socket.accept()
        fanout = state["fanout"]
        async with fanout.listen(socket.path_params["channel"]) as queue:
            await socket.send_text("ready")  # what the api's first CountsChanged means: publishes now reach us
            sender = asyncio.create_task(_send(socket, queue))
            try:
                while True:
                    await socket.receive_text()  # only to notice the close
            except WebSocketDisconnect:
                pass
            finally:
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    return Starlette(routes=[WebSocketRoute("/ws/{channel}", endpoint)], lifespan=lifespan)


async def _send(socket: WebSocket, queue: asyncio.Queue[str]) -> None:
    while True:
        await socket.send_text(await queue.get())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis-url", required=True)
    options = parser.parse_args()
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    config = uvicorn.Config(
        create_app(options.redis_url),
        host="127.0.0.1",
        port=options.port,
        log_level="warning",
        lifespan="on",
        ws="websockets-sansio",
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main()
