"""Scheduler leader election on a real Redis: one leader at a time, and a successor when it stops or dies."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pymongo.errors import AutoReconnect
from redis.asyncio import Redis

from tests.servers import RoleProcess, role_env
from tidings.app.settings import Settings
from tidings.tasks.scheduler import LEADER_KEY, LeaderLock, run_scheduler


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


class Scheduler:
    """One in-process scheduler loop that counts its ticks."""

    def __init__(self, redis: Redis, key: str, ttl: float = 1.0) -> None:
        self.lock = LeaderLock(redis, ttl, key=key)
        self.ticks = 0
        self.stop = asyncio.Event()
        self.task = asyncio.create_task(run_scheduler(self.lock, self._tick, 0.05, self.stop))

    async def _tick(self) -> None:
        self.ticks += 1

    async def halt(self) -> None:
        self.stop.set()
        await self.task


async def test_only_one_of_several_schedulers_ticks(redis: Redis) -> None:
    key = f"test:leader:{uuid.uuid4().hex}"
    schedulers = [Scheduler(redis, key) for _ in range(3)]
    await asyncio.sleep(1.0)
    counts = [scheduler.ticks for scheduler in schedulers]
    for scheduler in schedulers:
        await scheduler.halt()
    assert sorted(counts)[:2] == [0, 0], counts
    assert max(counts) >= 10, counts


async def test_a_stopped_leader_hands_over_at_once(redis: Redis) -> None:
    key = f"test:leader:{uuid.uuid4().hex}"
    first = Scheduler(redis, key, ttl=30.0)
    await asyncio.sleep(0.3)
    second = Scheduler(redis, key, ttl=30.0)
    await asyncio.sleep(0.3)
    assert first.ticks > 0
    assert second.ticks == 0
    await first.halt()  # releases the lock: no need to wait for the 30 s TTL
    await asyncio.sleep(0.5)
    await second.halt()
    assert second.ticks > 0


async def test_a_database_error_in_a_tick_does_not_end_the_leader(redis: Redis) -> None:
    """A primary election fails one tick; the next ticks run, and the leader keeps its lock."""
    key = f"test:leader:{uuid.uuid4().hex}"
    failures = 0
    ticks = 0

    async def tick() -> None:
        nonlocal failures, ticks
        ticks += 1
        if failures < 3:
            failures += 1
            raise AutoReconnect("primary stepped down")

    lock = LeaderLock(redis, 5.0, key=key)
    stop = asyncio.Event()
    task = asyncio.create_task(run_scheduler(lock, tick, 0.05, stop))
    for _ in range(100):
        if ticks >= 6:
            break
        await asyncio.sleep(0.05)
    assert not task.done(), task
    assert await redis.get(key) == lock.token.encode()
    stop.set()
    await task
    assert failures == 3
    assert ticks >= 6


async def test_a_dead_leader_is_replaced_after_its_lock_expires(redis: Redis) -> None:
    key = f"test:leader:{uuid.uuid4().hex}"
    dead = LeaderLock(redis, 1.0, key=key)
    assert await dead.acquire_or_renew()  # then never renews nor releases, as a killed process
    survivor = Scheduler(redis, key, ttl=1.0)
    await asyncio.sleep(0.5)
    assert survivor.ticks == 0
    await asyncio.sleep(1.2)
    assert not await dead.acquire_or_renew()  # the old leader, were it to wake, is now a follower
    await survivor.halt()
    assert survivor.ticks > 0


async def test_scheduler_process_leads_and_releases_on_sigterm(
    settings: Settings, redis: Redis, tmp_path: Path
) -> None:
    await redis.delete(LEADER_KEY)
    process = RoleProcess("scheduler", role_env(settings), tmp_path / "scheduler.log").start()
    try:
        process.wait_for_output("scheduler took leadership", timeout=60)
        assert await redis.get(LEADER_KEY) is not None
    finally:
        assert process.stop() == 0, process.output()
    assert process.process is not None
    assert process.process.returncode != -signal.SIGKILL
    assert await redis.get(LEADER_KEY) is None
