"""One attempt to deliver a webhook: claim it, POST the signed event, record the answer, schedule the retry.

Any answer but 2xx (redirects included: they are not followed) is retried with exponential backoff and jitter, up to
`MAX_ATTEMPTS` over about a day. An address the SSRF guard refuses or a secret that no longer decrypts fails at once.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from beanie import PydanticObjectId

from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher, DecryptionError
from tidings.core.net import HostResolutionError, UnsafeUrlError, check_public_url, origin
from tidings.webhooks.documents import DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from tidings.webhooks.service import sealed_owner
from tidings.webhooks.signing import signed_headers

MAX_ATTEMPTS = 8
RETRY_BASE_SECONDS = 15.0
RETRY_FACTOR = 4.0
RETRY_MAX_SECONDS = 12 * 3600.0  # with the rest: 15 s, 1 min, 4 min, 16 min, 64 min, 4.3 h, 12 h (~18 h in all)
TIMEOUT_SECONDS = 10.0
# How long a claimed attempt may run before another worker may make it (timeout plus the SSRF check's DNS lookup).
LEASE_SECONDS = TIMEOUT_SECONDS + 20.0
_MAX_ERROR_LENGTH = 200


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    status: DeliveryStatus
    # Seconds until the next attempt is due (the sweep queues it then); None when finished or not attempted.
    retry_in_seconds: float | None = None
    attempted: bool = True


def retry_delay(attempt: int) -> float:
    """Delay after failed attempt number `attempt` (1-based): exponential, capped, with jitter in its upper half."""
    ceiling = min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * RETRY_FACTOR ** max(0, attempt - 1))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def new_http_client() -> httpx.AsyncClient:
    """The client deliveries share (connections are reused); it never follows redirects."""
    return httpx.AsyncClient(follow_redirects=False, timeout=TIMEOUT_SECONDS)


def event_body(delivery: WebhookDelivery) -> bytes:
    """The JSON body; built from the stored delivery, so every attempt sends the same bytes."""
    created = delivery.created_at if delivery.created_at.tzinfo else delivery.created_at.replace(tzinfo=UTC)
    body = {
        "id": delivery.event_id,
        "type": delivery.event_type,
        "createdAt": created.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "environmentId": str(delivery.environment_id),
        "data": delivery.payload,
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()


async def _claim(delivery_id: PydanticObjectId, attempt: int, now: datetime) -> WebhookDelivery | None:
    lease = now + timedelta(seconds=LEASE_SECONDS)
    raw = await WebhookDelivery.get_pymongo_collection().find_one_and_update(
        {
            "_id": delivery_id,
            "status": DeliveryStatus.PENDING.value,
            "attempt_count": attempt,
            "lease_until": {"$lte": now},
        },
        {"$set": {"lease_until": lease, "next_attempt_at": lease}},
    )
    if raw is None:
        return None
    claimed: WebhookDelivery = WebhookDelivery.model_validate(raw)
    claimed.lease_until = claimed.next_attempt_at = lease
    return claimed


def _short(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:_MAX_ERROR_LENGTH]


async def _post(
    endpoint: WebhookEndpoint, delivery: WebhookDelivery, secret: str, client: httpx.AsyncClient, allow_private: bool
) -> tuple[DeliveryAttempt, bool]:
    """The attempt, and whether trying again can help."""
    started = time.monotonic()
    at = utcnow()
    body = event_body(delivery)
    headers = signed_headers(
        secret, event_id=delivery.event_id, event_type=delivery.event_type, body=body, timestamp=int(time.time())
    )
    try:
        await check_public_url(endpoint.url, allow_private=allow_private)
        response = await client.post(
            endpoint.url, content=body, headers=headers, follow_redirects=False, timeout=TIMEOUT_SECONDS
        )
    except UnsafeUrlError as exc:
        return DeliveryAttempt(at=at, error=f"refused: {exc}"[:_MAX_ERROR_LENGTH]), False
    except HostResolutionError as exc:
        return DeliveryAttempt(at=at, error=_short(exc), duration_ms=_ms(started)), True
    except httpx.HTTPError as exc:
        # The message of a transport error may quote the URL; name the origin only.
        error = f"{type(exc).__name__} calling {origin(endpoint.url)}"
        return DeliveryAttempt(at=at, error=error, duration_ms=_ms(started)), True
    attempt = DeliveryAttempt(at=at, status_code=response.status_code, duration_ms=_ms(started))
    return attempt, not response.is_success


def _ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


async def _record(
    delivery: WebhookDelivery, attempt: DeliveryAttempt, status: DeliveryStatus, next_at: datetime | None, now: datetime
) -> None:
    await WebhookDelivery.get_pymongo_collection().update_one(
        {"_id": delivery.id, "attempt_count": delivery.attempt_count},
        {
            "$push": {"attempts": attempt.model_dump()},
            "$set": {
                "attempt_count": delivery.attempt_count + 1,
                "status": status.value,
                "next_attempt_at": next_at,
                "lease_until": now,
            },
        },
    )


async def deliver(
    delivery_id: str,
    attempt: int,
    *,
    cipher: Cipher,
    client: httpx.AsyncClient,
    allow_private: bool,
    now: datetime | None = None,
) -> DeliveryResult:
    """Make attempt number `attempt` (0-based) of a delivery, unless it was made, finished or is running elsewhere."""
    if not PydanticObjectId.is_valid(delivery_id):
        return DeliveryResult(DeliveryStatus.FAILED, attempted=False)
    now = now or utcnow()
    delivery = await _claim(PydanticObjectId(delivery_id), attempt, now)
    if delivery is None:
        return DeliveryResult(DeliveryStatus.PENDING, attempted=False)
    endpoint = await WebhookEndpoint.find_one({"_id": delivery.endpoint_id, "environment_id": delivery.environment_id})
    if endpoint is None:  # deleted since: its deliveries are being deleted too
        return DeliveryResult(DeliveryStatus.FAILED, attempted=False)
    try:
        secret = cipher.decrypt(endpoint.secret, owner=sealed_owner(delivery.endpoint_id))
    except DecryptionError:
        record, retryable = DeliveryAttempt(at=now, error="the signing secret does not decrypt"), False
    else:
        record, retryable = await _post(endpoint, delivery, secret, client, allow_private)
    finished = utcnow()
    if record.status_code is not None and not retryable:
        await _record(delivery, record, DeliveryStatus.SUCCEEDED, None, finished)
        return DeliveryResult(DeliveryStatus.SUCCEEDED)
    if not retryable or delivery.attempt_count + 1 >= MAX_ATTEMPTS:
        await _record(delivery, record, DeliveryStatus.FAILED, None, finished)
        return DeliveryResult(DeliveryStatus.FAILED)
    delay = retry_delay(delivery.attempt_count + 1)
    await _record(delivery, record, DeliveryStatus.PENDING, finished + timedelta(seconds=delay), finished)
    return DeliveryResult(DeliveryStatus.PENDING, retry_in_seconds=delay)


@dataclass(frozen=True, slots=True)
class WebhookDeps:
    """What the delivery task needs; the worker builds it (and closes `client` when it stops)."""

    cipher: Cipher
    client: httpx.AsyncClient
    allow_private: bool
