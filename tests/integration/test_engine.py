"""The workflow engine end to end, with real processes (api, worker, scheduler) and real provider servers."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, isolated_settings, role_env
from tests.sinks import HttpSink, SmtpSink, header, http_sink, parts, smtp_sink
from tidings.app.settings import Settings
from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment
from tidings.inbox.documents import InboxMessage
from tidings.notifications.documents import Digest, DigestStatus, Job, JobStatus, Notification

CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId status duplicate } }"
CANCEL = "mutation($t: String!) { cancelTrigger(transactionId: $t) { canceledJobs } }"
ACTIVITY = """query($t: String!) { notifications(where: {transactionId: $t}) { edges { node {
    subscriberId status
    jobs { stepId status reason attempts executionDetails { attempt status reason detail } } } } } }"""
BULK = "mutation($input: BulkUpsertSubscribersInput!) { bulkUpsertSubscribers(input: $input) { created } }"


@dataclass
class Stack:
    gql: GraphQL
    settings: Settings
    smtp: SmtpSink
    http: HttpSink
    http_base: str
    processes: list[RoleProcess]

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self.processes)


def engine_settings(mongodb_url: str, redis_url: str, tmp: Path) -> Settings:
    return isolated_settings(mongodb_url, redis_url, tmp).model_copy(
        update={
            "allow_private_network_urls": True,  # the provider stand-ins listen on loopback
            "scheduler_tick_seconds": 0.1,
            "engine_retry_base_seconds": 0.2,
            "engine_retry_max_seconds": 1.0,
            # The embedded MongoDB-wire server shares two cores with four processes here: bulk writes of 500
            # documents can take seconds, which a production MongoDB would not.
            "mongodb_timeout_ms": 30_000,
        }
    )


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[SmtpSink, int, HttpSink, str]]:
    with smtp_sink() as (smtp, smtp_port), http_sink() as (http, base):
        yield smtp, smtp_port, http, base


@pytest.fixture(scope="module")
async def stack(
    mongodb_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    sinks: tuple[SmtpSink, int, HttpSink, str],
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("engine")
    settings = engine_settings(mongodb_url, redis_url, tmp)
    smtp, smtp_port, http, http_base = sinks
    async with beanie_database(settings):
        issued = await create_environment("engine", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        scheduler = RoleProcess("scheduler", role_env(settings), tmp / "scheduler.log").start()
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                await gql.data(
                    CREATE_INTEGRATION,
                    input={
                        "providerId": "smtp",
                        "name": "Sink",
                        "config": {
                            "host": "127.0.0.1",
                            "port": smtp_port,
                            "security": "none",
                            "fromEmail": "tidings@example.com",
                            "fromName": "Tidings",
                        },
                    },
                )
                await gql.data(
                    CREATE_INTEGRATION,
                    input={
                        "providerId": "webhook",
                        "name": "Hook",
                        "config": {"url": f"{http_base}/hook"},
                        "credentials": {"signingSecret": "whsec-test"},
                    },
                )
                yield Stack(gql, settings, smtp, http, http_base, [api, worker, scheduler])
        finally:
            for process in (scheduler, worker, api):
                process.stop()


async def _workflow(stack: Stack, workflow_id: str, steps: list[dict[str, Any]], **fields: Any) -> None:
    await stack.gql.data(
        CREATE_WORKFLOW, input={"workflowId": workflow_id, "name": workflow_id, "steps": steps, **fields}
    )


async def _trigger(stack: Stack, workflow_id: str, to: list[dict[str, Any]], **fields: Any) -> str:
    result = await stack.gql.data(TRIGGER, input={"workflowId": workflow_id, "to": to, **fields})
    transaction_id: str = result["trigger"]["transactionId"]
    return transaction_id


async def _eventually(check: Any, limit: float, stack: Stack, what: str) -> Any:
    deadline = time.monotonic() + limit
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit}s\n{stack.logs()}")
        await asyncio.sleep(0.05)


async def _activity(stack: Stack, transaction_id: str) -> list[dict[str, Any]]:
    edges = (await stack.gql.data(ACTIVITY, t=transaction_id))["notifications"]["edges"]
    return [edge["node"] for edge in edges]


async def test_email_arrives_rendered_and_activity_records_it(stack: Stack) -> None:
    await _workflow(
        stack,
        "welcome",
        [
            {
                "email": {
                    "subject": "Hi {{ subscriber.firstName }}",
                    "body": "<p>{{ payload.note }}</p>{{ payload.signature }}",
                }
            }
        ],
    )
    before = len(stack.smtp.messages)
    transaction = await _trigger(
        stack,
        "welcome",
        [{"subscriber": {"subscriberId": "ada", "email": "ada@example.com", "firstName": "Ada"}}],
        payload={"note": "<b>bold</b> & true"},
    )
    await _eventually(lambda: asyncio.sleep(0, len(stack.smtp.messages) > before), 30, stack, "the email")
    mail = parts(stack.smtp.messages[-1])
    assert mail["subject"] == "Hi Ada"
    assert mail["to"] == "ada@example.com"
    assert "<p>&lt;b&gt;bold&lt;/b&gt; &amp; true</p>" in mail["html"]  # autoescaped in HTML
    assert "<b>bold</b> & true" in mail["text"]
    nodes = await _eventually(lambda: _completed(stack, transaction), 30, stack, "the notification to complete")
    job = nodes[0]["jobs"][0]
    assert (job["stepId"], job["status"]) == ("email", "COMPLETED")
    detail = job["executionDetails"][-1]["detail"]
    assert detail["provider"] == "smtp"
    assert detail["missing_variables"] == ["payload.signature"]  # rendered empty, and recorded


async def _completed(stack: Stack, transaction: str) -> list[dict[str, Any]] | None:
    nodes = await _activity(stack, transaction)
    return nodes if nodes and all(node["status"] == "COMPLETED" for node in nodes) else None


async def test_chat_webhook_is_signed(stack: Stack) -> None:
    await _workflow(stack, "pinged", [{"chat": {"body": "{{ payload.text }}"}}])
    before = len(stack.http.requests)
    await _trigger(stack, "pinged", [{"subscriber": {"subscriberId": "grace"}}], payload={"text": "deploy done"})
    request = (await asyncio.to_thread(stack.http.wait_for, before + 1))[-1]
    assert (request.method, request.path) == ("POST", "/hook")
    body = json.loads(request.body)
    assert body["content"]["body"] == "deploy done"
    assert body["subscriberId"] == "grace"
    timestamp, signature = dict(
        part.split("=", 1) for part in header(request, "x-tidings-signature").split(",")
    ).values()
    expected = hmac.new(b"whsec-test", f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(signature, expected)


async def test_repeated_transaction_id_creates_nothing(stack: Stack) -> None:
    await _workflow(stack, "once", [{"inApp": {"body": "once"}}])
    to = [{"subscriber": {"subscriberId": "idem"}}]
    first = await stack.gql.data(TRIGGER, input={"workflowId": "once", "to": to, "transactionId": "tx-1"})
    again = await stack.gql.data(TRIGGER, input={"workflowId": "once", "to": to, "transactionId": "tx-1"})
    assert first["trigger"]["duplicate"] is False
    assert again["trigger"] == {**first["trigger"], "duplicate": True, "status": again["trigger"]["status"]}
    await _eventually(lambda: _completed(stack, "tx-1"), 30, stack, "the in-app message")
    assert await InboxMessage.find({"transaction_id": "tx-1"}).count() == 1
    assert await Notification.find({"transaction_id": "tx-1"}).count() == 1


async def test_bad_trigger_input_is_refused_with_the_path(stack: Stack) -> None:
    schema = {"type": "object", "properties": {"amount": {"type": "number"}}, "required": ["amount"]}
    await _workflow(stack, "typed", [{"inApp": {"body": "{{ payload.amount }}"}}], payloadSchema=schema)
    to = [{"subscriberId": "ada"}]
    wrong = await stack.gql.error(TRIGGER, input={"workflowId": "typed", "to": to, "payload": {"amount": "ten"}})
    assert (wrong["code"], wrong["field"]) == ("VALIDATION", "input.payload.amount")
    missing = await stack.gql.error(TRIGGER, input={"workflowId": "typed", "to": to, "payload": {}})
    assert (missing["code"], missing["field"]) == ("VALIDATION", "input.payload")
    unknown = await stack.gql.error(TRIGGER, input={"workflowId": "nope", "to": to})
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "input.workflowId")
    both = await stack.gql(TRIGGER, input={"workflowId": "typed", "to": [{"subscriberId": "a", "topicKey": "b"}]})
    assert both["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"


# On the embedded MongoDB-wire server, sharing two cores with api, worker and scheduler, a job takes tens of
# milliseconds: this test waits minutes, not seconds (bench/ measures throughput; tests only correctness).
@pytest.mark.timeout(600)
async def test_topic_of_a_thousand_fans_out_to_a_thousand_messages(stack: Stack) -> None:
    ids = [f"fan-{i:04}" for i in range(1000)]
    for start in (0, 500):
        await stack.gql.data(BULK, input={"subscribers": [{"subscriberId": one} for one in ids[start : start + 500]]})
    await stack.gql.data('mutation { createTopic(input: {key: "everyone", name: "Everyone"}) { key } }')
    added = await stack.gql.data(
        'mutation($ids: [String!]!) { addTopicSubscribers(key: "everyone", input: {subscriberIds: $ids}) { added } }',
        ids=ids,
    )
    assert len(added["addTopicSubscribers"]["added"]) == 1000
    await _workflow(stack, "broadcast", [{"inApp": {"body": "Hello {{ subscriber.subscriberId }}"}}])
    transaction = await _trigger(stack, "broadcast", [{"topicKey": "everyone"}], actor="fan-0007")

    async def delivered() -> bool:
        return await InboxMessage.find({"transaction_id": transaction}).count() >= 999

    await _eventually(delivered, 540, stack, "999 in-app messages")
    messages = await InboxMessage.find({"transaction_id": transaction}).to_list()
    assert len(messages) == 999  # everyone but the actor
    assert {message.subscriber_id for message in messages} == set(ids) - {"fan-0007"}
    assert {message.body for message in messages if message.subscriber_id == "fan-0042"} == {"Hello fan-0042"}


async def test_two_second_delay_fires_between_two_and_three_seconds(stack: Stack) -> None:
    await _workflow(stack, "later", [{"delay": {"amount": 2, "unit": "SECONDS"}}, {"inApp": {"body": "later"}}])
    transaction = await _trigger(stack, "later", [{"subscriber": {"subscriberId": "patient"}}])

    async def arrived() -> InboxMessage | None:
        return await InboxMessage.find_one({"transaction_id": transaction})

    await _eventually(arrived, 15, stack, "the delayed message")
    delay = await Job.find_one({"transaction_id": transaction, "step_id": "delay"})
    assert delay is not None
    parked, fired = delay.executions  # the run that parked it, and the run the scheduler woke at its due time
    assert (parked.status, fired.status) == (JobStatus.DELAYED, JobStatus.COMPLETED)
    waited = (fired.created_at - parked.created_at).total_seconds()
    assert 2.0 <= waited <= 3.0, waited


async def test_five_events_in_a_digest_window_make_one_email(stack: Stack) -> None:
    await _workflow(
        stack,
        "digested",
        [
            {"digest": {"window": {"amount": 3, "unit": "SECONDS"}}},
            {
                "email": {
                    "subject": "{{ digest.count }} new comments",
                    "body": "{% for e in digest.events %}<li>{{ e.payload.n }}</li>{% endfor %}",
                }
            },
        ],
    )
    before = len(stack.smtp.messages)
    subscriber = {"subscriber": {"subscriberId": "reader", "email": "reader@example.com"}}
    await asyncio.gather(*(_trigger(stack, "digested", [subscriber], payload={"n": n}) for n in range(5)))
    await asyncio.to_thread(stack.smtp.wait_for, before + 1)
    await asyncio.sleep(1.0)  # no second email follows
    digests = [parts(m) for m in stack.smtp.messages[before:] if m["to"] == "reader@example.com"]
    assert len(digests) == 1, digests
    assert digests[0]["subject"] == "5 new comments"
    assert sorted(digests[0]["html"].count(f"<li>{n}</li>") for n in range(5)) == [1] * 5
    merged = await Job.find({"workflow_id": "digested", "status": JobStatus.MERGED}).count()
    assert merged == 4
    # The closed digest holds the events' payloads: it expires with the jobs that carried them (retention).
    closed = await Digest.find({"workflow_id": "digested"}).to_list()
    assert [digest.status for digest in closed] == [DigestStatus.CLOSED]
    assert closed[0].expires_at is not None
    assert closed[0].expires_at > utcnow() + timedelta(days=1)


async def test_cancel_stops_a_delayed_job(stack: Stack) -> None:
    await _workflow(stack, "cancelable", [{"delay": {"amount": 2, "unit": "SECONDS"}}, {"inApp": {"body": "no"}}])
    transaction = await _trigger(stack, "cancelable", [{"subscriber": {"subscriberId": "quiet"}}])

    async def parked() -> bool:
        return await Job.find({"transaction_id": transaction, "status": JobStatus.DELAYED}).count() == 1

    await _eventually(parked, 10, stack, "the delay to park")
    assert (await stack.gql.data(CANCEL, t=transaction))["cancelTrigger"]["canceledJobs"] == 1
    await asyncio.sleep(3.0)
    assert await InboxMessage.find({"transaction_id": transaction}).count() == 0
    jobs = await Job.find({"transaction_id": transaction}).to_list()
    assert [job.status for job in jobs] == [JobStatus.CANCELED]
    assert (await stack.gql.error(CANCEL, t="no-such-transaction"))["code"] == "NOT_FOUND"


async def test_conditions_and_preferences_skip_with_a_reason(stack: Stack) -> None:
    await _workflow(
        stack,
        "selective",
        [
            {"inApp": {"body": "pro only", "conditions": {"==": [{"var": "payload.plan"}, "pro"]}}},
            {"email": {"subject": "s", "body": "b"}},
        ],
    )
    await stack.gql.data(
        'mutation { upsertSubscriber(input: {subscriberId: "picky", email: "picky@example.com"}) { created } }'
    )
    await stack.gql.data(
        'mutation { setSubscriberPreferences(subscriberId: "picky", channels: [{channel: EMAIL, enabled: false}])'
        " { workflowId } }"
    )
    transaction = await _trigger(stack, "selective", [{"subscriberId": "picky"}], payload={"plan": "free"})
    nodes = await _eventually(lambda: _completed(stack, transaction), 30, stack, "the notification")
    jobs = {job["stepId"]: job for job in nodes[0]["jobs"]}
    assert (jobs["in-app"]["status"], jobs["in-app"]["reason"]) == ("SKIPPED", "conditions are false")
    assert jobs["email"]["status"] == "SKIPPED"
    assert "email is off for this subscriber (subscriber_global)" in jobs["email"]["reason"]


async def test_a_transient_provider_failure_is_retried(stack: Stack) -> None:
    await _workflow(stack, "flaky", [{"email": {"subject": "retry me", "body": "b"}}])
    before = len(stack.smtp.messages)
    stack.smtp.replies.extend(["451 4.3.0 Try again later"])
    transaction = await _trigger(stack, "flaky", [{"subscriber": {"subscriberId": "r", "email": "r@example.com"}}])
    nodes = await _eventually(lambda: _completed(stack, transaction), 30, stack, "the retried email")
    assert len(stack.smtp.messages) == before + 1
    job = nodes[0]["jobs"][0]
    assert job["attempts"] == 2
    assert [detail["status"] for detail in job["executionDetails"]] == ["delayed", "completed"]
    assert "transient" in job["executionDetails"][0]["reason"]


async def test_throttle_lets_the_threshold_through(stack: Stack) -> None:
    await _workflow(
        stack,
        "throttled",
        [{"throttle": {"window": {"amount": 1, "unit": "HOURS"}, "threshold": 2}}, {"inApp": {"body": "t"}}],
    )
    for _ in range(4):
        await _trigger(stack, "throttled", [{"subscriber": {"subscriberId": "spammed"}}])

    async def settled() -> list[Job] | None:
        jobs = await Job.find({"workflow_id": "throttled"}).to_list()
        done = [job for job in jobs if job.status in (JobStatus.COMPLETED, JobStatus.SKIPPED)]
        return jobs if len(done) == 6 else None  # 4 throttles, and the in-app steps of the 2 let through

    jobs = await _eventually(settled, 30, stack, "the throttled notifications")
    throttles = sorted((job.status, job.reason or "") for job in jobs if job.step_id == "throttle")
    assert [status for status, _ in throttles] == [JobStatus.COMPLETED] * 2 + [JobStatus.SKIPPED] * 2
    assert all(reason.startswith("throttled") for status, reason in throttles if status == JobStatus.SKIPPED)
    assert await InboxMessage.find({"workflow_id": "throttled"}).count() == 2


async def test_bulk_trigger_records_all_or_nothing(stack: Stack) -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    steps = [{"inApp": {"body": "n={{ payload.n }} via {{ overrides.source }}"}}]
    await _workflow(stack, "bulk", steps, payloadSchema=schema)
    bulk = "mutation($input: BulkTriggerInput!) { bulkTrigger(input: $input) { transactionId duplicate } }"
    to = [{"subscriber": {"subscriberId": "bulky"}}]
    bad = await stack.gql.error(
        bulk,
        input={
            "events": [
                {"workflowId": "bulk", "to": to, "payload": {"n": 1}, "transactionId": "bulk-a"},
                {"workflowId": "bulk", "to": to, "payload": {"n": "two"}, "transactionId": "bulk-b"},
            ]
        },
    )
    assert (bad["code"], bad["field"]) == ("VALIDATION", "input.events.1.payload.n")
    assert await Notification.find({"transaction_id": {"$in": ["bulk-a", "bulk-b"]}}).count() == 0
    events = [
        {
            "workflowId": "bulk",
            "to": to,
            "payload": {"n": n},
            "overrides": {"source": "bulk"},
            "transactionId": f"bulk-{n}",
        }
        for n in (1, 2)
    ]
    results = (await stack.gql.data(bulk, input={"events": events}))["bulkTrigger"]
    assert [result["transactionId"] for result in results] == ["bulk-1", "bulk-2"]

    async def both() -> list[InboxMessage] | None:
        found = await InboxMessage.find({"workflow_id": "bulk"}).to_list()
        return found if len(found) == 2 else None

    messages = await _eventually(both, 30, stack, "both bulk notifications")
    assert sorted(message.body for message in messages) == ["n=1 via bulk", "n=2 via bulk"]


async def test_bulk_trigger_repeats_create_nothing(stack: Stack) -> None:
    """A transactionId seen before, or earlier in the same call, is answered as a duplicate; the rest are new."""
    await _workflow(stack, "bulk-repeat", [{"inApp": {"body": "n={{ payload.n }}"}}])
    bulk = "mutation($input: BulkTriggerInput!) { bulkTrigger(input: $input) { transactionId duplicate } }"

    def event(n: int, transaction_id: str) -> dict[str, Any]:
        to = [{"subscriber": {"subscriberId": "repeater"}}]
        return {"workflowId": "bulk-repeat", "to": to, "payload": {"n": n}, "transactionId": transaction_id}

    first = (await stack.gql.data(bulk, input={"events": [event(1, "repeat-1")]}))["bulkTrigger"]
    assert first == [{"transactionId": "repeat-1", "duplicate": False}]
    mixed = [event(2, "repeat-2"), event(10, "repeat-1"), event(20, "repeat-2"), event(3, "repeat-3")]
    results = (await stack.gql.data(bulk, input={"events": mixed}))["bulkTrigger"]
    assert [(result["transactionId"], result["duplicate"]) for result in results] == [
        ("repeat-2", False),
        ("repeat-1", True),
        ("repeat-2", True),
        ("repeat-3", False),
    ]

    async def three() -> list[InboxMessage] | None:
        found = await InboxMessage.find({"workflow_id": "bulk-repeat"}).to_list()
        return found if len(found) >= 3 else None

    messages = await _eventually(three, 30, stack, "three repeat notifications")
    await asyncio.sleep(1)  # a duplicate that was wrongly queued would have arrived by now
    messages = await InboxMessage.find({"workflow_id": "bulk-repeat"}).to_list()
    assert sorted(message.body for message in messages) == ["n=1", "n=2", "n=3"]
