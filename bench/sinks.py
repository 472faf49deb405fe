"""Stand-ins for providers, each run as its own process so its work never shares the measuring client's interpreter.

`python -m bench.sinks smtp --port P --status-port S` accepts mail (aiosmtpd); `python -m bench.sinks http --port P`
answers every POST with 200 and `{}`. Both record when each recipient's message arrived and how many bytes came;
`GET /status` (on the status port for SMTP, on the same port for HTTP) answers that as JSON and `POST /reset` clears
it. The HTTP server is a few lines over asyncio streams rather than a framework, so it answers far faster than the
clients it measures. `SinkProcess` starts one from a benchmark and reads it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from aiosmtpd.smtp import SMTP, Envelope, Session

from tidings.app.embedded import free_port

HOST = "127.0.0.1"
_CONTROL_PATHS = frozenset({"/status", "/reset"})

type Answer = tuple[int, bytes]
type Handler = Callable[[str, str, bytes], Answer]


@dataclass
class Received:
    """When each recipient's message arrived (wall clock, comparable across processes) and the bytes received."""

    at: dict[str, float] = field(default_factory=dict)
    count: int = 0
    size: int = 0

    def add(self, key: str, size: int) -> None:
        self.at[key] = time.time()
        self.count += 1
        self.size += size

    def control(self, method: str, path: str) -> Answer:
        if method == "POST" and path == "/reset":
            self.at, self.count, self.size = {}, 0, 0
            return 200, b"{}"
        if method == "GET" and path == "/status":
            return 200, json.dumps({"count": self.count, "bytes": self.size, "at": self.at}).encode()
        return 404, b"{}"


async def _serve_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handle: Handler) -> None:
    """HTTP/1.1 with keep-alive and Content-Length bodies: all that httpx sends for a bytes body."""
    try:
        while line := await reader.readline():
            method, target, _ = line.decode("latin-1").split(" ", 2)
            length, close = 0, False
            while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = header.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
            body = await reader.readexactly(length) if length else b""
            status, payload = handle(method, target, body)
            head = f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
            writer.write(head.encode() + payload)
            await writer.drain()
            if close:
                break
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


def _webhook_handler(received: Received) -> Handler:
    def handle(method: str, target: str, body: bytes) -> Answer:
        if target in _CONTROL_PATHS:
            return received.control(method, target)
        # Keyed by the subscriber the message was for: the webhook body and the floor's both name it.
        received.add(str(json.loads(body).get("subscriberId")), len(body))
        return 200, b"{}"

    return handle


class _MailHandler:
    def __init__(self, received: Received) -> None:
        self.received = received

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802 (aiosmtpd)
        content = envelope.original_content or b""
        for recipient in envelope.rcpt_tos:
            self.received.add(recipient, len(content))
        return "250 Message accepted"


async def _http_server(port: int, handle: Handler) -> asyncio.Server:
    return await asyncio.start_server(lambda r, w: _serve_http(r, w, handle), HOST, port, backlog=1024)


async def run_sink(kind: str, port: int, status_port: int) -> None:
    received = Received()
    servers: list[asyncio.Server] = []
    if kind == "smtp":
        loop = asyncio.get_running_loop()
        # A fixed hostname: aiosmtpd would otherwise look up the FQDN for every connection.
        mail = await loop.create_server(lambda: SMTP(_MailHandler(received), hostname="sink"), HOST, port)
        servers += [mail, await _http_server(status_port, lambda m, t, _: received.control(m, t))]
    else:
        servers.append(await _http_server(port, _webhook_handler(received)))
    print("ready", flush=True)
    await asyncio.gather(*(server.serve_forever() for server in servers))


@dataclass
class Status:
    count: int
    size: int
    at: dict[str, float]


class SinkProcess:
    """A sink in a child process: `port` takes the messages, `status_url` answers what it received."""

    def __init__(self, kind: str, log: Path) -> None:
        self.kind = kind
        self.port = free_port()
        self._status_port = free_port() if kind == "smtp" else self.port
        self.status_url = f"http://{HOST}:{self._status_port}"
        self.url = f"http://{HOST}:{self.port}"
        log.parent.mkdir(parents=True, exist_ok=True)
        self._log = log.open("w")
        argv = [sys.executable, "-m", "bench.sinks", kind, "--port", str(self.port)]
        argv += ["--status-port", str(self._status_port)]
        self.process = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT)

    async def ready(self, client: httpx.AsyncClient, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"the {self.kind} sink exited with {self.process.returncode}")
            try:
                await self.status(client)
                return
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)

    async def status(self, client: httpx.AsyncClient) -> Status:
        body = (await client.get(self.status_url + "/status")).json()
        return Status(body["count"], body["bytes"], body["at"])

    async def reset(self, client: httpx.AsyncClient) -> None:
        (await client.post(self.status_url + "/reset")).raise_for_status()

    async def wait_for(self, client: httpx.AsyncClient, count: int, stall: float) -> Status:
        """The status once `count` messages arrived; raises when none arrived for `stall` seconds before that (a
        slow system is measured, a stuck one fails)."""
        progress, deadline = -1, 0.0
        while (status := await self.status(client)).count < count:
            if status.count > progress:
                progress, deadline = status.count, time.monotonic() + stall
            elif time.monotonic() > deadline:
                raise AssertionError(f"the {self.kind} sink received {status.count} of {count}, none in {stall:.0f}s")
            await asyncio.sleep(0.05)
        return status

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self._log.close()


@contextmanager
def sink_process(kind: str, log: Path) -> Iterator[SinkProcess]:
    sink = SinkProcess(kind, log)
    try:
        yield sink
    finally:
        sink.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="A local provider stand-in that counts what it receives.")
    parser.add_argument("kind", choices=["smtp", "http"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--status-port", type=int, required=True)
    args = parser.parse_args()
    # A faster loop keeps the sink far from being the bottleneck; the plain one works too.
    try:
        import uvloop  # noqa: PLC0415

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    asyncio.run(run_sink(args.kind, args.port, args.status_port), loop_factory=factory)


if __name__ == "__main__":
    main()
