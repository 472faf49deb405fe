"""Liveness for `tidings healthcheck ROLE`: file heartbeats for worker and scheduler, `/healthz` for the api."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path


def heartbeat_path(directory: Path, role: str) -> Path:
    return directory / f"tidings-{role}.heartbeat"


async def beat_forever(path: Path, interval: float) -> None:
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    while True:
        await asyncio.to_thread(path.touch)
        await asyncio.sleep(interval)


def is_alive(path: Path, interval: float) -> bool:
    """Alive when the role touched its file within three intervals (one missed beat is tolerated)."""
    try:
        return time.time() - path.stat().st_mtime < 3 * interval
    except FileNotFoundError:
        return False


def api_is_alive(host: str, port: int, timeout: float = 3.0) -> bool:
    address = "127.0.0.1" if host in ("0.0.0.0", "") else host  # a wildcard bind answers on loopback
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/healthz", timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False
