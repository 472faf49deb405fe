"""Domain functions for webhooks: endpoints (with their signing secrets), delivery history, and `emit`."""

from __future__ import annotations

import ipaddress
import json
import logging
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from beanie import PydanticObjectId

from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher
from tidings.core.errors import NotFoundError, ValidationError
from tidings.core.net import refusal
from tidings.core.pagination import Page, PageRequest, paginate
from tidings.core.queue import QueueUnavailableError, TaskQueue
from tidings.core.validation import camel
from tidings.environments.retention import Retention, retention_for
from tidings.webhooks.commands import CreateWebhookEndpoint, UpdateWebhookEndpoint
from tidings.webhooks.documents import DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tidings.webhooks.events import TEST_EVENT_TYPE

logger = logging.getLogger(__name__)

DELIVER_TASK = "tidings.webhooks.deliver"
MAX_ENDPOINTS_PER_ENVIRONMENT = 20
MAX_EVENT_BYTES = 65_536
# A queued delivery that no worker attempted within this time is queued again by the sweep (the task was lost).
REQUEUE_AFTER_SECONDS = 60.0
_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix that secret scanners can match, not a secret
_SECRET_BYTES = 32


@dataclass(frozen=True, slots=True)
class IssuedWebhookEndpoint:
    """An endpoint with its plain signing secret, which only this response shows."""

    endpoint: WebhookEndpoint
    secret: str


def sealed_owner(endpoint_id: PydanticObjectId) -> str:
    return f"webhook-endpoint:{endpoint_id}"


def _new_secret() -> str:
    return _SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)


def check_url(url: str, *, allow_private: bool, field: str) -> str:
    """Only https (http too when private networks are allowed) to a host; an IP literal must be public unless
    allowed. Names are resolved and checked again before every delivery, where DNS answers can change."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        raise ValidationError("not a valid URL", field=field) from None
    schemes = {"https", "http"} if allow_private else {"https"}
    if parts.scheme.lower() not in schemes:
        raise ValidationError("the URL must use https", field=field)
    if not host:
        raise ValidationError("the URL has no host", field=field)
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return url
    if (reason := refusal(address, allow_private=allow_private)) is not None:
        raise ValidationError(f"the URL points to {reason}", field=field)
    return url


def _object_id(value: str, field: str, what: str) -> PydanticObjectId:
    if not PydanticObjectId.is_valid(value):
        raise NotFoundError(f"no {what} with id {value[:64]!r}", field=field)
    return PydanticObjectId(value)


async def get_webhook_endpoint(
    environment_id: PydanticObjectId, endpoint_id: str, *, field: str = "id"
) -> WebhookEndpoint:
    oid = _object_id(endpoint_id, field, "webhook endpoint")
    endpoint = await WebhookEndpoint.find_one({"environment_id": environment_id, "_id": oid})
    if endpoint is None:
        raise NotFoundError(f"no webhook endpoint with id {endpoint_id!r}", field=field)
    return endpoint


async def create_webhook_endpoint(
    environment_id: PydanticObjectId,
    command: CreateWebhookEndpoint,
    cipher: Cipher,
    *,
    allow_private: bool,
    max_endpoints: int = MAX_ENDPOINTS_PER_ENVIRONMENT,
) -> IssuedWebhookEndpoint:
    url = check_url(command.url, allow_private=allow_private, field="input.url")
    # Count-then-insert: concurrent creations may pass the cap by a few; it bounds fan-out, not a quota.
    if await WebhookEndpoint.find({"environment_id": environment_id}).count() >= max_endpoints:
        raise ValidationError(f"an environment may have at most {max_endpoints} webhook endpoints", field="input")
    endpoint_id = PydanticObjectId()
    secret = _new_secret()
    endpoint = WebhookEndpoint(
        id=endpoint_id,
        environment_id=environment_id,
        url=url,
        description=command.description or None,
        event_types=[str(kind) for kind in command.event_types],
        active=command.active,
        secret=cipher.encrypt(secret, owner=sealed_owner(endpoint_id)),
    )
    await endpoint.insert()
    return IssuedWebhookEndpoint(endpoint=endpoint, secret=secret)


async def update_webhook_endpoint(
    environment_id: PydanticObjectId, endpoint_id: str, command: UpdateWebhookEndpoint, *, allow_private: bool
) -> WebhookEndpoint:
    endpoint = await get_webhook_endpoint(environment_id, endpoint_id)
    changes: dict[str, Any] = {}
    given = command.model_fields_set
    for name in ("url", "event_types", "active"):
        if name in given and getattr(command, name) is None:
            raise ValidationError(f"{camel(name)} may not be null", field=f"input.{camel(name)}")
    if command.url is not None:
        changes["url"] = check_url(command.url, allow_private=allow_private, field="input.url")
    if command.event_types is not None:
        changes["event_types"] = [str(kind) for kind in command.event_types]
    if command.active is not None:
        changes["active"] = command.active
    if "description" in given:
        changes["description"] = command.description or None
    if changes:
        changes["updated_at"] = utcnow()
        await WebhookEndpoint.get_pymongo_collection().update_one(
            {"_id": endpoint.id, "environment_id": environment_id}, {"$set": changes}
        )
        endpoint = endpoint.model_copy(update=changes)
    return endpoint


async def delete_webhook_endpoint(environment_id: PydanticObjectId, endpoint_id: str) -> None:
    endpoint = await get_webhook_endpoint(environment_id, endpoint_id)
    await WebhookEndpoint.get_pymongo_collection().delete_one({"_id": endpoint.id, "environment_id": environment_id})
    # Its history goes with it; a queued delivery then finds nothing to send.
    await WebhookDelivery.get_pymongo_collection().delete_many(
        {"environment_id": environment_id, "endpoint_id": endpoint.id}
    )


async def list_webhook_endpoints(environment_id: PydanticObjectId, request: PageRequest) -> Page[WebhookEndpoint]:
    return await paginate(WebhookEndpoint.find({"environment_id": environment_id}), request)


async def rotate_webhook_secret(
    environment_id: PydanticObjectId, endpoint_id: str, cipher: Cipher
) -> IssuedWebhookEndpoint:
    """A new signing secret; the old one stops signing at once (deliveries already running may still use it)."""
    endpoint = await get_webhook_endpoint(environment_id, endpoint_id)
    assert endpoint.id is not None
    secret = _new_secret()
    sealed = cipher.encrypt(secret, owner=sealed_owner(endpoint.id))
    now = utcnow()
    await WebhookEndpoint.get_pymongo_collection().update_one(
        {"_id": endpoint.id, "environment_id": environment_id}, {"$set": {"secret": sealed, "updated_at": now}}
    )
    return IssuedWebhookEndpoint(
        endpoint=endpoint.model_copy(update={"secret": sealed, "updated_at": now}), secret=secret
    )


async def list_webhook_deliveries(
    environment_id: PydanticObjectId, endpoint_id: str, request: PageRequest, status: DeliveryStatus | None = None
) -> Page[WebhookDelivery]:
    """An endpoint's deliveries, newest first."""
    endpoint = await get_webhook_endpoint(environment_id, endpoint_id, field="endpointId")
    query: dict[str, Any] = {"environment_id": environment_id, "endpoint_id": endpoint.id}
    if status is not None:
        query["status"] = status.value
    return await paginate(WebhookDelivery.find(query), request, descending=True)


