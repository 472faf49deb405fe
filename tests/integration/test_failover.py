"""Failover between a channel's integrations with real processes (api, worker, scheduler) and two real HTTP
servers: a transient failure moves the send to the next integration, an integration failing too often is skipped
while its circuit is open, and one healthy probe brings it back. Every attempt is in the execution detail."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import GraphQL
from tests.integration.test_engine import ACTIVITY, CREATE_INTEGRATION, CREATE_WORKFLOW, TRIGGER, engine_settings
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, role_env
from tests.sinks import HttpSink, http_sink
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

OPEN_SECONDS = 2.0


@dataclass
class Stack:
    gql: GraphQL
    down: HttpSink
    up: HttpSink
    processes: list[RoleProcess]

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self.processes)


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[HttpSink, str, HttpSink, str]]:
    with http_sink() as (down, down_base), http_sink() as (up, up_base):
        yield down, down_base, up, up_base


@pytest.fixture(scope="module")
async def stack(
    mongodb_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    sinks: tuple[HttpSink, str, HttpSink, str],
) -> AsyncIterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("failover")
    settings = engine_settings(mongodb_url, redis_url, tmp).model_copy(
        update={"circuit_min_calls": 2, "circuit_failure_rate": 0.5, "circuit_open_seconds": OPEN_SECONDS}
    )
    down, down_base, up, up_base = sinks
    async with beanie_database(settings):
        issued = await create_environment("failover", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        scheduler = RoleProcess("scheduler", role_env(settings), tmp / "scheduler.log").start()
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                for identifier, url, priority in (("first", f"{down_base}/a", 0), ("second", f"{up_base}/b", 5)):
                    await gql.data(
                        CREATE_INTEGRATION,
                        input={
                            "providerId": "webhook",
                            "identifier": identifier,
                            "config": {"url": url},
                            "priority": priority,
                        },
                    )
                await gql.data(
                    CREATE_WORKFLOW,
                    input={"workflowId": "alert", "name": "Alert", "steps": [{"chat": {"body": "{{ payload.n }}"}}]},
                )
                yield Stack(gql, down, up, [api, worker, scheduler])
        finally:
            for process in (scheduler, worker, api):
                process.stop()


async def _send(stack: Stack, n: int) -> list[dict[str, Any]]:
    """Trigger one alert and return the attempts recorded on its completed chat job."""
    result = await stack.gql.data(
        TRIGGER, input={"workflowId": "alert", "to": [{"subscriber": {"subscriberId": "ops"}}], "payload": {"n": n}}
    )
    transaction = result["trigger"]["transactionId"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        edges = (await stack.gql.data(ACTIVITY, t=transaction))["notifications"]["edges"]
        jobs = [job for edge in edges for job in edge["node"]["jobs"]]
        if jobs and jobs[0]["status"] in ("COMPLETED", "FAILED"):
            assert jobs[0]["status"] == "COMPLETED", jobs[0]
            attempts: list[dict[str, Any]] = jobs[0]["executionDetails"][-1]["detail"]["attempts"]
            return attempts
        await asyncio.sleep(0.1)
    raise AssertionError(f"alert {n} did not complete\n{stack.logs()}")


def _outcomes(attempts: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(attempt["integration"], attempt["outcome"]) for attempt in attempts]


async def test_transient_failure_fails_over_then_the_circuit_opens_and_recovers(stack: Stack) -> None:
    stack.down.statuses.extend([503] * 50)
    first = await _send(stack, 1)
    assert _outcomes(first) == [("first", "failed"), ("second", "sent")]
    assert first[0]["kind"] == "transient"
    assert "503" in first[0]["error"]
    assert [request.path for request in stack.up.requests] == ["/b"]

    # The second transient failure in the window (2 of 2 calls) opens the first integration's circuit.
    assert _outcomes(await _send(stack, 2)) == [("first", "failed"), ("second", "sent")]
    calls_while_open = len(stack.down.requests)
    third = await _send(stack, 3)
    assert _outcomes(third) == [("first", "skipped"), ("second", "sent")]
    assert third[0]["reason"] == "circuit open"
    assert len(stack.down.requests) == calls_while_open  # not even tried

    # Healthy again: after the open period one probe goes through, succeeds and closes the circuit.
    stack.down.statuses.clear()
    await asyncio.sleep(OPEN_SECONDS + 0.5)
    assert _outcomes(await _send(stack, 4)) == [("first", "sent")]
    assert _outcomes(await _send(stack, 5)) == [("first", "sent")]
    assert len(stack.up.requests) == 3
