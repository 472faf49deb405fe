"""Prometheus metrics of the HTTP layer and the `/metrics` endpoint."""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HTTP_REQUESTS = Counter("tidings_http_requests_total", "HTTP requests served", ["method", "path", "status"])
HTTP_DURATION = Histogram("tidings_http_request_duration_seconds", "HTTP request duration", ["method", "path"])
QUEUE_LENGTH = Gauge("tidings_queue_length", "Entries in the task stream (bounded by TIDINGS_QUEUE_MAXLEN)")
QUEUE_PENDING = Gauge("tidings_queue_pending", "Deliveries taken by a worker and not yet acknowledged")
QUEUE_LAG = Gauge("tidings_queue_lag", "Entries no worker has read yet")
QUEUE_CONSUMERS = Gauge("tidings_queue_consumers", "Worker consumers registered in the group")
QUEUE_SAMPLE_SECONDS = 5.0

logger = logging.getLogger(__name__)


class HttpMetricsMiddleware:
    """Counts and times requests; the path label is the template of the route taken, one of `known_paths`, or
    "other", to bound cardinality."""

    def __init__(self, app: ASGIApp, known_paths: frozenset[str]) -> None:
        self.app = app
        self.known_paths = known_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
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
            # The route's template (`/v2/subscribers/{subscriberId}`), which the router left in the scope.
            template = getattr(scope.get("route"), "path", None)
            path = template if template in self.known_paths else "other"
            HTTP_REQUESTS.labels(scope["method"], path, str(status)).inc()
            HTTP_DURATION.labels(scope["method"], path).observe(time.perf_counter() - started)


async def metrics(_: Request) -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


async def sample_queue_forever(redis: Redis, stream: str, group: str) -> None:
    """Every API process samples the task stream, so the queue has a metric without a scrape target per worker."""
    while True:
        try:
            QUEUE_LENGTH.set(await redis.xlen(stream))
            for info in await redis.xinfo_groups(stream):
                if info["name"] in (group, group.encode()):
                    QUEUE_PENDING.set(info["pending"])
                    QUEUE_LAG.set(info.get("lag") or 0)
                    QUEUE_CONSUMERS.set(info["consumers"])
        except RedisError as exc:
            logger.debug("queue sample failed: %s", exc)
        await asyncio.sleep(QUEUE_SAMPLE_SECONDS)
