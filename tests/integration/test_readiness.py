"""`/readyz` tells the truth about its dependencies: 503 naming Redis while it is down, 200 once it is back."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx

from tests.servers import api_process
from tidings.app.embedded import valkey
from tidings.app.settings import Settings


async def _ready(client: httpx.AsyncClient, expected: int, limit: float = 20.0) -> dict[str, object]:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        response = await client.get("/readyz")
        if response.status_code == expected or loop.time() > deadline:
            assert response.status_code == expected, response.text
            body: dict[str, object] = response.json()
            return body
        await asyncio.sleep(0.1)


async def test_readyz_is_503_while_redis_is_stopped_and_200_after(settings: Settings, tmp_path: Path) -> None:
    redis = valkey(data_dir=None, log_path=tmp_path / "valkey.log")
    redis.start()
    own = settings.model_copy(update={"redis_url": redis.url, "readiness_timeout_seconds": 1.0})
    api, base = api_process(own, tmp_path / "api.log")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert await _ready(client, 200) == {"status": "ready"}

            redis.stop()
            down = await _ready(client, 503)
            assert down["status"] == "unavailable"
            failing = down["failing"]
            assert isinstance(failing, dict)
            assert list(failing) == ["redis"]  # MongoDB is fine and not blamed
            assert (await client.get("/healthz")).status_code == 200  # alive, just not ready

            redis.start()  # same port, as a restarted Redis
            assert await _ready(client, 200) == {"status": "ready"}
    finally:
        assert api.stop() in (0, -signal.SIGTERM), api.output()
        redis.stop()
