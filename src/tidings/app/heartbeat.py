"""File heartbeats for roles with no HTTP port (worker, scheduler), read by `tidings healthcheck ROLE`."""

from __future__ import annotations

import asyncio
import time
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
