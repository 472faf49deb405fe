"""A rolling restart under steady traffic loses nothing and repeats nothing.

Two api processes (A, B), two workers and a scheduler run on the embedded servers. A subscriber follows its inbox
over a websocket on A while triggers (an in-app step, then an email step to an SMTP sink) arrive steadily through a
small "load balancer" that sends each to a live api and retries it elsewhere, with the same transactionId, when an
api goes away. Meanwhile every process but the scheduler is stopped with SIGTERM and replaced, the way a Kubernetes
Deployment rolls: A, then each worker, then B.

One of the heavy integration tests (it starts nine role processes): about 5 minutes on the shared 2-core machine
(4:53 measured under a load average of 10), most of it Python starting the replacement processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.inbox_client import SUBSCRIBE
from tests.integration.test_engine import CREATE_INTEGRATION, CREATE_WORKFLOW, engine_settings
from tests.servers import SECRET_KEY, RoleProcess, beanie_database, role_env
from tests.sinks import smtp_sink
from tidings.app.embedded import free_port
from tidings.app.settings import Settings, env_name
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment
from tidings.inbox.documents import InboxMessage
from tidings.notifications.documents import Job, JobStatus

TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId duplicate } }"
SESSION = """mutation($app: String!, $id: String!) {
    inboxSession(applicationIdentifier: $app, subscriberId: $id) { token seq } }"""
WORKFLOW = "roll"
API_DELAY = 2.0  # /readyz says 503 this long before the api stops listening
API_GRACE = 8
WORKER_GRACE = 10.0
# Beyond its grace, a process needs time to close MongoDB and Redis and for Python to tear down: under a second on
# an idle machine, but measured at 5-8 s here while other test suites share the two cores.
EXIT_SLACK = 30.0
STARTUP = 120.0  # starting a role imports Strawberry, Beanie and Taskiq: slow while other tests share the cores
# Triggers are released per phase, so that each restart happens under traffic however long the machine takes for
# it: a few to warm up, then a batch as each of the four processes (A, worker 1, worker 2, B) is stopped.
WARM_UP, PER_RESTART, TRIGGER_INTERVAL = 12, 20, 0.4
FINAL = {JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.SKIPPED, JobStatus.CANCELED, JobStatus.MERGED}


@dataclass
class Balancer:
    """The api processes a load balancer would route to: a stopping one is taken out before its SIGTERM."""

    live: list[str] = field(default_factory=list)
    turn: int = 0

    def pick(self, avoid: str | None = None) -> str:
        choices = [base for base in self.live if base != avoid] or self.live
        self.turn += 1
        return choices[self.turn % len(choices)]


@dataclass
class Close:
    base: str
    code: int | None
    reason: str
    at: float


@dataclass
class Follower:
    """A graphql-transport-ws client that, like the widget, reconnects at once on 1012 and resumes with `after`."""

    balancer: Balancer
    token: str
    cursor: str
    received: list[dict[str, Any]] = field(default_factory=list)  # every NotificationReceived, as it came
    closes: list[Close] = field(default_factory=list)
    connections: list[str] = field(default_factory=list)
    live: asyncio.Event = field(default_factory=asyncio.Event)
    closed: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, first: str) -> None:
        base: str | None = first
        while not self.stop.is_set():
            base = base or self.balancer.pick()
            try:
                await self._follow(base)
            except (OSError, websockets.InvalidHandshake, websockets.ConnectionClosed, TimeoutError):
                await asyncio.sleep(0.1)  # that api was not there (any more): try another
                base = None
                continue
            base = None if self.stop.is_set() else self.balancer.pick(avoid=self.closes[-1].base)

    async def _follow(self, base: str) -> None:
        url = base.replace("http://", "ws://") + "/graphql"
        async with websockets.connect(
            url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")], open_timeout=30
        ) as socket:
            await socket.send(json.dumps({"type": "connection_init", "payload": {"token": self.token}}))
            ack = json.loads(await asyncio.wait_for(socket.recv(), 30))
            assert ack["type"] == "connection_ack", ack
            subscribe = {"query": SUBSCRIBE, "variables": {"after": self.cursor}}
            await socket.send(json.dumps({"id": "1", "type": "subscribe", "payload": subscribe}))
            self.connections.append(base)
            self.live.set()
            stopping = asyncio.ensure_future(self.stop.wait())
            try:
                while True:
                    receiving = asyncio.ensure_future(socket.recv())
                    await asyncio.wait({receiving, stopping}, return_when=asyncio.FIRST_COMPLETED)
                    if stopping.done():
                        receiving.cancel()
                        return
                    try:
                        message = json.loads(receiving.result())
                    except websockets.ConnectionClosed:
                        self.closes.append(Close(base, socket.close_code, socket.close_reason or "", time.monotonic()))
                        self.live.clear()
                        self.closed.set()
                        return
                    if message["type"] == "ping":
                        await socket.send(json.dumps({"type": "pong"}))
                    self._on(message)
            finally:
                stopping.cancel()

    def _on(self, message: dict[str, Any]) -> None:
        assert message["type"] in ("next", "ping", "pong"), message
        if message["type"] != "next":
            return
        assert "errors" not in message["payload"], message
        event = message["payload"]["data"]["inboxEvents"]
        if event["__typename"] == "NotificationReceived":
            self.received.append(event)
        self.cursor = event["cursor"]  # a CountsChanged carries the seq of the last event it reflects


@dataclass
class Triggers:
    """Sends `roll-<n>` triggers through the balancer; an api that goes away gets the same transactionId again."""

    client: httpx.AsyncClient
    balancer: Balancer
    api_key: str
    accepted: list[int] = field(default_factory=list)
    retried: int = 0
    duplicates: list[str] = field(default_factory=list)  # retries the api had already accepted: a lost response
    allowed: int = 0
    more: asyncio.Event = field(default_factory=asyncio.Event)
    done: bool = False

    def allow(self, count: int) -> None:
        self.allowed += count
        self.more.set()

    def finish(self) -> None:
        self.done = True
        self.more.set()

    async def run(self) -> None:
        number = 0
        while True:
            while number < self.allowed:
                await self._send(number)
                number += 1
                await asyncio.sleep(TRIGGER_INTERVAL)  # pacing: a steady stream, not a burst
            if self.done:
                return
            self.more.clear()
            await self.more.wait()

    async def _send(self, number: int) -> None:
        variables = {
            "input": {
                "workflowId": WORKFLOW,
                "to": [{"subscriber": {"subscriberId": "ada", "email": "ada@example.com"}}],
                "payload": {"n": number},
                "transactionId": f"roll-{number}",
            }
        }
        deadline = time.monotonic() + 90
        attempt = 0
        while True:
            base = self.balancer.pick()
            try:
                response = await self.client.post(
                    f"{base}/graphql",
                    json={"query": TRIGGER, "variables": variables},
                    headers={"Authorization": f"ApiKey {self.api_key}"},
                )
                body = response.json() if response.status_code == 200 else {}
            except httpx.TransportError:
                body = {}
            if body.get("data") and not body.get("errors"):
                if body["data"]["trigger"]["duplicate"]:
                    self.duplicates.append(f"roll-{number}")
                self.accepted.append(number)
                self.retried += attempt > 0
                return
            attempt += 1
            assert time.monotonic() < deadline, f"trigger {number} was never accepted: last answer {body}"
            await asyncio.sleep(0.2)


async def _until(check: Any, limit: float, what: str, logs: Any) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {limit}s\n{logs()}")
        await asyncio.sleep(0.1)


async def _stop(process: RoleProcess, limit: float) -> tuple[int | None, float]:
    """SIGTERM, then wait up to `limit` seconds: (exit code or None if still running, seconds it took)."""
    assert process.process is not None
    started = time.monotonic()
    process.process.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        await asyncio.to_thread(process.process.wait, limit)
    return process.process.poll(), time.monotonic() - started


@contextmanager
def _cleanup(processes: list[RoleProcess]) -> Iterator[None]:
    try:
        yield
    finally:
        for process in reversed(processes):
            if process.process is not None and process.process.poll() is None:
                process.process.kill()
                process.process.wait()


async def _half_request(base: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bytes]:
    """An HTTP request in flight: its headers and half its body are sent, the rest is returned to send later."""
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = json.dumps({"query": "{ __typename }"}).encode()
    head = f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {len(body)}"
    writer.write(head.encode() + b"\r\n\r\n" + body[:5])
    await writer.drain()
    return reader, writer, body[5:]


def _settings(mongodb_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return engine_settings(mongodb_url, redis_url, tmp_path).model_copy(
        update={
            "api_shutdown_delay_seconds": API_DELAY,
            "api_shutdown_grace_seconds": API_GRACE,
            "worker_shutdown_grace_seconds": WORKER_GRACE,
        }
    )


@pytest.mark.timeout(900)  # nine role processes start here; each takes 5-60 s to import on a loaded machine
async def test_a_rolling_restart_under_traffic_loses_and_repeats_nothing(
    mongodb_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = _settings(mongodb_url, redis_url, tmp_path)
    processes: list[RoleProcess] = []
    began = time.monotonic()

    def phase(name: str) -> None:
        print(f"{time.monotonic() - began:6.1f}s {name}", flush=True)  # shown when the test fails: where it was

    def logs() -> str:
        return "\n".join(f"--- {p.log_path.name}\n{p.output()[-2500:]}" for p in processes)

    async def role(name: str, log: str, ready: str) -> RoleProcess:
        process = RoleProcess(name, role_env(settings), tmp_path / log).start()
        processes.append(process)
        await asyncio.to_thread(process.wait_for_output, ready, STARTUP)
        return process

    async def api(log: str) -> tuple[RoleProcess, str]:
        port = free_port()
        process = RoleProcess("api", role_env(settings, **{env_name("port"): str(port)}), tmp_path / log).start()
        processes.append(process)
        await asyncio.to_thread(process.wait_for_output, "Application startup complete", STARTUP)
        return process, f"http://127.0.0.1:{port}"

    with smtp_sink() as (smtp, smtp_port), _cleanup(processes):
        async with beanie_database(settings), httpx.AsyncClient(timeout=60) as client:
            issued = await create_environment("roll", cipher=Cipher(SECRET_KEY))
            (api_a, base_a), (api_b, base_b) = await asyncio.gather(api("api-a.log"), api("api-b.log"))
            workers = list(
                await asyncio.gather(*(role("worker", f"worker-{n}.log", "worker consuming") for n in (1, 2)))
            )
            scheduler = await role("scheduler", "scheduler.log", "scheduler took leadership")
            balancer = Balancer([base_a, base_b])
            admin = {"Authorization": f"ApiKey {issued.api_key}"}

            async def gql(base: str, query: str, headers: dict[str, str], **variables: Any) -> dict[str, Any]:
                response = await client.post(
                    f"{base}/graphql", json={"query": query, "variables": variables}, headers=headers
                )
                assert response.status_code == 200, response.text
                assert "errors" not in response.json(), response.text
                data: dict[str, Any] = response.json()["data"]
                return data

            smtp_config = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "fromEmail": "t@example.com"}
            await gql(
                base_b, CREATE_INTEGRATION, admin, input={"providerId": "smtp", "name": "S", "config": smtp_config}
            )
            steps = [
                {"inApp": {"stepId": "inbox", "subject": "Roll {{ payload.n }}", "body": "n={{ payload.n }}"}},
                {"email": {"stepId": "mail", "subject": "Roll {{ payload.n }}", "body": "<p>{{ payload.n }}</p>"}},
            ]
            await gql(base_b, CREATE_WORKFLOW, admin, input={"workflowId": WORKFLOW, "name": "Roll", "steps": steps})
            app = issued.environment.application_identifier
            session = (await gql(base_b, SESSION, {}, app=app, id="ada"))["inboxSession"]

            follower = Follower(balancer, session["token"], str(session["seq"]))
            following = asyncio.create_task(follower.run(base_a))
            await asyncio.wait_for(follower.live.wait(), 60)
            triggers = Triggers(client, balancer, issued.api_key)
            sending = asyncio.create_task(triggers.run())
            triggers.allow(WARM_UP)

            async def received(count: int) -> bool:
                for task in (sending, following):
                    assert not task.done() or task.exception() is None, task.exception()
                return len(follower.received) >= count

            await _until(lambda: received(3), 60, "the first notifications over the websocket", logs)

            phase("traffic flows; stopping A")
            # --- A: readiness fails at once, the websocket is told 1012, a request in flight still gets its answer.
            triggers.allow(PER_RESTART)
            finishing = await _half_request(base_a)
            stuck = await _half_request(base_a)  # never completed: the grace must bound the wait for it
            balancer.live.remove(base_a)
            follower.closed.clear()
            sigterm_a = time.monotonic()
            api_a_exit = asyncio.create_task(_stop(api_a, API_DELAY + API_GRACE + EXIT_SLACK))
            readiness: list[int] = []
            while not follower.closed.is_set() and time.monotonic() - sigterm_a < 30:
                try:
                    readiness.append((await client.get(f"{base_a}/readyz", timeout=5)).status_code)
                except httpx.TransportError:
                    break  # stopped listening
                await asyncio.sleep(0.05)
            await asyncio.wait_for(follower.closed.wait(), API_DELAY + 10)
            close_a = follower.closes[-1]
            assert (close_a.base, close_a.code) == (base_a, 1012), (close_a, logs())
            assert "reconnect" in close_a.reason
            assert close_a.at - sigterm_a < API_DELAY + 3, f"1012 came {close_a.at - sigterm_a:.1f}s after SIGTERM"
            assert 503 in readiness, readiness
            reader, writer, rest = finishing
            writer.write(rest)
            await writer.drain()
            status_line = await asyncio.wait_for(reader.readline(), 30)
            assert status_line.startswith(b"HTTP/1.1 200"), status_line
            writer.close()
            code_a, took_a = await api_a_exit
            assert code_a == 0, f"api A: exit {code_a} after {took_a:.1f}s\n{logs()}"
            stuck[1].close()
            api_a2, base_a2 = await api("api-a2.log")
            balancer.live.append(base_a2)
            await asyncio.wait_for(follower.live.wait(), 30)
            assert follower.connections[-1] == base_b

            phase("A replaced; rolling the workers")
            # --- The workers, one after the other: each finishes what it runs and leaves with 0.
            for index, worker in enumerate(list(workers), start=1):
                triggers.allow(PER_RESTART)
                await asyncio.sleep(2 * TRIGGER_INTERVAL)  # pacing: SIGTERM lands while this batch is being run
                code, took = await _stop(worker, WORKER_GRACE + EXIT_SLACK)
                assert code == 0, f"worker {index}: exit {code} after {took:.1f}s\n{logs()}"
                drained = worker.output().partition("worker stopping")[2].count("step completed")
                phase(f"worker {index} left after {took:.1f}s, finishing {drained} steps after SIGTERM")
                workers.append(await role("worker", f"worker-{index}b.log", "worker consuming"))

            phase("workers replaced; stopping B")
            # --- B: the follower, now on B, is told 1012 again and moves to the new A.
            triggers.allow(PER_RESTART)
            balancer.live.remove(base_b)
            follower.closed.clear()
            sigterm_b = time.monotonic()
            code_b, took_b = await _stop(api_b, API_DELAY + API_GRACE + EXIT_SLACK)
            assert code_b == 0, f"api B: exit {code_b} after {took_b:.1f}s\n{logs()}"
            await asyncio.wait_for(follower.closed.wait(), 10)
            close_b = follower.closes[-1]
            assert (close_b.base, close_b.code) == (base_b, 1012), (close_b, logs())
            assert close_b.at - sigterm_b < API_DELAY + 3, f"1012 came {close_b.at - sigterm_b:.1f}s after SIGTERM"
            api_b2, base_b2 = await api("api-b2.log")
            balancer.live.append(base_b2)
            await asyncio.wait_for(follower.live.wait(), 30)
            assert follower.connections[-1] == base_a2

            phase("B replaced; waiting for the last deliveries")
            triggers.finish()
            await asyncio.wait_for(sending, 180)
            count = len(triggers.accepted)
            assert count == WARM_UP + 4 * PER_RESTART
            await _until(lambda: received(count), 120, f"{count} notifications over the websocket", logs)
            await asyncio.to_thread(smtp.wait_for, count, 120)

            async def settled() -> bool:
                jobs = await Job.find({"workflow_id": WORKFLOW}).to_list()
                return len(jobs) == 2 * count and all(job.status in FINAL for job in jobs)

            await _until(settled, 120, "every job finished", logs)
            messages = await InboxMessage.find({"workflow_id": WORKFLOW}).to_list()
            follower.stop.set()
            await asyncio.wait_for(following, 30)

            phase(f"{count} triggers settled ({triggers.retried} sent again elsewhere); stopping the rest")
            final = [api_a2, api_b2, *workers[2:], scheduler]
            for process in final:
                code, took = await _stop(process, 30)
                assert code == 0, f"{process.log_path.name}: exit {code} after {took:.1f}s\n{logs()}"

    expected = [f"Roll {n}" for n in range(count)]
    # Every accepted trigger: one in-app message, one email, one event on the websocket, in seq order.
    assert sorted(triggers.accepted) == list(range(count))
    assert triggers.duplicates == [], "a response was lost: the api stopped before answering a request it ran"
    assert Counter(message.transaction_id for message in messages) == Counter(f"roll-{n}" for n in range(count))
    assert sorted(Counter(str(message["subject"]) for message in smtp.messages).items()) == sorted(
        Counter(expected).items()
    )
    seqs = [event["seq"] for event in follower.received]
    assert seqs == list(range(session["seq"] + 1, session["seq"] + 1 + count)), seqs
    assert sorted(event["notification"]["subject"] for event in follower.received) == sorted(expected)
    assert [close.code for close in follower.closes] == [1012, 1012]
