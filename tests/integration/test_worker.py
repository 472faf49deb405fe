"""The worker role: tasks enqueued elsewhere run in a separate worker process, and survive a SIGKILL mid-run."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, isolated_settings, role_env
from tidings.app.resources import Resources, open_resources
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.diagnostics.documents import Probe, ProbeStatus
from tidings.diagnostics.service import create_probe, get_probe
from tidings.environments.service import create_environment
from tidings.tasks.diagnostics import probe as probe_task


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[Resources]:
    """The producing side opens its resources exactly as the API process does."""
    async with open_resources(settings) as resources:
        yield resources
        await resources.mongo.drop_database(settings.mongodb_database)


async def _enqueue_probe(resources: Resources, hold_seconds: float = 0.0) -> str:
    probe = await create_probe(hold_seconds)
    await probe_task.kicker().with_broker(resources.broker).kiq(str(probe.id))
    return str(probe.id)


async def _wait_for(probe_id: str, predicate: str, limit: float, *workers: RoleProcess) -> Probe:
    """Poll MongoDB (the truth) until the probe is `completed` or has been `started` by some worker."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while loop.time() < deadline:
        probe = await get_probe(probe_id)
        if (predicate == "completed" and probe.status == ProbeStatus.COMPLETED) or (
            predicate == "started" and probe.attempts
        ):
            return probe
        await asyncio.sleep(0.05)
    logs = "\n".join(worker.output() for worker in workers)
    raise AssertionError(f"probe not {predicate} within {limit}s; worker output:\n{logs}")


def _worker(settings: Settings, log: Path) -> RoleProcess:
    return RoleProcess("worker", role_env(settings), log).start()


async def test_task_enqueued_by_the_api_side_runs_in_a_separate_worker(
    settings: Settings, producer: Resources, tmp_path: Path
) -> None:
    worker = _worker(settings, tmp_path / "worker.log")
    try:
        probe_id = await _enqueue_probe(producer)
        probe = await _wait_for(probe_id, "completed", 60, worker)
    finally:
        assert worker.stop() == 0, worker.output()
    assert probe.completed_by is not None
    assert probe.completed_by.pid == worker.pid
    assert probe.completed_by.pid != os.getpid()
    assert [attempt.pid for attempt in probe.attempts] == [worker.pid]


async def test_task_enqueued_before_any_worker_exists_is_not_lost(
    settings: Settings, producer: Resources, tmp_path: Path
) -> None:
    probe_id = await _enqueue_probe(producer)
    worker = _worker(settings, tmp_path / "worker.log")
    try:
        probe = await _wait_for(probe_id, "completed", 60, worker)
    finally:
        worker.stop()
    assert probe.completed_by is not None
    assert probe.completed_by.pid == worker.pid


