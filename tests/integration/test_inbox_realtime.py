"""The realtime inbox across real processes: two API processes sharing Redis, a worker delivering triggered
notifications, the reference `graphql-ws` client from npm, a client too slow to keep up, and 1,000 subscribers."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId
from redis.asyncio import Redis

from tests.api.conftest import GraphQL
from tests.inbox_client import Socket
from tests.node import node_cache, npm_install, script_beside
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, isolated_settings, role_env
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import IssuedEnvironment, create_environment
from tidings.inbox.events import Publisher
from tidings.inbox.service import NewMessage, deliver_in_app

SESSION = """mutation($app: String!, $id: String!) {
    inboxSession(applicationIdentifier: $app, subscriberId: $id) { token seq } }"""
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }"
MARK_READ = "mutation($id: ID!) { inboxMarkRead(id: $id) { id isRead } }"
NODE_CLIENT = Path(__file__).parent / "node" / "inbox_client.mjs"
MAX_LAG = 20


@dataclass
class Stack:
    settings: Settings
    env: IssuedEnvironment
    base_a: str
    base_b: str
    processes: list[RoleProcess]
    redis: Redis

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self.processes)

    async def publish(self, channel: str, message: str) -> None:
        await self.redis.publish(channel, message)


@pytest.fixture(scope="module")
async def stack(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("realtime")
    settings = isolated_settings(mongodb_url, redis_url, tmp).model_copy(
        update={"inbox_client_max_lag": MAX_LAG, "mongodb_timeout_ms": 30_000}
    )
    async with beanie_database(settings):
        env = await create_environment("realtime", cipher=Cipher(SECRET_KEY))
        api_a, base_a = api_process(settings, tmp / "api-a.log")
        api_b, base_b = api_process(settings, tmp / "api-b.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        redis = Redis.from_url(redis_url)
        try:
            async with httpx.AsyncClient(base_url=base_b, timeout=30) as client:
                await GraphQL(client, env.api_key).data(
                    "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
                    input={
                        "workflowId": "comment-added",
                        "name": "Comment added",
                        "steps": [
                            {"inApp": {"stepId": "inbox", "subject": "New comment", "body": "{{ payload.text }}"}}
                        ],
                    },
                )
            yield Stack(settings, env, base_a, base_b, [api_a, api_b, worker], redis)
        finally:
            await redis.aclose()
            for process in (worker, api_b, api_a):
                process.stop()


async def _session(base: str, stack: Stack, subscriber_id: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        data = await GraphQL(client, None).data(
            SESSION, app=stack.env.environment.application_identifier, id=subscriber_id
        )
    session: dict[str, Any] = data["inboxSession"]
    return session


async def _live(stack: Stack, subscriber_id: str) -> tuple[dict[str, Any], Socket]:
    """A session on API A and its `inboxEvents` subscription, past the counts every stream starts with."""
    session = await _session(stack.base_a, stack, subscriber_id)
    socket = await Socket.open(stack.base_a, {"token": session["token"]})
    await socket.subscribe()
    await socket.until("CountsChanged")
    return session, socket


async def _trigger(base: str, stack: Stack, subscriber_id: str, text: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        await GraphQL(client, stack.env.api_key).data(
            TRIGGER,
            input={"workflowId": "comment-added", "to": [{"subscriberId": subscriber_id}], "payload": {"text": text}},
        )


async def test_a_client_on_one_process_hears_what_happens_through_another(stack: Stack) -> None:
    subscriber_id = f"two-{uuid.uuid4().hex[:6]}"
    session, socket = await _live(stack, subscriber_id)

    await _trigger(stack.base_b, stack, subscriber_id, "hello from B")
    received = await socket.until("NotificationReceived", wait=60)
    assert received["notification"]["subject"] == "New comment"
    message_id = received["notification"]["id"]

    async with httpx.AsyncClient(base_url=stack.base_b, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": MARK_READ, "variables": {"id": message_id}},
            headers={"Authorization": f"Bearer {session['token']}"},
        )
        assert response.json()["data"]["inboxMarkRead"]["isRead"] is True
        updated = await socket.until("NotificationUpdated")
        assert (updated["notificationId"], updated["notification"]["isRead"]) == (message_id, True)
        assert (await socket.until("CountsChanged"))["counts"]["unread"] == 0
        # Presence is shared too: the socket is on A, B's admin API sees the subscriber online.
        online = await GraphQL(client, stack.env.api_key).data(
            "query($id: String!) { subscriber(subscriberId: $id) { isOnline } }", id=subscriber_id
        )
        assert online["subscriber"]["isOnline"] is True
    await socket.close()


async def test_the_reference_graphql_ws_client_receives_a_live_notification(
    stack: Stack, pytestconfig: pytest.Config
) -> None:
    folder = node_cache(pytestconfig) / "graphql-ws-client"
    packages = ["graphql-ws@6", "ws@8", "graphql@16"]
    modules = await asyncio.to_thread(npm_install, folder, "graphql-ws", packages)
    subscriber_id = f"node-{uuid.uuid4().hex[:6]}"
    session = await _session(stack.base_a, stack, subscriber_id)
    node = shutil.which("node")
    assert node is not None
    script = script_beside(modules, NODE_CLIENT)
    process = await asyncio.create_subprocess_exec(
        node,
        str(script),
        stack.base_a.replace("http://", "ws://") + "/graphql",
        session["token"],
        "2",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ},
    )
    assert process.stdout is not None
    first = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    assert first["data"]["inboxEvents"]["__typename"] == "CountsChanged"
    await _trigger(stack.base_b, stack, subscriber_id, "for node")
    second = json.loads(await asyncio.wait_for(process.stdout.readline(), 60))
    event = second["data"]["inboxEvents"]
    assert event["__typename"] == "NotificationReceived"
    assert event["notification"]["subject"] == "New comment"
    assert await asyncio.wait_for(process.wait(), 30) == 0


async def _deliver(
    stack: Stack, subscriber_id: str, body: str = "x", *, subject: str = "direct", publisher: Publisher | None = None
) -> str:
    """An in-app message written, logged and announced as the engine's in-app step does (through `publisher`)."""
    assert stack.env.environment.id is not None
    message, _ = await deliver_in_app(
        NewMessage(
            environment_id=stack.env.environment.id,
            subscriber_id=subscriber_id,
            notification_id=PydanticObjectId(),
            transaction_id=uuid.uuid4().hex,
            workflow_id="comment-added",
            step_id="inbox",
            subject=subject,
            body=body,
        ),
        publisher or stack,
    )
    return str(message.id)


