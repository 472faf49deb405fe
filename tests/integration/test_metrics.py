"""Metrics end to end: real api, worker and scheduler processes scraped over HTTP, as Prometheus would.

The API's /metrics counts triggers and GraphQL operations; the worker's own port counts what the engine did; the
scheduler's port shows its leadership and the oldest due job. Every assertion is on the exact movement of a series
between two scrapes, so a counter that stopped counting, or counted twice, fails here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY, RoleProcess, beanie_database, isolated_settings, role_env
from tests.sinks import SmtpSink, smtp_sink
from tidings.app.embedded import free_port
from tidings.app.resources import open_resources
from tidings.app.settings import Settings
from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher
from tidings.engine.scheduling import SweepPolicy, wake_due_jobs
from tidings.environments.service import create_environment
from tidings.notifications.documents import Job, JobStatus
from tidings.tasks.queue import BrokerTaskQueue

CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId duplicate } }"
BULK_TRIGGER = "mutation($input: BulkTriggerInput!) { bulkTrigger(input: $input) { transactionId } }"
ACTIVITY = "query($t: String!) { notifications(where: {transactionId: $t}) { edges { node { status } } } }"

type Series = tuple[str, tuple[tuple[str, str], ...]]


@dataclass
class Stack:
    gql: GraphQL
    http: httpx.AsyncClient
    smtp: SmtpSink
    worker_metrics: str
    scheduler_metrics: str
    processes: list[RoleProcess]

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self.processes)


def metric_settings(mongodb_url: str, redis_url: str, tmp: Path) -> Settings:
    return isolated_settings(mongodb_url, redis_url, tmp).model_copy(
        update={
            "allow_private_network_urls": True,  # the SMTP sink listens on loopback
            "scheduler_tick_seconds": 0.1,
            "engine_retry_base_seconds": 0.2,
            "engine_retry_max_seconds": 1.0,
            "mongodb_timeout_ms": 30_000,
            "worker_metrics_port": free_port(),
            "scheduler_metrics_port": free_port(),
        }
    )


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_sink() as (smtp, port):
        yield smtp, port


async def wait_until_served(url: str, output: Callable[[], str]) -> None:
    """Polls `url` until it answers 200; `output` (the process's log) explains a failure."""
    # Generous: a role imports for seconds, longer on a machine busy with other roles and tests.
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            try:
                if (await client.get(url)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} was not served within 120s:\n{output()}")
            await asyncio.sleep(0.1)


async def prepare_workflows(gql: GraphQL, smtp_port: int) -> None:
    """An SMTP integration to the sink and the workflows the metric tests trigger."""
    smtp_config = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "fromEmail": "t@example.com"}
    await gql.data(CREATE_INTEGRATION, input={"providerId": "smtp", "name": "Sink", "config": smtp_config})
    workflows: dict[str, dict[str, Any]] = {
        "metered": {"steps": [{"inApp": {"body": "hello"}}, {"email": {"subject": "s", "body": "b"}}]},
        "ping": {"steps": [{"inApp": {"body": "ping"}}]},
        "typed": {
            "steps": [{"inApp": {"body": "{{ payload.amount }}"}}],
            "payloadSchema": {"type": "object", "required": ["amount"]},
        },
    }
    for workflow_id, fields in workflows.items():
        await gql.data(CREATE_WORKFLOW, input={"workflowId": workflow_id, "name": workflow_id, **fields})