async def test_task_of_a_worker_killed_mid_run_is_redelivered_and_completes(
    mongodb_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = isolated_settings(mongodb_url, redis_url, tmp_path).model_copy(
        # The hold stays below the idle timeout, as settings require of every task (else it runs twice).
        update={"task_idle_timeout_seconds": 3.0, "task_reclaim_interval_seconds": 0.5}
    )
    async with open_resources(settings) as producer:
        first = _worker(settings, tmp_path / "first.log")
        second: RoleProcess | None = None
        try:
            probe_id = await _enqueue_probe(producer, hold_seconds=1.5)
            started = await _wait_for(probe_id, "started", 60, first)
            assert started.status == ProbeStatus.RUNNING
            first.kill()
            assert first.process is not None
            assert first.process.returncode == -signal.SIGKILL

            second = _worker(settings, tmp_path / "second.log")
            probe = await _wait_for(probe_id, "completed", 60, first, second)
        finally:
            for worker in (first, second):
                if worker is not None:
                    worker.stop()
            await producer.mongo.drop_database(settings.mongodb_database)
    assert [attempt.pid for attempt in probe.attempts] == [first.pid, second.pid]
    assert probe.completed_by is not None
    assert probe.completed_by.pid == second.pid


def _healthcheck(settings: Settings, role: str) -> int:
    """`tidings healthcheck ROLE`, as the container's HEALTHCHECK runs it."""
    command = [sys.executable, "-m", "tidings", "healthcheck", role]
    return subprocess.run(command, env=role_env(settings), capture_output=True, timeout=60, check=False).returncode


async def test_worker_heartbeat_feeds_its_healthcheck(settings: Settings, tmp_path: Path) -> None:
    assert _healthcheck(settings, "worker") == 1  # no worker yet
    worker = _worker(settings, tmp_path / "worker.log")
    try:
        worker.wait_for_output("worker consuming", timeout=60)
        await asyncio.sleep(0.2)
        assert _healthcheck(settings, "worker") == 0
    finally:
        assert worker.stop() == 0
    await asyncio.sleep(3 * settings.heartbeat_interval_seconds + 0.2)
    assert _healthcheck(settings, "worker") == 1


async def test_sigterm_lets_the_running_task_finish(settings: Settings, producer: Resources, tmp_path: Path) -> None:
    worker = _worker(settings, tmp_path / "worker.log")
    probe_id = await _enqueue_probe(producer, hold_seconds=2.0)
    await _wait_for(probe_id, "started", 60, worker)
    assert worker.stop() == 0, worker.output()  # SIGTERM, then it drains
    probe = await get_probe(probe_id)
    assert probe.status == ProbeStatus.COMPLETED
    assert probe.completed_by is not None
    assert probe.completed_by.pid == worker.pid


async def test_a_task_outliving_the_grace_period_is_not_lost(mongodb_url: str, redis_url: str, tmp_path: Path) -> None:
    settings = isolated_settings(mongodb_url, redis_url, tmp_path).model_copy(
        update={
            "worker_shutdown_grace_seconds": 0.2,
            "task_idle_timeout_seconds": 3.0,
            "task_reclaim_interval_seconds": 0.5,
        }
    )
    async with open_resources(settings) as producer:
        first = _worker(settings, tmp_path / "first.log")
        second: RoleProcess | None = None
        try:
            probe_id = await _enqueue_probe(producer, hold_seconds=2.0)
            await _wait_for(probe_id, "started", 60, first)
            assert first.stop() == 0, first.output()  # gave up on the task after 0.2 s
            assert (await get_probe(probe_id)).status == ProbeStatus.RUNNING
            pending = await producer.redis.xpending(settings.queue_name, "tidings-workers")
            assert pending["pending"] == 1  # cancelled, so not acknowledged
            second = _worker(settings, tmp_path / "second.log")
            probe = await _wait_for(probe_id, "completed", 60, first, second)
        finally:
            if second is not None:
                second.stop()
            await producer.mongo.drop_database(settings.mongodb_database)
    assert [attempt.pid for attempt in probe.attempts] == [first.pid, second.pid]


async def test_probe_enqueued_through_the_api_process_runs_in_the_worker(settings: Settings, tmp_path: Path) -> None:
    """Acceptance: a task enqueued by the API process runs in a separate worker process."""
    async with beanie_database(settings):
        issued = await create_environment("ops", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp_path / "api.log")
        worker = _worker(settings, tmp_path / "worker.log")
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                probe = (await gql.data("mutation { probeWorkers { id status } }"))["probeWorkers"]
                assert probe["status"] == "QUEUED"
                query = "query($id: ID!) { workerProbe(id: $id) { status completedBy { pid host } attempts { pid } } }"
                loop = asyncio.get_running_loop()
                deadline = loop.time() + 60
                while (found := (await gql.data(query, id=probe["id"]))["workerProbe"])["status"] != "COMPLETED":
                    assert loop.time() < deadline, worker.output()
                    await asyncio.sleep(0.1)
                unknown = await gql.error(query, id="000000000000000000000000")
                assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "id")
        finally:
            worker.stop()
            api.stop()
    assert found["completedBy"]["pid"] == worker.pid
    assert found["completedBy"]["pid"] not in (api.pid, os.getpid())
    assert found["attempts"] == [{"pid": worker.pid}]
