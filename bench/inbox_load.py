"""Thousands of websocket clients for the realtime and memory benchmarks, kept out of the measuring process.

A `ClientPool` starts `processes` child processes (spawned, each with its own asyncio loop on uvloop and the
file-descriptor limit raised to its hard limit); client i lives in child i % processes. The parent (the process that
triggers or publishes, and keeps time) only sends commands over a pipe: open inbox sessions, open sockets, collect
what arrived. Each child stamps every message with `time.monotonic()` as it comes off the socket — CLOCK_MONOTONIC is
one clock for the whole machine on Linux, so the parent can subtract its own send times.

Two kinds of client, so the floor is measured with the very same client code:
- inbox: `inboxSession` (applicationIdentifier, subscriberId, subscriberHash = HMAC-SHA256(secret API key,
  subscriberId)), then graphql-transport-ws with the token in `connection_init` and a subscription to
  `inboxEvents`; ready once the first CountsChanged arrived (the hub confirmed its Redis subscription by then).
  A NotificationReceived is recorded under its message body, which the benchmark sets to a unique tag.
- floor: `/ws/{channel}` of bench/floors/websocket.py; ready at its "ready"; every message is recorded as-is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import multiprocessing
import resource
import time
import traceback
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

import httpx
import uvloop
import websockets
from websockets.asyncio.client import ClientConnection, connect

# How many sessions and handshakes each child runs at once: enough to fill a 2-core api, not so many that
# handshakes time out behind each other.
_OPENING_CONCURRENCY = 32
_OPEN_TIMEOUT = 120.0

SESSION = """mutation($app: String!, $id: String!, $hash: String) {
    inboxSession(applicationIdentifier: $app, subscriberId: $id, subscriberHash: $hash) { token } }"""
# What an inbox widget asks for; the body carries the benchmark's tag.
SUBSCRIBE = """subscription { inboxEvents {
    __typename
    ... on NotificationReceived { seq cursor notification { id subject body isRead } }
    ... on NotificationUpdated { seq cursor notificationId }
    ... on CountsChanged { seq cursor counts { total unread unseen } } } }"""

type Record = tuple[int, str, float]  # client index, tag, monotonic receive time
type Command = tuple[Any, ...]


def subscriber_hash(api_key: str, subscriber_id: str) -> str:
    return hmac.new(api_key.encode(), subscriber_id.encode(), hashlib.sha256).hexdigest()


def raise_file_limit() -> int:
    """The soft limit on open files raised to the hard one (each socket is a descriptor); returns it."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


@dataclass
class _Sink:
    """What a child's sockets received since the last collect; wakes the collector at the expected count."""

    records: list[Record] = field(default_factory=list)
    expected: int | None = None
    reached: asyncio.Event = field(default_factory=asyncio.Event)
    failures: list[str] = field(default_factory=list)

    def add(self, index: int, tag: str, at: float) -> None:
        self.records.append((index, tag, at))
        if self.expected is not None and len(self.records) >= self.expected:
            self.reached.set()

    def fail(self, reason: str) -> None:
        self.failures.append(reason)
        self.reached.set()


