"""Prometheus metrics of the HTTP layer and the `/metrics` endpoint."""

from __future__ import annotations

import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter("tidings_http_requests_total", "HTTP requests served", ["method", "path", "status"])
HTTP_DURATION = Histogram("tidings_http_request_duration_seconds", "HTTP request duration", ["method", "path"])


class HttpMetricsMiddleware:
    """Counts and times requests; the path label is one of `known_paths` or "other", to bound cardinality."""

    def __init__(self, app: ASGIApp, known_paths: frozenset[str]) -> None:
        self.app = app
        self.known_paths = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if scope["path"] in self.known_paths else "other"
        status = 500
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
            HTTP_DURATION.labels(scope["method"], path).observe(time.perf_counter() - started)


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
