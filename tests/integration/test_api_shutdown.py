"""One api process stopped with SIGTERM, watched closely: the quick check of what the rolling restart test relies on."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.api.conftest import GraphQL
from tests.inbox_client import Socket
from tests.integration.test_rolling_restart import EXIT_SLACK, SESSION, STARTUP, _half_request, _stop
from tests.servers import SECRET_KEY, RoleProcess, beanie_database, role_env
from tidings.app.embedded import free_port
from tidings.app.settings import Settings, env_name
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

DELAY = 1.5
GRACE = 3


@pytest.mark.timeout(300)
async def test_sigterm_fails_readiness_closes_websockets_with_1012_and_bounds_the_wait(
    settings: Settings, tmp_path: Path
) -> None:
    settings = settings.model_copy(update={"api_shutdown_delay_seconds": DELAY, "api_shutdown_grace_seconds": GRACE})
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = RoleProcess("api", role_env(settings, **{env_name("port"): str(port)}), tmp_path / "api.log").start()
    try:
        async with beanie_database(settings), httpx.AsyncClient(base_url=base, timeout=30) as client:
            issued = await create_environment("stop", cipher=Cipher(SECRET_KEY))
            await asyncio.to_thread(api.wait_for_output, "Application startup complete", STARTUP)
            app = issued.environment.application_identifier
            session = (await GraphQL(client, None).data(SESSION, app=app, id="ada"))["inboxSession"]
            socket = await Socket.open(base, {"token": session["token"]})
            await socket.subscribe(after=str(session["seq"]))
            assert (await socket.next())["__typename"] == "CountsChanged"
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            reader, writer, rest = await _half_request(base)  # in flight when the signal comes
            stuck = await _half_request(base)  # never completed: only the grace ends the wait for it

            stopping = asyncio.create_task(_stop(api, DELAY + GRACE + EXIT_SLACK))
            signalled = time.monotonic()
            answers: list[tuple[int, dict[str, str]]] = []
            while (not answers or answers[-1][0] != 503) and time.monotonic() - signalled < 30:
                response = await client.get("/readyz")
                answers.append((response.status_code, response.json()))
            assert answers[-1] == (503, {"status": "stopping"})
            # Still listening during the delay: a request routed here before the load balancer noticed is served.
            assert (await client.get("/healthz")).status_code == 200

            with pytest.raises(websockets.ConnectionClosed):
                await socket.next(wait=DELAY + 10)
            closed = time.monotonic() - signalled
            assert socket.connection.close_code == 1012
            assert socket.connection.close_reason == "server restarting: reconnect now with after=<last cursor>"
            assert DELAY <= closed < DELAY + 3, f"closed {closed:.1f}s after SIGTERM"

            writer.write(rest)
            await writer.drain()
            assert (await asyncio.wait_for(reader.readline(), 10)).startswith(b"HTTP/1.1 200")
            writer.close()

            code, took = await stopping
            stuck[1].close()
    finally:
        if api.process is not None and api.process.poll() is None:
            api.process.kill()
    assert code == 0, api.output()
    assert took >= DELAY + GRACE, f"exited {took:.1f}s after SIGTERM, before the grace for the stuck request ended"
    assert "timeout graceful shutdown exceeded" in api.output()
