"""Liveness and readiness endpoints. Readiness fails from the moment the api begins to stop (app/draining.py)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable

from starlette.requests import Request
from starlette.responses import JSONResponse

from tidings.app.draining import Draining
from tidings.app.resources import Resources

logger = logging.getLogger(__name__)


async def healthz(_: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def _check(name: str, probe: Awaitable[object], limit: float) -> tuple[str, str | None]:
    try:
        await asyncio.wait_for(probe, timeout=limit)
    except TimeoutError:
        return name, f"no answer within {limit:g}s"
    except Exception as exc:  # readiness reports every failure, whatever its type
        # The endpoint is public: name the kind of failure, keep hosts and details for the log.
        logger.warning("readiness: %s failed: %s", name, exc)
        return name, type(exc).__name__
    return name, None


async def readyz(request: Request) -> JSONResponse:
    draining: Draining = request.state.draining
    if draining.started:
        return JSONResponse({"status": "stopping"}, status_code=503)
    resources: Resources = request.state.resources
    timeout = resources.settings.readiness_timeout_seconds
    results = await asyncio.gather(
        _check("mongodb", resources.mongo.admin.command("ping"), timeout),
        _check("redis", resources.redis.ping(), timeout),
    )
    failing = {name: reason for name, reason in results if reason is not None}
    if failing:
        return JSONResponse({"status": "unavailable", "failing": failing}, status_code=503)
    return JSONResponse({"status": "ready"})
