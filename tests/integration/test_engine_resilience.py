"""The engine survives what production throws at it: a worker killed mid-send, and Redis stopping mid-traffic."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path
from typing import Any

import httpx

from tests.api.conftest import GraphQL
from tests.integration.test_engine import CREATE_INTEGRATION, CREATE_WORKFLOW, TRIGGER, engine_settings
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, role_env
from tests.sinks import smtp_sink
from tidings.app.embedded import valkey
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment
from tidings.inbox.documents import InboxMessage
from tidings.notifications.documents import Job, JobStatus


async def _until(check: Any, limit: float, logs: Any) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {limit}s\n{logs()}")
        await asyncio.sleep(0.05)


async def test_a_worker_killed_mid_send_still_yields_exactly_one_email(
    mongodb_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = engine_settings(mongodb_url, redis_url, tmp_path).model_copy(
        update={"engine_job_lease_seconds": 5.0, "task_idle_timeout_seconds": 3.0, "task_reclaim_interval_seconds": 0.5}
    )
    with smtp_sink() as (smtp, port):
        smtp.stall_next_ehlo = 30.0  # the first send hangs after connecting: the worker dies right there
        async with beanie_database(settings):
            issued = await create_environment("crash", cipher=Cipher(SECRET_KEY))
            api, base = api_process(settings, tmp_path / "api.log")
            scheduler = RoleProcess("scheduler", role_env(settings), tmp_path / "scheduler.log").start()
            first = RoleProcess("worker", role_env(settings), tmp_path / "first.log").start()
            second: RoleProcess | None = None
            try:
                async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                    gql = GraphQL(client, issued.api_key)
                    config = {"host": "127.0.0.1", "port": port, "security": "none", "fromEmail": "t@example.com"}
                    await gql.data(CREATE_INTEGRATION, input={"providerId": "smtp", "name": "S", "config": config})
                    steps = [{"email": {"subject": "exactly once", "body": "<p>hi</p>"}}]
                    await gql.data(CREATE_WORKFLOW, input={"workflowId": "once", "name": "Once", "steps": steps})
                    to = [{"subscriber": {"subscriberId": "ada", "email": "ada@example.com"}}]
                    await gql.data(TRIGGER, input={"workflowId": "once", "to": to})
                    assert await asyncio.to_thread(smtp.stalled.wait, 30), first.output()
                    first.kill()
                    assert first.process is not None
                    assert first.process.returncode == -signal.SIGKILL
                    second = RoleProcess("worker", role_env(settings), tmp_path / "second.log").start()
                    await asyncio.to_thread(smtp.wait_for, 1, 60)
                    await asyncio.sleep(4.0)  # time for a wrong second send to show up
            finally:
                for process in (second, scheduler, api):
                    if process is not None:
                        process.stop()
    assert [message["subject"] for message in smtp.messages] == ["exactly once"]


async def test_redis_stopped_during_triggers_gives_a_clear_error_and_loses_nothing(
    mongodb_url: str, tmp_path: Path
) -> None:
    redis = valkey(data_dir=None, log_path=tmp_path / "valkey.log")
    redis.start()
    settings = engine_settings(mongodb_url, redis.url, tmp_path).model_copy(
        update={"scheduler_requeue_after_seconds": 2.0, "redis_timeout_seconds": 1.0}
    )
    async with beanie_database(settings):
        issued = await create_environment("outage", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp_path / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp_path / "worker.log").start()
        scheduler = RoleProcess("scheduler", role_env(settings), tmp_path / "scheduler.log").start()
        processes = [api, worker, scheduler]

        def logs() -> str:
            return "\n".join(process.output()[-2000:] for process in processes)

        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                steps = [{"inApp": {"body": "{{ payload.n }}"}}]
                await gql.data(CREATE_WORKFLOW, input={"workflowId": "steady", "name": "Steady", "steps": steps})
                to = [{"subscriber": {"subscriberId": "ada"}}]
                await gql.data(TRIGGER, input={"workflowId": "steady", "to": to, "payload": {"n": 1}})

                async def count(expected: int) -> bool:
                    return await InboxMessage.find({"workflow_id": "steady"}).count() >= expected

                await _until(lambda: count(1), 30, logs)
                # The scheduler must be up before the outage, to recover afterwards what the outage left behind.
                await asyncio.to_thread(scheduler.wait_for_output, "scheduler took leadership", 60)

                redis.stop()
                refused = await gql.error(
                    TRIGGER, input={"workflowId": "steady", "to": to, "payload": {"n": 2}, "transactionId": "during"}
                )
                assert refused["code"] == "UNAVAILABLE"
                assert "'during' is recorded" in refused["message"]

                redis.start()  # the same port, empty: stream and consumer group are gone too
                await _until(lambda: count(2), 60, logs)
                retried = await gql.data(
                    TRIGGER, input={"workflowId": "steady", "to": to, "payload": {"n": 2}, "transactionId": "during"}
                )
                assert retried["trigger"]["duplicate"] is True
                await gql.data(TRIGGER, input={"workflowId": "steady", "to": to, "payload": {"n": 3}})
                await _until(lambda: count(3), 60, logs)
                bodies = sorted(m.body for m in await InboxMessage.find({"workflow_id": "steady"}).to_list())
                assert bodies == ["1", "2", "3"]
        finally:
            for process in (scheduler, worker, api):
                process.stop()
            redis.stop()


def _role(role: str, settings: Settings, tmp_path: Path, generation: int) -> RoleProcess:
    return RoleProcess(role, role_env(settings), tmp_path / f"{role}-{generation}.log").start()


async def test_killing_every_process_loses_no_parked_job_and_fires_none_twice(
    mongodb_url: str, redis_url: str, tmp_path: Path
) -> None:
    settings = engine_settings(mongodb_url, redis_url, tmp_path)
    async with beanie_database(settings):
        issued = await create_environment("restart", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp_path / "api.log")
        first = [
            RoleProcess(role, role_env(settings), tmp_path / f"{role}-1.log").start()
            for role in ("worker", "scheduler")
        ]
        second: list[RoleProcess] = []
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                steps = [{"delay": {"amount": 3, "unit": "SECONDS"}}, {"inApp": {"body": "after the restart"}}]
                await gql.data(CREATE_WORKFLOW, input={"workflowId": "parked", "name": "Parked", "steps": steps})
                to = [{"subscriber": {"subscriberId": f"p-{i}"}} for i in range(5)]
                await gql.data(TRIGGER, input={"workflowId": "parked", "to": to})

                async def parked() -> bool:
                    return await Job.find({"workflow_id": "parked", "status": JobStatus.DELAYED}).count() == 5

                await _until(parked, 30, lambda: "\n".join(p.output() for p in first))
            api.kill()
            for process in first:
                process.kill()  # SIGKILL: no goodbye, no lock release
            second = [
                RoleProcess(role, role_env(settings), tmp_path / f"{role}-2.log").start()
                for role in ("worker", "scheduler")
            ]

            async def delivered() -> bool:
                return await InboxMessage.find({"workflow_id": "parked"}).count() >= 5

            # The dead scheduler's lock expires first (TTL), then the new one takes over and wakes the due jobs.
            await _until(delivered, 60, lambda: "\n".join(p.output() for p in second))
            await asyncio.sleep(2.0)
            messages = await InboxMessage.find({"workflow_id": "parked"}).to_list()
            delays = await Job.find({"workflow_id": "parked", "step_id": "delay"}).to_list()
        finally:
            for process in second:
                process.stop()
    assert sorted(message.subscriber_id for message in messages) == [f"p-{i}" for i in range(5)]
    assert len(delays) == 5
    assert all([run.status for run in job.executions] == ["delayed", "completed"] for job in delays)


async def test_a_role_started_during_an_outage_waits_for_it_to_end(mongodb_url: str, tmp_path: Path) -> None:
    redis = valkey(data_dir=None, log_path=tmp_path / "valkey.log")  # its port is chosen, the server not started
    settings = engine_settings(mongodb_url, redis.url, tmp_path).model_copy(update={"redis_timeout_seconds": 1.0})
    scheduler = _role("scheduler", settings, tmp_path, 1)
    try:
        await asyncio.to_thread(scheduler.wait_for_output, "waiting for Redis", 60)
        assert scheduler.process is not None
        assert scheduler.process.poll() is None  # still there, not crashed
        redis.start()
        await asyncio.to_thread(scheduler.wait_for_output, "scheduler took leadership", 60)
    finally:
        assert scheduler.stop() == 0, scheduler.output()
        redis.stop()
