"""Push providers: FCM HTTP v1, APNs, Expo and Web Push, and what they share.

A subscriber has device tokens per push integration; a send goes to every token of this integration. The outcome
is one `SendResult` when at least one token took the notification (`detail`: `sent`, `failed`, `badDeviceTokens`,
the tokens the service said are unregistered or invalid, which the engine removes from the subscriber), or one
`DeliveryError`: TRANSIENT only when no token succeeded and one failed transiently (so a retry re-sends nothing
that was delivered), BAD_ENDPOINT when every token was bad, else PERMANENT.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.provider_settings import ProviderSettings
from tidings.tasks.providers.base import HttpProvider

# Tokens of one subscriber sent to at once; a subscriber rarely has more than a few devices.
CONCURRENT_TOKENS = 4
MAX_TOKENS = 100


class PushProvider[S: ProviderSettings](HttpProvider[S]):
    """An `HttpProvider` (SSRF guard, no redirects, bounded answers) that sends to each of a subscriber's tokens."""

    def device_tokens(self, message: OutboundMessage) -> list[str]:
        tokens: list[str] = []
        for endpoint in message.recipient.push:
            if endpoint.integration_identifier == self.identifier:
                tokens.extend(token for token in endpoint.device_tokens if token and token not in tokens)
        if not tokens:
            raise DeliveryError(
                f"subscriber has no device tokens for integration {self.identifier}", kind=FailureKind.PERMANENT
            )
        return tokens[:MAX_TOKENS]


@dataclass(frozen=True, slots=True)
class PushContent:
    title: str
    body: str
    data: Mapping[str, Any]

    def string_data(self) -> dict[str, str]:
        """`data` with every value a string (FCM's rule): non-strings are JSON-encoded."""
        return {
            str(key): value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            for key, value in self.data.items()
        }


def push_content(message: OutboundMessage) -> PushContent:
    title = message.content.get("title") or ""
    body = message.content.get("body") or ""
    data = message.content.get("data") or {}
    if not isinstance(title, str) or not isinstance(body, str) or not isinstance(data, Mapping):
        raise DeliveryError(
            "push content must have a text title and body and an object data", kind=FailureKind.PERMANENT
        )
    if not title.strip() and not body.strip():
        raise DeliveryError("push content has no title and no body", kind=FailureKind.PERMANENT)
    return PushContent(title, body, data)


def bad_token(error: DeliveryError, reason: str) -> DeliveryError:
    return DeliveryError(
        f"{error.message}: the device token is {reason}", kind=FailureKind.BAD_ENDPOINT, detail=error.detail
    )


async def send_each(service: str, tokens: list[str], send_one: Callable[[str], Awaitable[str | None]]) -> SendResult:
    """Send to every token (a few at a time) and fold the outcomes into one result or error (module docstring)."""
    gate = asyncio.Semaphore(CONCURRENT_TOKENS)

    async def attempt(token: str) -> str | DeliveryError | None:
        async with gate:
            try:
                return await send_one(token)
            except DeliveryError as error:
                return error

    outcomes = await asyncio.gather(*(asyncio.create_task(attempt(token)) for token in tokens))
    return fold(service, tokens, outcomes)


def fold(service: str, tokens: list[str], outcomes: list[str | DeliveryError | None]) -> SendResult:
    errors = [
        (token, outcome) for token, outcome in zip(tokens, outcomes, strict=True) if isinstance(outcome, DeliveryError)
    ]
    bad = [token for token, error in errors if error.kind is FailureKind.BAD_ENDPOINT]
    sent = len(tokens) - len(errors)
    counts: dict[str, Any] = {"sent": sent, "failed": len(errors), "badDeviceTokens": bad}
    if sent:
        ids = [outcome for outcome in outcomes if not isinstance(outcome, DeliveryError)]
        return SendResult(provider_message_id=next((i for i in ids if i is not None), None), detail=counts)
    transient = [error for _, error in errors if error.kind is FailureKind.TRANSIENT]
    if transient:
        kind = FailureKind.TRANSIENT
        worst = transient[0]
        waits = [error.retry_after for error in transient if error.retry_after is not None]
        retry_after = max(waits) if waits else None
    else:
        kind = FailureKind.BAD_ENDPOINT if len(bad) == len(errors) else FailureKind.PERMANENT
        worst = next((error for _, error in errors if error.kind is FailureKind.PERMANENT), errors[0][1])
        retry_after = None
    raise DeliveryError(
        f"{service}: no device token took the notification ({worst.message})",
        kind=kind,
        retry_after=retry_after,
        detail={**worst.detail, **counts},
    )
