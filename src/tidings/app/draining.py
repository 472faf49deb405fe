"""The api's stop sequence, shared by the parts that take part in it.

The server (`api_server.py`) begins it on SIGTERM. From then on `/readyz` answers 503, so load balancers stop
sending new work here; when the server stops listening it runs the close hooks, which end every inbox websocket
with 1012 ("service restart") so clients reconnect to another instance at once and resume from their cursor.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)


class Draining:
    def __init__(self) -> None:
        self.started = False
        self._close_hooks: list[Callable[[], Coroutine[Any, Any, None]]] = []

    def on_close(self, hook: Callable[[], Coroutine[Any, Any, None]]) -> None:
        self._close_hooks.append(hook)

    def begin(self) -> None:
        self.started = True

    async def close_connections(self, limit: float) -> None:
        """Run the close hooks; give up after `limit` seconds: a client that stopped reading must not hold a deploy."""
        self.started = True
        hooks = [asyncio.create_task(hook()) for hook in self._close_hooks]
        if not hooks:
            return
        done, late = await asyncio.wait(hooks, timeout=limit)
        for task in late:
            task.cancel()
        for task in done:
            if (error := task.exception()) is not None:
                logger.warning("closing connections failed: %r", error)
        if late:
            logger.warning("closing connections took over %gs; the server drops what is left", limit)