@dataclass
class _Child:
    sink: _Sink = field(default_factory=_Sink)
    tokens: dict[int, str] = field(default_factory=dict)
    sockets: list[ClientConnection] = field(default_factory=list)
    readers: list[asyncio.Task[None]] = field(default_factory=list)

    async def sessions(self, base: str, app: str, api_key: str, subscribers: Sequence[tuple[int, str]]) -> int:
        async with httpx.AsyncClient(base_url=base, timeout=_OPEN_TIMEOUT) as client:

            async def one(index: int, subscriber_id: str) -> None:
                variables = {"app": app, "id": subscriber_id, "hash": subscriber_hash(api_key, subscriber_id)}
                response = await client.post("/graphql", json={"query": SESSION, "variables": variables})
                body = response.json()
                if response.status_code != 200 or body.get("errors"):
                    raise RuntimeError(f"inboxSession {response.status_code}: {body}")
                self.tokens[index] = body["data"]["inboxSession"]["token"]

            await _bounded([functools.partial(one, i, s) for i, s in subscribers])
        return len(subscribers)

    async def open_inbox(self, ws_url: str) -> int:
        async def one(index: int, token: str) -> None:
            socket = await connect(
                ws_url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], open_timeout=_OPEN_TIMEOUT
            )
            self.sockets.append(socket)
            await socket.send(json.dumps({"type": "connection_init", "payload": {"token": token}}))
            ack = json.loads(await asyncio.wait_for(socket.recv(), _OPEN_TIMEOUT))
            if ack["type"] != "connection_ack":
                raise RuntimeError(f"no connection_ack: {ack}")
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
            while True:  # live once the stream sent its first counts
                first = json.loads(await asyncio.wait_for(socket.recv(), _OPEN_TIMEOUT))
                if first["type"] == "next" and first["payload"]["data"]["inboxEvents"]["__typename"] == "CountsChanged":
                    break
                if first["type"] != "ping":
                    raise RuntimeError(f"unexpected first message: {first}")
            self.readers.append(asyncio.create_task(_read_inbox(index, socket, self.sink)))

        tokens, self.tokens = self.tokens, {}  # a later call connects only the sessions opened since
        await _bounded([functools.partial(one, i, t) for i, t in tokens.items()])
        return len(tokens)

    async def open_floor(self, ws_base: str, channels: Sequence[tuple[int, str]]) -> int:
        async def one(index: int, channel: str) -> None:
            socket = await connect(f"{ws_base}/ws/{channel}", open_timeout=_OPEN_TIMEOUT)
            self.sockets.append(socket)
            ready = await asyncio.wait_for(socket.recv(), _OPEN_TIMEOUT)
            if ready != "ready":
                raise RuntimeError(f"floor said {ready!r}")
            self.readers.append(asyncio.create_task(_read_floor(index, socket, self.sink)))

        await _bounded([functools.partial(one, i, c) for i, c in channels])
        return len(channels)

    async def collect(self, expected: int, wait_seconds: float) -> list[Record]:
        """Waits until `expected` records arrived since the last collect (or `wait_seconds` passed), then hands them
        over; the caller checks that every one came, exactly once."""
        sink = self.sink
        sink.expected = expected
        if len(sink.records) >= expected:
            sink.reached.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(sink.reached.wait(), wait_seconds)
        if sink.failures:
            raise RuntimeError("; ".join(sink.failures[:5]))
        records, sink.records, sink.expected = sink.records, [], None
        sink.reached.clear()
        return records

    async def close(self) -> int:
        for reader in self.readers:
            reader.cancel()
        await asyncio.gather(*self.readers, return_exceptions=True)
        await _bounded([socket.close for socket in self.sockets], concurrency=256)
        closed = len(self.sockets)
        self.sockets, self.readers, self.tokens = [], [], {}
        return closed


async def _bounded(work: Sequence[Callable[[], Awaitable[Any]]], concurrency: int = _OPENING_CONCURRENCY) -> None:
    limit = asyncio.Semaphore(concurrency)

    async def run(step: Callable[[], Awaitable[Any]]) -> None:
        async with limit:
            await step()

    await asyncio.gather(*(run(step) for step in work))


async def _read_inbox(index: int, socket: ClientConnection, sink: _Sink) -> None:
    try:
        async for raw in socket:
            at = time.monotonic()  # first: the parse is the client's cost, not the server's
            message = json.loads(raw)
            kind = message["type"]
            if kind == "next":
                event = message["payload"]["data"]["inboxEvents"]
                if event["__typename"] == "NotificationReceived":
                    sink.add(index, event["notification"]["body"], at)
            elif kind == "ping":
                await socket.send(json.dumps({"type": "pong"}))
            else:
                sink.fail(f"client {index}: {message}")
    except websockets.ConnectionClosed as exc:
        sink.fail(f"client {index}: closed by the server ({exc})")


