"""A description of the machine and servers a benchmark ran on, recorded beside its figures."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from pymongo import AsyncMongoClient
from redis.asyncio import Redis


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _memory_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


async def describe(mongodb_url: str, redis_url: str, embedded: list[str]) -> dict[str, Any]:
    """CPU, cores usable by this process, memory, OS, Python, and the MongoDB and Redis servers' own versions."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    try:
        build = await mongo.admin.command("buildInfo")
    finally:
        await mongo.close()
    redis = Redis.from_url(redis_url)
    try:
        info = await redis.info("server")
    finally:
        await redis.aclose()
    return {
        "cpu": _cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "memoryGiB": _memory_gib(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "mongodb": f"{build.get('version', '?')} ({'embedded SecantusDB' if 'secantusdb' in embedded else 'URL'})",
        "redis": f"{info.get('server_name', 'redis')} {info.get('valkey_version') or info.get('redis_version')}"
        + (" (embedded)" if "valkey" in embedded else " (URL)"),
        "loadAverageAtStart": os.getloadavg()[0],
    }