@pytest.fixture(scope="module")
async def stack(
    mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, sink: tuple[SmtpSink, int]
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("metrics")
    settings = metric_settings(mongodb_url, redis_url, tmp)
    smtp, smtp_port = sink
    async with beanie_database(settings):
        issued = await create_environment("metrics", cipher=Cipher(SECRET_KEY))
        # Started here rather than by `api_process`, to wait as long for it as for the other roles.
        api_port = free_port()
        api = RoleProcess("api", role_env(settings, TIDINGS_PORT=str(api_port)), tmp / "api.log").start()
        base = f"http://127.0.0.1:{api_port}"
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        scheduler = RoleProcess("scheduler", role_env(settings), tmp / "scheduler.log").start()
        worker_metrics = f"http://127.0.0.1:{settings.worker_metrics_port}/metrics"
        scheduler_metrics = f"http://127.0.0.1:{settings.scheduler_metrics_port}/metrics"
        try:
            await wait_until_served(f"{base}/metrics", api.output)
            await wait_until_served(worker_metrics, worker.output)
            await wait_until_served(scheduler_metrics, scheduler.output)
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                await prepare_workflows(gql, smtp_port)
                yield Stack(gql, client, smtp, worker_metrics, scheduler_metrics, [api, worker, scheduler])
        finally:
            for process in (scheduler, worker, api):
                process.stop()


def parse(text: str) -> dict[Series, float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(url: str) -> dict[Series, float]:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(url)
    assert response.status_code == 200, response.text
    return parse(response.text)


def moved(before: dict[Series, float], after: dict[Series, float], name: str, **labels: str) -> float:
    key = (name, tuple(sorted(labels.items())))
    assert key in after, f"{name}{labels} is not exported"
    return after[key] - before.get(key, 0.0)


async def _completed(stack: Stack, transaction: str, count: int = 1) -> None:
    deadline = time.monotonic() + 30
    while True:
        edges = (await stack.gql.data(ACTIVITY, t=transaction))["notifications"]["edges"]
        if len(edges) == count and all(edge["node"]["status"] == "COMPLETED" for edge in edges):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{transaction} did not complete within 30s:\n{stack.logs()}")
        await asyncio.sleep(0.05)


async def test_triggers_jobs_deliveries_and_graphql_are_counted(stack: Stack) -> None:
    api_url = str(stack.http.base_url.join("/metrics"))
    api_before, worker_before = await scrape(api_url), await scrape(stack.worker_metrics)

    # An in-app and an email step; the email's first send fails transiently and is retried.
    stack.smtp.replies.append("451 4.3.0 Try again later")
    first = {"workflowId": "metered", "to": [{"subscriber": {"subscriberId": "m", "email": "m@example.com"}}]}
    sent = (await stack.gql.data(TRIGGER, input={**first, "transactionId": "metered-1"}))["trigger"]
    again = (await stack.gql.data(TRIGGER, input={**first, "transactionId": "metered-1"}))["trigger"]
    assert (sent["duplicate"], again["duplicate"]) == (False, True)
    bulk = [{"workflowId": "ping", "to": [{"subscriberId": "m"}], "transactionId": f"ping-{i}"} for i in (1, 2)]
    await stack.gql.data(BULK_TRIGGER, input={"events": bulk})
    # Refused: a payload that misses what the workflow's schema requires, alone and as one of a bulk of two.
    typed = {"workflowId": "typed", "to": [{"subscriberId": "m"}]}
    refused = await stack.gql.error(TRIGGER, input={**typed, "payload": {}})
    assert refused["code"] == "VALIDATION"
    bulk_refused = await stack.gql.error(
        BULK_TRIGGER, input={"events": [{**typed, "payload": {"amount": 1}}, {**typed, "payload": {}}]}
    )
    assert bulk_refused["code"] == "VALIDATION"
    # GraphQL errors: a root field the schema doesn't have, and a document that doesn't parse.
    assert (await stack.gql.error("{ madeUpField }"))["code"] == "GRAPHQL_VALIDATION"
    assert (await stack.gql("{ nope("))["errors"]  # answered without a code: counted as "other"

    await _completed(stack, "metered-1")
    for transaction in ("ping-1", "ping-2"):
        await _completed(stack, transaction)
    api_after, worker_after = await scrape(api_url), await scrape(stack.worker_metrics)

    def api(name: str, **labels: str) -> float:
        return moved(api_before, api_after, name, **labels)

    def worker(name: str, **labels: str) -> float:
        return moved(worker_before, worker_after, name, **labels)

    assert api("tidings_triggers_total", outcome="accepted", reason="none") == 3  # one, and each event of the bulk
    assert api("tidings_triggers_total", outcome="duplicate", reason="none") == 1
    assert api("tidings_triggers_total", outcome="rejected", reason="VALIDATION") == 3
    assert api("tidings_graphql_operations_total", operation="mutation", field="trigger") == 3
    assert api("tidings_graphql_operations_total", operation="mutation", field="bulkTrigger") == 2
    assert api("tidings_graphql_operations_total", operation="query", field="other") == 1
    assert api("tidings_graphql_operations_total", operation="unknown", field="other") == 1
    assert api("tidings_graphql_operations_total", operation="query", field="notifications") >= 3
    assert api("tidings_graphql_errors_total", code="VALIDATION") == 2
    assert api("tidings_graphql_errors_total", code="GRAPHQL_VALIDATION") == 1
    assert api("tidings_graphql_errors_total", code="other") == 1
    assert not any("madeUpField" in value for _, labels in api_after for _, value in labels)
    assert api("tidings_http_requests_total", method="POST", path="/graphql", status="200") >= 10

    assert worker("tidings_jobs_total", step_type="in_app", outcome="completed") == 3
    assert worker("tidings_jobs_total", step_type="email", outcome="retried") == 1
    assert worker("tidings_jobs_total", step_type="email", outcome="completed") == 1
    assert worker("tidings_step_duration_seconds_count", step_type="in_app") == 3
    assert worker("tidings_step_duration_seconds_count", step_type="email") == 2
    assert worker("tidings_delivery_latency_seconds_count", channel="in_app") == 3
    assert worker("tidings_delivery_latency_seconds_count", channel="email") == 1
    # The email waited for its retry (0.2 s base with jitter): it took longer than an instant, and far less than 30 s.
    assert 0.05 < worker("tidings_delivery_latency_seconds_sum", channel="email") < 30
    assert worker("tidings_provider_sends_total", provider="smtp") == 1
    assert worker("tidings_provider_errors_total", provider="smtp", kind="transient") == 1
    circuits = [value for (name, _), value in worker_after.items() if name == "tidings_integration_circuit_state"]
    assert circuits == [0.0]  # the one integration, closed
    # The engine runs in the worker: the API process counted none of it.
    assert not [key for key in api_after if key[0] == "tidings_jobs_total"]


async def test_api_exports_queue_and_realtime_metrics(stack: Stack) -> None:
    names = {name for name, _ in await scrape(str(stack.http.base_url.join("/metrics")))}
    assert {"tidings_queue_length", "tidings_queue_lag", "tidings_inbox_connections"} <= names


async def test_scheduler_port_shows_its_leadership_and_the_oldest_due_job(stack: Stack) -> None:
    deadline = time.monotonic() + 30
    while (scheduler := await scrape(stack.scheduler_metrics))[("tidings_scheduler_leader", ())] != 1:
        assert time.monotonic() < deadline, f"the scheduler did not lead within 30s:\n{stack.logs()}"
        await asyncio.sleep(0.1)
    assert scheduler[("tidings_queue_oldest_due_seconds", ())] < 5  # its tick keeps up with nothing to do


async def test_oldest_due_job_age_is_measured_by_the_due_sweep(
    settings: Settings, database: AsyncMongoClient[dict[str, Any]]
) -> None:
    now = utcnow()

    def job(step_index: int, due_before: float) -> Job:
        return Job(
            environment_id=PydanticObjectId(),
            trigger_id=PydanticObjectId(),
            notification_id=PydanticObjectId(),
            transaction_id="t",
            workflow_id="w",
            subscriber_id="s",
            step_index=step_index,
            step_id="delay",
            step_type="delay",
            status=JobStatus.DELAYED,
            due_at=now - timedelta(seconds=due_before),
        )

    await Job.insert_many([job(0, 42.0), job(1, 7.0)])
    async with open_resources(settings) as resources:
        queue = BrokerTaskQueue(resources.broker)
        assert await wake_due_jobs(queue, SweepPolicy(), now) == 2
        assert REGISTRY.get_sample_value("tidings_queue_oldest_due_seconds") == 42.0
        assert await wake_due_jobs(queue, SweepPolicy(), now) == 0
        assert REGISTRY.get_sample_value("tidings_queue_oldest_due_seconds") == 0.0


async def test_due_sweep_reads_its_index(settings: Settings, database: AsyncMongoClient[dict[str, Any]]) -> None:
    command = {
        "find": "jobs",
        "filter": {"status": "delayed", "due_at": {"$lte": utcnow()}},
        "projection": {"_id": 1, "due_at": 1},
        "sort": {"due_at": 1},
        "limit": 500,
    }
    explained = await database[settings.mongodb_database].command("explain", command, verbosity="queryPlanner")
    plan = str(explained["queryPlanner"]["winningPlan"])
    assert "COLLSCAN" not in plan, plan
    assert "status_1_due_at_1" in plan, plan
