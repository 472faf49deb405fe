"""The Apple Push Notification service provider (`apns`), with token-based (.p8 key) authentication.

Over HTTP/2 (APNs accepts nothing else): `POST {origin}/3/device/{token}` with `authorization: bearer <JWT>`,
`apns-topic: <bundle id>`, `apns-push-type: alert`, `apns-priority: 10`, `apns-id` (a UUID derived from the job's
idempotency key and the token, so a retry carries the same id) and `{"aps": {"alert": {"title", "body"}}, …data}`.
The JWT is ES256 `{iss: team id, iat}` with header `kid: key id`; Apple wants it renewed at most every 20 minutes and
at least every hour, so one is reused for 50 minutes. APNs answers 200 with the `apns-id` header (the provider
message id) or `{"reason": "BadDeviceToken"}`-style errors: BadDeviceToken and Unregistered (410) condemn the token;
only the reason code is kept.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import jwt

from tidings.engine.delivery import DeliveryError, OutboundMessage, SendResult
from tidings.integrations.push_settings import ApnsSettings, load_p256_key
from tidings.tasks.providers.base import HttpAnswer
from tidings.tasks.providers.push import PushProvider, bad_token, push_content, send_each

TOKEN_LIFETIME_SECONDS = 50 * 60
BAD_TOKEN_REASONS = frozenset({"BadDeviceToken", "Unregistered"})
_REASON = re.compile(r"^[A-Za-z]{1,64}$")
_APNS_ID = re.compile(r"^[0-9A-Fa-f-]{36}$")
_IDS = uuid.UUID("5a4d5b0c-6d1e-4c59-9a38-0b6f1e0d2a71")  # namespace of the apns-id values Tidings derives


class ApnsProvider(PushProvider[ApnsSettings]):
    service = "APNs"
    http2 = True

    def __init__(self, *, identifier: str, allow_private_networks: bool) -> None:
        super().__init__(identifier=identifier, allow_private_networks=allow_private_networks)
        self._jwt: tuple[str, float, str] | None = None  # (key fingerprint, issued at, token)
        self._jwt_lock = asyncio.Lock()

    async def provider_token(self, settings: ApnsSettings) -> str:
        secret = settings.private_key.get_secret_value()
        fingerprint = hashlib.sha256(f"{settings.team_id}:{settings.key_id}:{secret}".encode()).hexdigest()
        async with self._jwt_lock:
            now = time.time()
            if self._jwt is None or self._jwt[0] != fingerprint or now - self._jwt[1] >= TOKEN_LIFETIME_SECONDS:
                token = jwt.encode(
                    {"iss": settings.team_id, "iat": int(now)},
                    load_p256_key(secret),
                    algorithm="ES256",
                    headers={"kid": settings.key_id},
                )
                self._jwt = (fingerprint, now, token)
            return self._jwt[2]

    async def send(self, settings: ApnsSettings, message: OutboundMessage) -> SendResult:
        tokens = self.device_tokens(message)
        content = push_content(message)
        alert = {key: value for key, value in (("title", content.title), ("body", content.body)) if value}
        # Custom data sits beside "aps", which it may not replace.
        payload = {**{key: value for key, value in content.data.items() if key != "aps"}, "aps": {"alert": alert}}
        body = json.dumps(payload, ensure_ascii=False, default=str).encode()
        base = settings.origin.rstrip("/")
        provider_token = await self.provider_token(settings)

        async def send_one(token: str) -> str | None:
            apns_id = str(uuid.uuid5(_IDS, f"{message.idempotency_key}\n{token}"))
            headers = {
                "authorization": f"bearer {provider_token}",
                "apns-topic": settings.bundle_id,
                "apns-push-type": "alert",
                "apns-priority": "10",
                "apns-id": apns_id,
                "content-type": "application/json",
            }
            try:
                answer = await self.post(
                    f"{base}/3/device/{quote(token, safe='')}",
                    body,
                    headers,
                    timeout_seconds=settings.timeout_seconds,
                    subscriber_endpoint=False,
                )
            except DeliveryError as error:
                reason = error.detail.get("error")
                if reason in BAD_TOKEN_REASONS:
                    raise bad_token(error, "unregistered" if reason == "Unregistered" else "invalid") from None
                raise
            answered = answer.headers.get("apns-id")
            return answered if answered and _APNS_ID.match(answered) else apns_id

        return await send_each(self.service, tokens, send_one)

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        try:
            document = json.loads(answer.text)
        except ValueError:
            return {}
        reason = document.get("reason") if isinstance(document, dict) else None
        return {"error": reason} if isinstance(reason, str) and _REASON.match(reason) else {}