async def _read_floor(index: int, socket: ClientConnection, sink: _Sink) -> None:
    try:
        async for raw in socket:
            sink.add(index, str(raw), time.monotonic())
    except websockets.ConnectionClosed as exc:
        sink.fail(f"floor client {index}: closed by the server ({exc})")


async def _serve(pipe: Connection) -> None:
    child = _Child()
    handlers: dict[str, Callable[..., Awaitable[Any]]] = {
        "sessions": child.sessions,
        "open_inbox": child.open_inbox,
        "open_floor": child.open_floor,
        "collect": child.collect,
        "close": child.close,
    }
    while True:
        command = cast("Command", await asyncio.to_thread(pipe.recv))
        if command[0] == "exit":
            await child.close()
            pipe.send(("ok", None))
            return
        try:
            pipe.send(("ok", await handlers[command[0]](*command[1:])))
        except Exception:  # the parent raises it, with the child's traceback
            pipe.send(("error", traceback.format_exc()))


def _child_main(pipe: Connection) -> None:
    raise_file_limit()
    asyncio.run(_serve(pipe), loop_factory=uvloop.new_event_loop)


class ClientPool:
    """Child processes holding websocket clients; client i lives in child i % processes."""

    def __init__(self, processes: int) -> None:
        context = multiprocessing.get_context("spawn")
        self._pipes: list[Connection] = []
        self._children: list[multiprocessing.process.BaseProcess] = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=_child_main, args=(child,), daemon=True)
            process.start()
            self._pipes.append(parent)
            self._children.append(process)

    @property
    def size(self) -> int:
        return len(self._pipes)

    def child_of(self, index: int) -> int:
        return index % len(self._pipes)

    async def _call(self, commands: Sequence[Command]) -> list[Any]:
        for pipe, command in zip(self._pipes, commands, strict=True):
            pipe.send(command)
        replies = await asyncio.gather(*(asyncio.to_thread(pipe.recv) for pipe in self._pipes))
        errors = [detail for status, detail in replies if status != "ok"]
        if errors:
            raise RuntimeError("a client process failed:\n" + "\n".join(errors))
        return [detail for _, detail in replies]

    def _split[T](self, items: Sequence[tuple[int, T]]) -> list[list[tuple[int, T]]]:
        parts: list[list[tuple[int, T]]] = [[] for _ in self._pipes]
        for index, item in items:
            parts[self.child_of(index)].append((index, item))
        return parts

    async def open_inbox(self, base: str, app: str, api_key: str, subscriber_ids: Sequence[str]) -> None:
        """Sessions first, then sockets: callers measuring the api in between see only the sockets' cost."""
        await self.sessions(base, app, api_key, subscriber_ids)
        await self.connect_inbox(base)

    async def sessions(
        self, base: str, app: str, api_key: str, subscriber_ids: Sequence[str], first_index: int = 0
    ) -> None:
        parts = self._split(list(enumerate(subscriber_ids, first_index)))
        await self._call([("sessions", base, app, api_key, part) for part in parts])

    async def connect_inbox(self, base: str) -> None:
        """Sockets for the sessions opened since the last call."""
        ws_url = base.replace("http://", "ws://") + "/graphql"
        await self._call([("open_inbox", ws_url)] * self.size)

    async def open_floor(self, base: str, channels: Sequence[str], first_index: int = 0) -> None:
        parts = self._split(list(enumerate(channels, first_index)))
        await self._call([("open_floor", base.replace("http://", "ws://"), part) for part in parts])

    async def collect(self, expected_per_child: Sequence[int], wait_seconds: float) -> list[Record]:
        replies = await self._call([("collect", count, wait_seconds) for count in expected_per_child])
        return [record for records in replies for record in records]

    async def close_sockets(self) -> None:
        await self._call([("close",)] * self.size)

    async def aclose(self) -> None:
        with contextlib.suppress(OSError, EOFError, RuntimeError):
            await self._call([("exit",)] * self.size)
        for process in self._children:
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join()
