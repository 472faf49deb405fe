"""The `/metrics` port of the worker and scheduler roles (the api serves /metrics on its own HTTP port).

Each role is one Python process (the worker runs its tasks on one event loop), so the default registry holds every
sample of the process and prometheus-client's multiprocess mode is not needed. The server runs in a daemon thread
of prometheus-client: scrapes never wait for the event loop, and a busy loop never delays them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import start_http_server

logger = logging.getLogger(__name__)


@asynccontextmanager
async def metrics_server(host: str, port: int, role: str) -> AsyncIterator[int | None]:
    """Serve the process's metrics on `host:port` while the block runs; yields the port, or None when not served.

    A port already taken (two workers on one host with the same setting) is logged and the role runs on without
    metrics, rather than not at all: metrics must never be the reason work stops.
    """
    if port == 0:
        yield None
        return
    try:
        server, thread = start_http_server(port, addr=host)
    except OSError as exc:
        logger.warning("%s metrics not served: cannot listen on %s:%d (%s)", role, host, port, exc.strerror or exc)
        yield None
        return
    logger.info("%s metrics on http://%s:%d/metrics", role, host, port)
    try:
        yield port
    finally:
        await asyncio.to_thread(server.shutdown)  # waits for its poll loop (up to half a second)
        server.server_close()
        thread.join(timeout=5)