async def _metric(base: str, name: str) -> float:
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        text = (await client.get("/metrics")).text
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return values[0] if values else 0.0


def _frame(text: str) -> bytes:
    """One masked text frame, as a browser sends it (RFC 6455 §5.2)."""
    payload = text.encode()
    mask = os.urandom(4)
    length = len(payload)
    header = bytes([0x81]) + (
        bytes([0x80 | length]) if length < 126 else bytes([0x80 | 126]) + length.to_bytes(2, "big")
    )
    return header + mask + bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))


def _stuck_client(base: str, token: str, query: str) -> socket.socket:
    """A websocket client that subscribes and then never reads again, with a tiny receive buffer, so the server's
    socket fills after a few events (loopback buffers would otherwise absorb megabytes)."""
    host, port = base.removeprefix("http://").split(":")
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    raw.sendall(
        (
            f"GET /graphql HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
        ).encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += raw.recv(1)
    assert response.startswith(b"HTTP/1.1 101"), response
    raw.sendall(_frame(json.dumps({"type": "connection_init", "payload": {"token": token}})))
    subscribe = {"id": "1", "type": "subscribe", "payload": {"query": query, "variables": {"after": None}}}
    raw.sendall(_frame(json.dumps(subscribe)))
    return raw


async def test_a_client_that_stops_reading_is_dropped_without_slowing_others(stack: Stack) -> None:
    subscriber_id = f"slow-{uuid.uuid4().hex[:6]}"
    session = await _session(stack.base_a, stack, subscriber_id)
    heavy = """subscription($after: String) { inboxEvents(after: $after) { __typename
        ... on NotificationReceived { seq cursor notification { id body } } ... on CountsChanged { seq cursor } } }"""
    dropped_before = await _metric(stack.base_a, "tidings_inbox_clients_dropped_total")
    stuck = await asyncio.to_thread(_stuck_client, stack.base_a, session["token"], heavy)
    healthy = await Socket.open(stack.base_a, {"token": session["token"]}, max_size=None)
    await healthy.subscribe(query=heavy)
    await healthy.until("CountsChanged")

    async def read_all(socket_: Socket, count: int) -> list[str]:
        ids: list[str] = []
        while len(ids) < count:
            event = await socket_.next(wait=60)
            if event["__typename"] == "NotificationReceived":
                ids.append(event["notification"]["id"])
        return ids

    total = MAX_LAG * 4
    reader = asyncio.create_task(read_all(healthy, total))
    sent = [await _deliver(stack, subscriber_id, body="x" * 200_000) for _ in range(total)]
    # The reading client got everything while the other one was stuck: one slow client holds up nobody.
    assert await asyncio.wait_for(reader, 60) == sent
    deadline = time.monotonic() + 30
    while await _metric(stack.base_a, "tidings_inbox_clients_dropped_total") < dropped_before + 1:
        assert time.monotonic() < deadline, "the stuck client was never dropped"
        await asyncio.sleep(0.1)
    stuck.close()
    await healthy.close()

    # It comes back with a cursor (here: from the start) and misses nothing, twice nothing.
    resumed = await Socket.open(stack.base_a, {"token": session["token"]}, max_size=None)
    await resumed.subscribe(after="0", query=heavy)
    assert await read_all(resumed, total) == sent
    await resumed.close()


@pytest.mark.timeout(600)
async def test_a_thousand_concurrent_subscribers_each_receive_their_own(stack: Stack) -> None:
    count = 1000
    run = uuid.uuid4().hex[:6]
    ids = [f"k{run}-{i}" for i in range(count)]
    limit = asyncio.Semaphore(25)

    async def connect(subscriber_id: str) -> Socket:
        async with limit:
            session = await _session(stack.base_a, stack, subscriber_id)
            socket = await Socket.open(stack.base_a, {"token": session["token"]}, open_timeout=60)
            await socket.subscribe()
            await socket.until("CountsChanged", wait=120)
            return socket

    started = time.monotonic()
    sockets = await asyncio.gather(*(connect(subscriber_id) for subscriber_id in ids))
    assert await _metric(stack.base_a, "tidings_inbox_connections") >= count
    print(f"{count} subscribers connected in {time.monotonic() - started:.1f}s")

    async def deliver(subscriber_id: str) -> str:
        async with limit:
            return await _deliver(stack, subscriber_id, body=f"for {subscriber_id}")

    expected = await asyncio.gather(*(deliver(subscriber_id) for subscriber_id in ids))
    heard = await asyncio.gather(*(socket.until("NotificationReceived", wait=240) for socket in sockets))
    assert [event["notification"]["id"] for event in heard] == expected
    print(f"all {count} received theirs {time.monotonic() - started:.1f}s after the start")
    await asyncio.gather(*(socket.close() for socket in sockets))


class _Captured:
    """A publisher that keeps doorbells instead of ringing them, so the test decides which ones a client hears."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    async def publish(self, channel: str, message: str) -> None:
        self.sent.append((channel, message))


async def _deliver_quietly(stack: Stack, subscriber_id: str, subject: str) -> tuple[str, str]:
    """An in-app message written and logged like the engine does, its doorbell kept back and returned."""
    captured = _Captured()
    await _deliver(stack, subscriber_id, subject, subject=subject, publisher=captured)
    [doorbell] = captured.sent
    return doorbell


async def test_a_caught_up_client_is_sent_the_doorbells_event_and_a_gap_is_read_from_the_log(stack: Stack) -> None:
    subscriber_id = f"carried-{uuid.uuid4().hex[:6]}"
    _, socket = await _live(stack, subscriber_id)

    # Caught up: the event and the counts come from the doorbell alone. Its subject and counts were changed on the
    # way (MongoDB holds "real" and one message), so a client that hears them was not sent them from MongoDB.
    channel, real = await _deliver_quietly(stack, subscriber_id, "real")
    only = json.loads(real) | {"counts": {"total": 41, "unread": 40, "unseen": 39}}
    only["message"] = only["message"] | {"subject": "carried only"}
    await stack.publish(channel, json.dumps(only))
    received = await socket.until("NotificationReceived")
    assert (received["seq"], received["notification"]["subject"]) == (1, "carried only")
    assert (await socket.next())["counts"] == {"total": 41, "unread": 40, "unseen": 39}

    # A gap: seq 3 is announced, seq 2 never was. The stream reads the log: 2 and 3 once each, in order, as
    # stored, and counts them itself.
    _, _second = await _deliver_quietly(stack, subscriber_id, "second")
    _, third = await _deliver_quietly(stack, subscriber_id, "third")
    await stack.publish(channel, third)
    heard = [await socket.next(), await socket.next(), await socket.next()]
    assert [(event["__typename"], event["seq"]) for event in heard] == [
        ("NotificationReceived", 2),
        ("NotificationReceived", 3),
        ("CountsChanged", 3),
    ]
    assert [event["notification"]["subject"] for event in heard[:2]] == ["second", "third"]
    assert heard[2]["counts"] == {"total": 3, "unread": 3, "unseen": 3}
    with pytest.raises(TimeoutError):
        await socket.next(wait=1)  # nothing twice
    await socket.close()
