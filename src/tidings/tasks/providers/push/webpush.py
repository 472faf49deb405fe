"""The Web Push provider (`webpush`): RFC 8030 push, RFC 8291 message encryption, RFC 8292 VAPID.

Each device token is a browser's PushSubscription JSON `{"endpoint", "keys": {"p256dh", "auth"}}`. The payload
`{"title", "body", "data"}` is encrypted with `aes128gcm` (http-ece, a fresh sender key and salt per message) to the
subscription's keys and POSTed to its endpoint — a push service the browser vendor runs, checked by the SSRF guard
like any other address — with `TTL`, `Content-Encoding: aes128gcm`, `Content-Type: application/octet-stream` and
`Authorization: vapid t=<ES256 JWT {aud: the endpoint's origin, sub, exp}>, k=<public key>` (py-vapid). The push
service answers 201 with the message's URL in `Location` (the provider message id); 404/410 mean the subscription
has expired or was removed, which condemns the token. Only the endpoint's origin is ever stored: its path
identifies the subscription.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from typing import Any
from urllib.parse import urlsplit

import http_ece  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02, VapidException  # type: ignore[import-untyped]

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.provider_settings import MAX_URL_LENGTH
from tidings.integrations.push_settings import WebPushSettings, load_p256_key
from tidings.tasks.providers.push import PushProvider, push_content, send_each

# RFC 8292: a VAPID JWT must expire within 24 hours.
VAPID_LIFETIME_SECONDS = 12 * 3600
MAX_LOCATION_LENGTH = 512


def _b64url(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not a string")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_subscription(token: str) -> tuple[str, bytes, bytes]:
    """(endpoint, p256dh, auth) of a PushSubscription JSON; ValueError when it is not one."""
    try:
        document = json.loads(token)
        endpoint = document["endpoint"]
        keys = document["keys"]
        p256dh = _b64url(keys["p256dh"])
        auth = _b64url(keys["auth"])
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), p256dh)
    except (ValueError, TypeError, KeyError, binascii.Error):
        raise ValueError("not a Web Push subscription") from None
    if not isinstance(endpoint, str) or len(endpoint) > MAX_URL_LENGTH or urlsplit(endpoint).scheme != "https":
        raise ValueError("not a Web Push subscription")
    if len(auth) != 16:
        raise ValueError("not a Web Push subscription")
    return endpoint, p256dh, auth


def encrypt(payload: bytes, p256dh: bytes, auth: bytes) -> bytes:
    """RFC 8291 `aes128gcm`: a fresh ephemeral key and salt, the sender's public key as the header's key id."""
    sender = ec.generate_private_key(ec.SECP256R1())
    encrypted: bytes = http_ece.encrypt(
        payload, salt=os.urandom(16), private_key=sender, dh=p256dh, auth_secret=auth, version="aes128gcm"
    )
    return encrypted


class WebPushProvider(PushProvider[WebPushSettings]):
    service = "Web Push"

    async def send(self, settings: WebPushSettings, message: OutboundMessage) -> SendResult:
        tokens = self.device_tokens(message)
        content = push_content(message)
        payload = json.dumps(
            {"title": content.title, "body": content.body, "data": dict(content.data)}, ensure_ascii=False, default=str
        ).encode()
        vapid = Vapid02(private_key=load_p256_key(settings.vapid_private_key.get_secret_value()))

        async def send_one(token: str) -> str | None:
            try:
                endpoint, p256dh, auth = parse_subscription(token)
            except ValueError:
                raise DeliveryError(
                    "Web Push device token is not a valid subscription", kind=FailureKind.BAD_ENDPOINT
                ) from None
            try:
                claims = {
                    "aud": origin(endpoint),
                    "sub": settings.vapid_subject,
                    "exp": int(time.time()) + VAPID_LIFETIME_SECONDS,
                }
                authorization: str = vapid.sign(claims)["Authorization"]
            except VapidException:
                raise DeliveryError(
                    "Web Push VAPID token could not be made (check vapidSubject)", kind=FailureKind.PERMANENT
                ) from None
            headers = {
                "Authorization": authorization,
                "TTL": str(settings.ttl_seconds),
                "Content-Encoding": "aes128gcm",
                "Content-Type": "application/octet-stream",
            }
            answer = await self.post(
                endpoint,
                encrypt(payload, p256dh, auth),
                headers,
                timeout_seconds=settings.timeout_seconds,
                subscriber_endpoint=True,
            )
            location = answer.headers.get("location")
            return location if location and len(location) <= MAX_LOCATION_LENGTH else None

        return await send_each(self.service, tokens, send_one)
