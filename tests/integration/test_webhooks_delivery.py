"""Webhook delivery against a real local HTTP server: signing, retries, the SSRF guard, emit and the sweep.

`deliver` runs directly on Beanie (no worker); the queue records what was queued (tests.queues).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId
from pymongo import AsyncMongoClient

from tests.queues import RecordingQueue
from tests.servers import SECRET_KEY
from tests.sinks import HttpSink, header, http_sink
from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher
from tidings.core.errors import ValidationError
from tidings.webhooks.commands import CreateWebhookEndpoint
from tidings.webhooks.delivery import MAX_ATTEMPTS, DeliveryResult, deliver
from tidings.webhooks.documents import DeliveryStatus, WebhookDelivery
from tidings.webhooks.events import WebhookEventType
from tidings.webhooks.service import (
    DELIVER_TASK,
    REQUEUE_AFTER_SECONDS,
    IssuedWebhookEndpoint,
    create_webhook_endpoint,
    emit,
)
from tidings.webhooks.signing import verify
from tidings.webhooks.sweep import due_deliveries, sweep_webhook_deliveries

type Database = AsyncMongoClient[dict[str, Any]]

CIPHER = Cipher(SECRET_KEY)


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[HttpSink, str]]:
    with http_sink() as started:
        yield started


@pytest.fixture
def receiver(sink: tuple[HttpSink, str]) -> tuple[HttpSink, str]:
    sink[0].requests.clear()
    sink[0].statuses.clear()
    return sink


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(follow_redirects=False) as http:
        yield http


async def _endpoint(
    environment_id: PydanticObjectId, url: str, *events: WebhookEventType, active: bool = True
) -> IssuedWebhookEndpoint:
    command = CreateWebhookEndpoint(url=url, event_types=list(events or [WebhookEventType.MESSAGE_SENT]), active=active)
    return await create_webhook_endpoint(environment_id, command, CIPHER, allow_private=True)


async def _deliver(
    client: httpx.AsyncClient, delivery_id: str, attempt: int, *, allow_private: bool = True, **kwargs: Any
) -> DeliveryResult:
    return await deliver(delivery_id, attempt, cipher=CIPHER, client=client, allow_private=allow_private, **kwargs)


async def test_delivery_is_signed_and_the_signature_verifies(
    database: Database, receiver: tuple[HttpSink, str], client: httpx.AsyncClient
) -> None:
    sink, base = receiver
    environment_id = PydanticObjectId()
    issued = await _endpoint(environment_id, f"{base}/hooks/tidings")
    queue = RecordingQueue()
    [delivery] = await emit(environment_id, WebhookEventType.MESSAGE_SENT, {"messageId": "m1", "n": 1}, queue)
    assert queue.tasks == [(DELIVER_TASK, str(delivery.id), "0")]

    result = await _deliver(client, str(delivery.id), 0)

    assert result.status is DeliveryStatus.SUCCEEDED
    [request] = sink.requests
    assert (request.method, request.path) == ("POST", "/hooks/tidings")
    body = json.loads(request.body)
    assert body["id"] == delivery.event_id
    assert body["type"] == "message.sent"
    assert body["environmentId"] == str(environment_id)
    assert body["data"] == {"messageId": "m1", "n": 1}
    assert body["createdAt"].endswith("Z")
    assert header(request, "Tidings-Event-Id") == delivery.event_id
    assert header(request, "Tidings-Event-Type") == "message.sent"
    signature = header(request, "Tidings-Signature")
    assert verify(issued.secret, signature, request.body)
    assert not verify(issued.secret + "x", signature, request.body)
    assert not verify(issued.secret, signature, request.body + b" ")
    assert not verify(issued.secret, signature, request.body, now=int(signature[2:12]) + 301)

    stored = await WebhookDelivery.get(delivery.id)
    assert stored is not None
    assert stored.status is DeliveryStatus.SUCCEEDED
    assert [attempt.status_code for attempt in stored.attempts] == [200]
    assert stored.next_attempt_at is None
    # A repeated task for the same attempt sends nothing.
    assert not (await _deliver(client, str(delivery.id), 0)).attempted
    assert len(sink.requests) == 1


async def test_a_500_is_retried_and_both_attempts_are_recorded(
    database: Database, receiver: tuple[HttpSink, str], client: httpx.AsyncClient
) -> None:
    sink, base = receiver
    sink.statuses.append(500)
    environment_id = PydanticObjectId()
    await _endpoint(environment_id, f"{base}/retry")
    [delivery] = await emit(environment_id, WebhookEventType.MESSAGE_SENT, {"k": "v"}, RecordingQueue())

    first = await _deliver(client, str(delivery.id), 0)

    assert first.status is DeliveryStatus.PENDING
    assert first.retry_in_seconds is not None
    assert first.retry_in_seconds > 0
    stored = await WebhookDelivery.get(delivery.id)
    assert stored is not None
    assert stored.next_attempt_at is not None
    assert stored.next_attempt_at > utcnow()
    # Not due yet: the sweep leaves it; once due, it queues attempt 1, once.
    assert await due_deliveries(utcnow()) == []
    queue = RecordingQueue()
    assert await sweep_webhook_deliveries(queue, now=stored.next_attempt_at) == 1
    assert queue.tasks == [(DELIVER_TASK, str(delivery.id), "1")]
    assert await due_deliveries(stored.next_attempt_at) == []
    # A stale task for attempt 0 does not resend.
    assert not (await _deliver(client, str(delivery.id), 0)).attempted

    second = await _deliver(client, str(delivery.id), 1)

    assert second.status is DeliveryStatus.SUCCEEDED
    assert len(sink.requests) == 2
    assert sink.requests[0].body == sink.requests[1].body
    stored = await WebhookDelivery.get(delivery.id)
    assert stored is not None
    assert stored.status is DeliveryStatus.SUCCEEDED
    assert [attempt.status_code for attempt in stored.attempts] == [500, 200]
    assert all(attempt.duration_ms >= 0 for attempt in stored.attempts)


async def test_attempts_are_bounded(
    database: Database, receiver: tuple[HttpSink, str], client: httpx.AsyncClient
) -> None:
    sink, base = receiver
    sink.statuses.extend([503] * MAX_ATTEMPTS)
    environment_id = PydanticObjectId()
    await _endpoint(environment_id, f"{base}/down")
    [delivery] = await emit(environment_id, WebhookEventType.MESSAGE_SENT, {}, RecordingQueue())
    results = [await _deliver(client, str(delivery.id), attempt) for attempt in range(MAX_ATTEMPTS)]
    assert [result.status for result in results] == [DeliveryStatus.PENDING] * (MAX_ATTEMPTS - 1) + [
        DeliveryStatus.FAILED
    ]
    stored = await WebhookDelivery.get(delivery.id)
    assert stored is not None
    assert stored.status is DeliveryStatus.FAILED
    assert len(stored.attempts) == MAX_ATTEMPTS
    assert stored.next_attempt_at is None


async def test_a_redirect_is_not_followed(
    database: Database, receiver: tuple[HttpSink, str], client: httpx.AsyncClient
) -> None:
    sink, base = receiver
    sink.statuses.append(307)
    environment_id = PydanticObjectId()
    await _endpoint(environment_id, f"{base}/moved")
    [delivery] = await emit(environment_id, WebhookEventType.MESSAGE_SENT, {}, RecordingQueue())
    result = await _deliver(client, str(delivery.id), 0)
    assert result.status is DeliveryStatus.PENDING
    assert len(sink.requests) == 1


async def test_a_loopback_url_is_refused_unless_allowed(
    database: Database, receiver: tuple[HttpSink, str], client: httpx.AsyncClient
) -> None:
    sink, base = receiver
    environment_id = PydanticObjectId()
    for url, message in ((f"{base}/x", "https"), ("https://127.0.0.1/x", "loopback"), ("https://10.0.0.1/", "private")):
        command = CreateWebhookEndpoint(url=url, event_types=[WebhookEventType.MESSAGE_SENT])
        with pytest.raises(ValidationError, match=message) as raised:
            await create_webhook_endpoint(environment_id, command, CIPHER, allow_private=False)
        assert raised.value.field == "input.url"
    # Registered while allowed, then delivered by a worker that does not allow private addresses.
    await _endpoint(environment_id, f"{base}/private")
    [delivery] = await emit(environment_id, WebhookEventType.MESSAGE_SENT, {}, RecordingQueue())
    result = await _deliver(client, str(delivery.id), 0, allow_private=False)
    assert result.status is DeliveryStatus.FAILED
    assert sink.requests == []
    stored = await WebhookDelivery.get(delivery.id)
    assert stored is not None
    [attempt] = stored.attempts
    assert attempt.status_code is None
    assert attempt.error is not None
    assert "loopback" in attempt.error


async def test_emit_reaches_only_active_subscribed_endpoints_of_the_environment(
    database: Database, receiver: tuple[HttpSink, str]
) -> None:
    _, base = receiver
    environment_id, other_id = PydanticObjectId(), PydanticObjectId()
    wanted = await _endpoint(environment_id, f"{base}/a", WebhookEventType.MESSAGE_SENT, WebhookEventType.MESSAGE_READ)
    await _endpoint(environment_id, f"{base}/b", WebhookEventType.MESSAGE_READ)
    await _endpoint(environment_id, f"{base}/c", WebhookEventType.MESSAGE_SENT, active=False)
    await _endpoint(other_id, f"{base}/d", WebhookEventType.MESSAGE_SENT)
    deliveries = await emit(environment_id, WebhookEventType.MESSAGE_SENT, {}, RecordingQueue())
    assert [delivery.endpoint_id for delivery in deliveries] == [wanted.endpoint.id]
    assert await emit(environment_id, WebhookEventType.WORKFLOW_FAILED, {}, RecordingQueue()) == []
    with pytest.raises(ValidationError):
        await emit(environment_id, WebhookEventType.MESSAGE_SENT, {"big": "x" * 70_000}, RecordingQueue())


async def test_a_delivery_the_queue_did_not_take_is_swept_later(
    database: Database, receiver: tuple[HttpSink, str]
) -> None:
    _, base = receiver
    environment_id = PydanticObjectId()
    await _endpoint(environment_id, f"{base}/later")
    [delivery] = await emit(environment_id, WebhookEventType.MESSAGE_SENT, {}, RecordingQueue(down=True))
    assert await due_deliveries(utcnow()) == []
    later = utcnow() + timedelta(seconds=REQUEUE_AFTER_SECONDS + 1)
    assert await due_deliveries(later) == [(str(delivery.id), 0)]