def _checked_data(data: dict[str, Any]) -> dict[str, Any]:
    try:
        size = len(json.dumps(data, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        raise ValidationError("event data must be JSON", field="data") from None
    if size > MAX_EVENT_BYTES:
        raise ValidationError(f"event data must be at most {MAX_EVENT_BYTES} bytes of JSON", field="data")
    return data


async def _queue(deliveries: list[WebhookDelivery], queue: TaskQueue) -> None:
    for delivery in deliveries:
        try:
            await queue.enqueue(DELIVER_TASK, str(delivery.id), "0")
        except QueueUnavailableError:
            # MongoDB holds the delivery: the sweep queues it after REQUEUE_AFTER_SECONDS.
            logger.warning("webhook delivery %s not queued; the sweep will", delivery.id)


def _delivery(
    environment_id: PydanticObjectId,
    endpoint: WebhookEndpoint,
    event_id: str,
    event_type: str,
    data: dict[str, Any],
    *,
    retention: Retention,
) -> WebhookDelivery:
    assert endpoint.id is not None
    now = utcnow()
    return WebhookDelivery(
        id=PydanticObjectId(),  # set here: the task is queued by id, and insert_many need not fill ids in
        environment_id=environment_id,
        endpoint_id=endpoint.id,
        event_id=event_id,
        event_type=event_type,
        payload=data,
        next_attempt_at=now + timedelta(seconds=REQUEUE_AFTER_SECONDS),
        lease_until=now,
        # Retries end within a day (delivery.RETRY_MAX_SECONDS), and jobs are kept at least a day.
        expires_at=retention.jobs_until(now),
        created_at=now,
    )


async def emit(
    environment_id: PydanticObjectId, event_type: str, data: dict[str, Any], queue: TaskQueue
) -> list[WebhookDelivery]:
    """Record one delivery of the event per active endpoint subscribed to `event_type`, then queue them."""
    data = _checked_data(data)
    endpoints = await WebhookEndpoint.find(
        {"environment_id": environment_id, "event_types": event_type, "active": True}
    ).to_list()
    if not endpoints:
        return []
    event_id = f"evt_{uuid.uuid4().hex}"
    retention = await retention_for(environment_id)
    deliveries = [
        _delivery(environment_id, endpoint, event_id, event_type, data, retention=retention) for endpoint in endpoints
    ]
    await WebhookDelivery.insert_many(deliveries)
    await _queue(deliveries, queue)
    return deliveries


async def emit_many(
    environment_id: PydanticObjectId, event_type: str, events: Sequence[dict[str, Any]], queue: TaskQueue
) -> int:
    """`emit` for many events of one type (a bulk change): the endpoints are looked up once."""
    if not events:
        return 0
    endpoints = await WebhookEndpoint.find(
        {"environment_id": environment_id, "event_types": event_type, "active": True}
    ).to_list()
    if not endpoints:
        return 0
    retention = await retention_for(environment_id)
    deliveries = [
        _delivery(
            environment_id, endpoint, f"evt_{uuid.uuid4().hex}", event_type, _checked_data(data), retention=retention
        )
        for data in events
        for endpoint in endpoints
    ]
    await WebhookDelivery.insert_many(deliveries)
    await _queue(deliveries, queue)
    return len(deliveries)


async def send_test_webhook(environment_id: PydanticObjectId, endpoint_id: str, queue: TaskQueue) -> WebhookDelivery:
    """A `webhook.test` event to this endpoint only, whatever it subscribed to and even while inactive."""
    endpoint = await get_webhook_endpoint(environment_id, endpoint_id, field="endpointId")
    data = {"message": "A test event from Tidings.", "endpointId": str(endpoint.id)}
    retention = await retention_for(environment_id)
    delivery = _delivery(
        environment_id, endpoint, f"evt_{uuid.uuid4().hex}", TEST_EVENT_TYPE, data, retention=retention
    )
    await delivery.insert()
    await _queue([delivery], queue)
    return delivery
