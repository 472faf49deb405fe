"""The api role's HTTP server: uvicorn, with a graceful stop that suits rolling deploys.

On SIGTERM (or Ctrl-C): `/readyz` answers 503 at once; the server keeps serving for
`api_shutdown_delay_seconds` (time for the load balancer to notice), then stops listening, closes every inbox
websocket with 1012 and a reason, and lets in-flight HTTP requests finish for up to `api_shutdown_grace_seconds`
before it cancels them and closes the resources. It then exits 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import signal
import socket
from collections.abc import Callable, Iterator

import uvicorn
from starlette.applications import Starlette

from tidings.app.draining import Draining
from tidings.app.settings import Settings

logger = logging.getLogger(__name__)

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class ApiServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, draining: Draining, *, delay: float, grace: int) -> None:
        super().__init__(config)
        self.draining = draining
        self.delay = delay
        self.grace = grace

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.draining.begin()
        grace = self.grace
        logger.info(
            "api stopping: /readyz is 503, stop listening in %gs, then up to %ds for the rest", self.delay, grace
        )
        if self.delay:
            await asyncio.sleep(self.delay)  # still listening: requests routed here meanwhile are served
        # Stop listening before the websockets are told to reconnect, so none of them reconnects here.
        for server in self.servers:
            server.close()
        for sock in sockets or []:
            sock.close()
        loop = asyncio.get_running_loop()
        closing = loop.time()
        await self.draining.close_connections(grace)
        # One grace for the whole stop: what closing the websockets took is not given to requests again.
        self.config.timeout_graceful_shutdown = max(1, math.ceil(grace - (loop.time() - closing)))
        await super().shutdown(sockets)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # uvicorn re-raises the signal after its graceful stop, so the process would end "killed by SIGTERM" (-15):
        # a finished graceful stop is a success, and exits 0.
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in _STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve_api(settings: Settings, create_app: Callable[[Settings, Draining], Starlette]) -> None:
    draining = Draining()
    config = uvicorn.Config(
        create_app(settings, draining),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        log_config=None,  # uvicorn's loggers go through the root handler of tidings.app.logs (JSON lines)
        lifespan="on",
        ws="websockets-sansio",
        timeout_graceful_shutdown=settings.api_shutdown_grace_seconds,
    )
    grace = settings.api_shutdown_grace_seconds
    ApiServer(config, draining, delay=settings.api_shutdown_delay_seconds, grace=grace).run()
