"""Delivery status callbacks end to end: an email goes out through Mailgun (a real local stand-in of its API) from
a real worker; Mailgun's signed callbacks, posted to the real API process, mark the job delivered and then, for a
hard bounce, disable the subscriber's address so the next email step fails without a send. Bad signatures, unknown
integrations and providers without callbacks are refused."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.api.conftest import GraphQL
from tests.integration.test_engine import CREATE_INTEGRATION, CREATE_WORKFLOW, TRIGGER, engine_settings
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, role_env
from tests.sinks import serve_app
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

SIGNING_KEY = "key-signing-0123456789abcdef"
SESSION = 'mutation($app: String!) { inboxSession(applicationIdentifier: $app, subscriberId: "eve") { token } }'
JOB = """query($t: String!) { notifications(where: {transactionId: $t}) { edges { node { jobs {
    status reason providerMessageId deliveryStatus deliveryEvents } } } } }"""


@pytest.fixture(scope="module")
def mailgun() -> Iterator[tuple[list[str], str]]:
    """Mailgun's messages API: answers each send with a fresh message id, as Mailgun does."""
    ids: list[str] = []

    async def messages(request: Request) -> JSONResponse:
        await request.body()
        ids.append(f"<{secrets.token_hex(8)}@mg.example.com>")
        return JSONResponse({"id": ids[-1], "message": "Queued. Thank you."})

    app = Starlette(routes=[Route("/v3/{domain}/messages", messages, methods=["POST"])])
    with serve_app(app, "Mailgun's stand-in") as base:
        yield ids, base


@dataclass
class Stack:
    gql: GraphQL
    client: httpx.AsyncClient
    callback_path: str
    webhook_callback_path: str
    redis_url: str


