"""Real servers standing in for provider APIs: an SMTP server (aiosmtpd) and an HTTP server that record requests."""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from tidings.app.embedded import free_port


@dataclass
class SmtpSink:
    """Accepts mail like a relay; `replies` makes the next DATA commands fail; `stall_next_ehlo` holds a client."""

    messages: list[EmailMessage] = field(default_factory=list)
    replies: deque[str] = field(default_factory=deque)
    connections: int = 0
    stall_next_ehlo: float = 0.0
    stalled: threading.Event = field(default_factory=threading.Event)

    async def handle_EHLO(  # noqa: N802 (aiosmtpd's hook name)
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        self.connections += 1
        if self.stall_next_ehlo:
            delay, self.stall_next_ehlo = self.stall_next_ehlo, 0.0
            self.stalled.set()
            await asyncio.sleep(delay)
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:  # noqa: N802
        if self.replies:
            return self.replies.popleft()
        raw = envelope.content if isinstance(envelope.content, bytes) else str(envelope.content).encode()
        message = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        return "250 Message accepted"

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.messages)} of {count} emails arrived within {timeout}s")
            time.sleep(0.05)
        return list(self.messages)


@contextmanager
def smtp_sink() -> Iterator[tuple[SmtpSink, int]]:
    sink = SmtpSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class HttpSink:
    requests: list[HttpRequest] = field(default_factory=list)
    statuses: deque[int] = field(default_factory=deque)  # answers for the next requests; 200 when empty

    async def endpoint(self, request: Request) -> JSONResponse:
        self.requests.append(HttpRequest(request.method, request.url.path, dict(request.headers), await request.body()))
        status = self.statuses.popleft() if self.statuses else 200
        return JSONResponse({"ok": status < 400}, status_code=status)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[HttpRequest]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.requests)} of {count} requests arrived within {timeout}s")
            time.sleep(0.05)
        return list(self.requests)


@contextmanager
def serve_app(app: ASGIApp, name: str = "the HTTP server") -> Iterator[str]:
    """Serves a Starlette app on a free loopback port in its own thread (a provider's stand-in); yields its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise AssertionError(f"{name} did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@contextmanager
def http_sink() -> Iterator[tuple[HttpSink, str]]:
    """A real HTTP server recording every request, answering `statuses` in turn; yields it and its base URL."""
    sink = HttpSink()
    app = Starlette(routes=[Route("/{path:path}", sink.endpoint, methods=["GET", "POST", "PUT"])])
    with serve_app(app, "the HTTP sink") as base:
        yield sink, base


def header(request: HttpRequest, name: str) -> str:
    return request.headers.get(name.lower(), "")


def parts(message: EmailMessage) -> dict[str, Any]:
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    return {
        "subject": message["subject"],
        "to": message["to"],
        "html": html.get_content() if html is not None else None,
        "text": text.get_content() if text is not None else None,
        "message_id": message["message-id"],
    }
