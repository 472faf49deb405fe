"""One Redis pub/sub connection per API process, shared by all its websocket clients.

A client's stream registers a `Listener` for its subscriber; the hub subscribes that subscriber's channel once (for
however many clients) and, on each doorbell, records the newest seq and wakes the listeners. That is all it does
per client: constant memory and no awaiting, so a slow client can never hold up the others (its own stream falls
behind and is dropped, see `stream.py`). After Redis comes back, every listener is woken to re-read the log, which
recovers doorbells published during the outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from tidings.core.errors import UnavailableError
from tidings.inbox import presence
from tidings.inbox.events import Doorbell, parse_doorbell, subscriber_channel
from tidings.inbox.metrics import CONNECTIONS, HUB_RECONNECTS

log = logging.getLogger(__name__)

_RECONNECT_MAX_SECONDS = 5.0
# Carried events a listener holds for its stream; a stream further behind reads the log (and is dropped at max_lag).
_CARRIED_MAX = 100


class Listener:
    """What one stream is told: the newest seq announced, and an event set whenever something may have arrived.

    The stream records what it `sent`; when the announced seq runs more than `max_lag` ahead of it, the client is
    not keeping up (its socket is full, or it stopped reading) and `on_too_slow` is called once, from here, since
    a stream blocked in a send never gets to check.
    """

    __slots__ = ("carried", "max_lag", "must_read", "on_too_slow", "sent", "too_slow", "top_seq", "wake")

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.top_seq = 0
        self.sent = 0
        # Doorbells that carry their event, by seq, for the stream to send without reading the log; anything else
        # (a plain doorbell, a resubscription, more than it holds) tells the stream to read the log instead.
        self.carried: dict[int, Doorbell] = {}
        self.must_read = True
        self.max_lag: int | None = None
        self.too_slow = False
        self.on_too_slow: Callable[[], None] | None = None

    def ring(self, doorbell: Doorbell | None) -> None:
        seq = doorbell.seq if doorbell is not None else None
        if seq is not None and seq > self.top_seq:
            self.top_seq = seq
        if doorbell is None or doorbell.message is None or seq is None:
            self.must_read = True  # a plain doorbell or a resubscription: only the log knows what came
        elif seq > self.sent and len(self.carried) < _CARRIED_MAX:
            self.carried[seq] = doorbell
        elif seq > self.sent:
            self.must_read = True  # more carried than a listener holds: the log has them all
        self.wake.set()
        if self.max_lag is not None and not self.too_slow and self.top_seq - self.sent > self.max_lag:
            self.too_slow = True
            if self.on_too_slow is not None:
                self.on_too_slow()


class _Channel:
    __slots__ = ("listeners", "ready")

    def __init__(self) -> None:
        self.listeners: set[Listener] = set()
        self.ready = asyncio.Event()


class InboxHub:
    def __init__(self, redis: Redis, *, presence_ttl: float, subscribe_timeout: float = 10.0) -> None:
        self._redis = redis
        self._presence_ttl = presence_ttl
        self._subscribe_timeout = subscribe_timeout
        self._channels: dict[str, _Channel] = {}
        # Subscribe commands sent but not yet confirmed, per channel: a channel is ready only once all are, so a late
        # confirmation of an earlier subscription (since dropped) can't pass for the current one.
        self._unconfirmed: dict[str, int] = {}
        self._lock = asyncio.Lock()  # orders SUBSCRIBE/UNSUBSCRIBE as the decisions to send them were made
        self._pubsub: PubSub | None = None
        self._own_channel = f"tidings:hub:{uuid.uuid4().hex}"
        self._connections: dict[str, tuple[PydanticObjectId, str]] = {}
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def redis(self) -> Redis:
        return self._redis

    async def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run()), asyncio.create_task(self._refresh_presence())]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def publish(self, channel: str, message: str) -> None:
        await self._redis.publish(channel, message)

    # Listening ---------------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def listen(self, environment_id: PydanticObjectId, subscriber_id: str) -> AsyncIterator[Listener]:
        """Listen to a subscriber's doorbells; entered only once Redis confirmed the subscription, so anything
        written after entry rings this listener."""
        name = subscriber_channel(environment_id, subscriber_id)
        listener = Listener()
        async with self._lock:
            channel = self._channels.get(name)
            if channel is None:
                channel = self._channels[name] = _Channel()
                await self._subscribe(name)
            channel.listeners.add(listener)
        try:
            try:
                await asyncio.wait_for(channel.ready.wait(), self._subscribe_timeout)
            except TimeoutError:
                raise UnavailableError("the realtime hub could not subscribe (is Redis up?); reconnect") from None
            yield listener
        finally:
            async with self._lock:
                channel.listeners.discard(listener)
                if not channel.listeners and self._channels.get(name) is channel:
                    del self._channels[name]
                    if self._pubsub is not None:
                        with contextlib.suppress(RedisError, OSError):
                            await self._pubsub.unsubscribe(name)

    async def _subscribe(self, name: str) -> None:
        if self._pubsub is None:
            return  # not connected: `_run` subscribes every channel when it connects
        self._unconfirmed[name] = self._unconfirmed.get(name, 0) + 1
        with contextlib.suppress(RedisError, OSError):  # the connection broke: `_run` reconnects and resubscribes
            await self._pubsub.subscribe(name)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        raw_channel = message.get("channel")
        name = raw_channel.decode() if isinstance(raw_channel, bytes) else str(raw_channel)
        channel = self._channels.get(name)
        if kind == "subscribe":
            left = self._unconfirmed.get(name, 1) - 1
            self._unconfirmed[name] = max(left, 0)
            if channel is not None and left <= 0:
                channel.ready.set()
                for listener in channel.listeners:
                    listener.ring(None)  # (re)subscribed: whatever was announced meanwhile is in the log
        elif kind == "message" and channel is not None:
            data = message.get("data")
            doorbell = parse_doorbell(data) if isinstance(data, str | bytes) else None
            for listener in channel.listeners:
                listener.ring(doorbell)

    async def _run(self) -> None:
        delay = 0.1
        while True:
            pubsub = self._redis.pubsub()
            try:
                async with self._lock:
                    self._unconfirmed.clear()
                    await pubsub.subscribe(self._own_channel)  # keeps the connection in subscribe mode when idle
                    self._pubsub = pubsub
                    for name in self._channels:
                        await self._subscribe(name)
                delay = 0.1
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None:
                        self._dispatch(message)
            except (RedisError, OSError) as exc:
                HUB_RECONNECTS.inc()
                log.warning("inbox hub lost Redis (%s); reconnecting in %.1fs", type(exc).__name__, delay)
            finally:
                self._pubsub = None
                for channel in self._channels.values():
                    channel.ready.clear()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RECONNECT_MAX_SECONDS)

    # Presence ----------------------------------------------------------------------------------------------------

    async def connection_opened(self, environment_id: PydanticObjectId, subscriber_id: str) -> str:
        connection_id = uuid.uuid4().hex
        self._connections[connection_id] = (environment_id, subscriber_id)
        CONNECTIONS.inc()
        with contextlib.suppress(RedisError, OSError, PyMongoError):  # best effort; the refresh loop catches up
            await presence.connected(self._redis, environment_id, subscriber_id, connection_id, self._presence_ttl)
        return connection_id

    async def connection_closed(self, connection_id: str) -> None:
        owner = self._connections.pop(connection_id, None)
        if owner is None:
            return
        CONNECTIONS.dec()
        with contextlib.suppress(RedisError, OSError, PyMongoError):
            await presence.disconnected(self._redis, owner[0], owner[1], connection_id)

    async def _refresh_presence(self) -> None:
        while True:
            await asyncio.sleep(self._presence_ttl / 3)
            connections = [(cid, env, sub) for cid, (env, sub) in self._connections.items()]
            if connections:
                with contextlib.suppress(RedisError, OSError):
                    await presence.refresh(self._redis, connections, self._presence_ttl)