@pytest.fixture(scope="module")
async def stack(
    mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, mailgun: tuple[list[str], str]
) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("status")
    settings = engine_settings(mongodb_url, redis_url, tmp)
    async with beanie_database(settings):
        issued = await create_environment("status", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                created = await gql.data(
                    CREATE_INTEGRATION.replace("{ identifier }", "{ identifier statusCallbackPath }"),
                    input={
                        "providerId": "mailgun",
                        "config": {"domain": "mg.example.com", "fromEmail": "t@example.com", "baseUrl": mailgun[1]},
                        "credentials": {"apiKey": "key-0123456789", "webhookSigningKey": SIGNING_KEY},
                    },
                )
                hook = await gql.data(
                    CREATE_INTEGRATION.replace("{ identifier }", "{ identifier statusCallbackPath }"),
                    input={"providerId": "webhook", "config": {"url": "https://example.com/hook"}},
                )
                steps = [{"email": {"subject": "Hi", "body": "<p>{{ payload.n }}</p>"}}]
                await gql.data(CREATE_WORKFLOW, input={"workflowId": "mail", "name": "Mail", "steps": steps})
                yield Stack(
                    gql,
                    client,
                    created["createIntegration"]["statusCallbackPath"],
                    hook["createIntegration"]["statusCallbackPath"],
                    redis_url,
                )
        finally:
            worker.stop()
            api.stop()


def _signed(event: dict[str, Any], key: str = SIGNING_KEY) -> dict[str, Any]:
    timestamp, token = str(int(time.time())), secrets.token_hex(25)
    signature = hmac.new(key.encode(), f"{timestamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {"signature": {"timestamp": timestamp, "token": token, "signature": signature}, "event-data": event}


def _event(kind: str, message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": kind,
        "timestamp": time.time(),
        "recipient": "ada@example.com",
        "message": {"headers": {"message-id": message_id.strip("<>")}},
        **extra,
    }


async def _send(stack: Stack, n: int) -> dict[str, Any]:
    subscriber = {"subscriberId": "ada", "email": "ada@example.com"}
    result = await stack.gql.data(
        TRIGGER, input={"workflowId": "mail", "to": [{"subscriber": subscriber}], "payload": {"n": n}}
    )
    transaction = result["trigger"]["transactionId"]
    for _ in range(300):
        job = await _job(stack, transaction)
        if job and job["status"] in ("COMPLETED", "FAILED"):
            return {**job, "transaction": transaction}
        await asyncio.sleep(0.1)
    raise AssertionError(f"email {n} did not finish")


async def _job(stack: Stack, transaction: str) -> dict[str, Any] | None:
    edges = (await stack.gql.data(JOB, t=transaction))["notifications"]["edges"]
    jobs = [job for edge in edges for job in edge["node"]["jobs"]]
    return jobs[0] if jobs else None


async def test_delivered_then_a_hard_bounce_disables_the_address(stack: Stack, mailgun: tuple[list[str], str]) -> None:
    sent = await _send(stack, 1)
    assert sent["status"] == "COMPLETED"
    message_id = sent["providerMessageId"]
    assert message_id == mailgun[0][-1]

    delivered = await stack.client.post(stack.callback_path, json=_signed(_event("delivered", message_id)))
    assert delivered.status_code == 200, delivered.text
    assert delivered.json()["matched"] == 1
    job = await _job(stack, sent["transaction"])
    assert job is not None
    assert job["deliveryStatus"] == "delivered"
    assert [event["status"] for event in job["deliveryEvents"]] == ["delivered"]

    bounce = _event("failed", message_id, severity="permanent", **{"delivery-status": {"code": 550}})
    bounced = await stack.client.post(stack.callback_path, json=_signed(bounce))
    assert bounced.status_code == 200, bounced.text
    assert bounced.json()["disabledEndpoints"] == 1
    job = await _job(stack, sent["transaction"])
    assert job is not None
    assert job["deliveryStatus"] == "bounced"

    before = len(mailgun[0])
    refused = await _send(stack, 2)
    assert refused["status"] == "FAILED"
    assert "bounced" in refused["reason"]
    assert len(mailgun[0]) == before  # nothing was sent to the dead address

    # A new address is used again.
    await stack.gql.data(
        'mutation { updateSubscriber(subscriberId: "ada", input: {email: "ada@new.example.com"}) { email } }'
    )
    result = await stack.gql.data(
        TRIGGER, input={"workflowId": "mail", "to": [{"subscriberId": "ada"}], "payload": {"n": 3}}
    )
    job = None
    for _ in range(300):
        job = await _job(stack, result["trigger"]["transactionId"])
        if job and job["status"] in ("COMPLETED", "FAILED"):
            break
        await asyncio.sleep(0.1)
    assert job is not None
    assert job["status"] == "COMPLETED"
    assert len(mailgun[0]) == before + 1


async def test_refused_callbacks(stack: Stack) -> None:
    forged = _signed(_event("delivered", "<x@mg.example.com>"), key="not-the-key")
    assert (await stack.client.post(stack.callback_path, json=forged)).status_code == 401
    assert (await stack.client.post(stack.callback_path, content=b"not json")).status_code == 401
    unknown = "/webhooks/providers/0123456789abcdef01234567"
    assert (await stack.client.post(unknown, json=_signed(_event("delivered", "<x@y>")))).status_code == 404
    assert (await stack.client.post("/webhooks/providers/nope", json={})).status_code == 404
    # The generic webhook provider sends no status callbacks.
    assert (await stack.client.post(stack.webhook_callback_path, json={})).status_code == 404
    # A verified event about a message Tidings never sent changes nothing.
    other = await stack.client.post(stack.callback_path, json=_signed(_event("delivered", "<other@mg.example.com>")))
    assert other.status_code == 200
    assert other.json()["matched"] == 0
    assert json.loads(other.text)["received"] == 1


async def test_outbound_webhooks_announce_the_send_and_the_delivery(
    stack: Stack, mailgun: tuple[list[str], str]
) -> None:
    from tests.sinks import http_sink  # noqa: PLC0415
    from tidings.webhooks.signing import verify  # noqa: PLC0415

    with http_sink() as (sink, base):
        created = await stack.gql.data(
            "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }",
            input={"url": f"{base}/events", "eventTypes": ["message.sent", "message.delivered", "workflow.completed"]},
        )
        secret = created["createWebhookEndpoint"]["secret"]
        await stack.gql.data(
            'mutation { updateSubscriber(subscriberId: "ada", input: {email: "ada@third.example.com"}) { email } }'
        )
        result = await stack.gql.data(
            TRIGGER, input={"workflowId": "mail", "to": [{"subscriberId": "ada"}], "payload": {"n": 4}}
        )
        transaction = result["trigger"]["transactionId"]
        first_two = {json.loads(r.body)["type"]: r for r in await asyncio.to_thread(sink.wait_for, 2)}
        assert set(first_two) == {"message.sent", "workflow.completed"}
        completed = json.loads(first_two["workflow.completed"].body)["data"]
        assert (completed["transactionId"], completed["status"]) == (transaction, "completed")
        sent = first_two["message.sent"]
        assert verify(secret, sent.headers["tidings-signature"], sent.body)
        data = json.loads(sent.body)["data"]
        assert (data["transactionId"], data["subscriberId"], data["messageId"]) == (transaction, "ada", mailgun[0][-1])

        answer = await stack.client.post(stack.callback_path, json=_signed(_event("delivered", mailgun[0][-1])))
        assert answer.json()["matched"] == 1
        delivered = (await asyncio.to_thread(sink.wait_for, 3))[2]
        body = json.loads(delivered.body)
        assert (body["type"], body["data"]["status"]) == ("message.delivered", "delivered")
        assert verify(secret, delivered.headers["tidings-signature"], delivered.body)


async def test_outbound_webhooks_announce_what_a_subscriber_does_in_the_inbox(stack: Stack) -> None:
    from beanie import PydanticObjectId  # noqa: PLC0415

    from tests.api.test_inbox import RedisPublisher  # noqa: PLC0415
    from tests.sinks import http_sink  # noqa: PLC0415
    from tidings.environments.documents import Environment  # noqa: PLC0415
    from tidings.inbox.service import NewMessage, deliver_in_app  # noqa: PLC0415

    environment = await Environment.find_one(Environment.name == "status")
    assert environment is not None
    assert environment.id is not None
    with http_sink() as (sink, base):
        await stack.gql.data(
            "mutation($input: CreateWebhookEndpointInput!) { createWebhookEndpoint(input: $input) { secret } }",
            input={"url": f"{base}/inbox", "eventTypes": ["message.read", "message.seen", "message.archived"]},
        )
        from redis.asyncio import Redis  # noqa: PLC0415

        redis = Redis.from_url(stack.redis_url)
        try:
            message, _ = await deliver_in_app(
                NewMessage(
                    environment_id=environment.id,
                    subscriber_id="eve",
                    notification_id=PydanticObjectId(),
                    transaction_id="t-inbox",
                    workflow_id="mail",
                    step_id="in-app",
                    body="hello",
                ),
                RedisPublisher(redis),
            )
        finally:
            await redis.aclose()
        session = await stack.client.post(
            "/graphql",
            json={
                "query": SESSION,
                "variables": {"app": environment.application_identifier},
            },
        )
        bearer = {"Authorization": f"Bearer {session.json()['data']['inboxSession']['token']}"}
        for query in (
            "mutation($id: ID!) { inboxMarkRead(id: $id) { id } }",
            "mutation($id: ID!) { inboxArchive(id: $id) { id } }",
        ):
            answer = await stack.client.post(
                "/graphql", json={"query": query, "variables": {"id": str(message.id)}}, headers=bearer
            )
            assert "errors" not in answer.json(), answer.text
        events = [json.loads(request.body) for request in await asyncio.to_thread(sink.wait_for, 2)]
        assert sorted(event["type"] for event in events) == ["message.archived", "message.read"]
        assert {event["data"]["messageId"] for event in events} == {str(message.id)}
        assert {event["data"]["subscriberId"] for event in events} == {"eve"}
