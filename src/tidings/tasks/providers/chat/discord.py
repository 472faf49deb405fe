"""The Discord webhook provider (`discord`): `POST <webhook URL>?wait=true` with `{"content": …}`.

A subscriber may have their own webhook URL for this integration (their chat endpoint); otherwise the integration's
URL is used. The URL embeds the webhook's token, so only its scheme and host are ever logged or stored. `wait=true`
makes Discord answer with the created message, whose `id` is the provider message id.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.chat_settings import DiscordSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider

MAX_CONTENT_CHARS = 2000  # Discord refuses longer content
# Discord JSON error codes meaning the webhook is gone or its token is wrong.
UNKNOWN_WEBHOOK = 10015
INVALID_WEBHOOK_TOKEN = 50027
_DEAD_WEBHOOK_CODES = frozenset({UNKNOWN_WEBHOOK, INVALID_WEBHOOK_TOKEN})
# Rendered content may carry payload text; it must not be able to ping @everyone or @here. Explicit
# <@user> and <@&role> mentions still notify.
_ALLOWED_MENTIONS = {"parse": ["users", "roles"]}


def chat_body(message: OutboundMessage, *, max_chars: int | None = None) -> str:
    """The step's `body`, or a PERMANENT error (without the content) when it is missing, blank or too long."""
    text = message.content.get("body")
    if not isinstance(text, str) or not text.strip():
        raise DeliveryError("chat content has no body", kind=FailureKind.PERMANENT)
    if max_chars is not None and len(text) > max_chars:
        raise DeliveryError(
            f"chat body is {len(text)} characters, more than the {max_chars} the service accepts",
            kind=FailureKind.PERMANENT,
        )
    return text


def json_field(text: str, path: tuple[str, ...]) -> Any:
    """The scalar at `path` (object keys from the top) in a JSON document, or None.

    The answer is cut at `MAX_RESPONSE_BYTES`, and services echo the whole message back, so the document may be
    truncated: this reads it as far as it goes instead of requiring it to parse.
    """
    try:
        document = json.loads(text)
    except ValueError:
        return _scan(text, path)
    for key in path:
        if not isinstance(document, dict):
            return None
        document = document.get(key)
    return document if isinstance(document, str | int | float | bool) else None


def _scan(text: str, path: tuple[str, ...]) -> Any:
    decoder = json.JSONDecoder()
    # One entry per open container: [key, expecting a key] for an object, None for an array.
    stack: list[list[Any] | None] = []
    index = 0
    try:
        while index < len(text):
            char = text[index]
            top = stack[-1] if stack else None
            if char.isspace() or char == ":":
                if char == ":" and top is not None:
                    top[1] = False
                index += 1
            elif char == ",":
                if top is not None:
                    top[1] = True
                index += 1
            elif char in "{[":
                stack.append([None, True] if char == "{" else None)
                index += 1
            elif char in "}]":
                stack.pop()
                index += 1
            elif char == '"' and top is not None and top[1]:
                top[0], index = json.decoder.scanstring(text, index + 1)  # type: ignore[attr-defined]
            else:
                value, index = decoder.raw_decode(text, index)
                keys = tuple(entry[0] if entry is not None else None for entry in stack)
                if keys == path:
                    return value
    except (ValueError, IndexError):
        return None
    return None


def with_query(url: str, **params: str) -> str:
    """`url` with `params` set in its query string (other parameters, such as Discord's `thread_id`, kept)."""
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key not in params]
    return urlunsplit(parts._replace(query=urlencode([*query, *params.items()])))


class DiscordProvider(HttpProvider[DiscordSettings]):
    service = "Discord"

    async def send(self, settings: DiscordSettings, message: OutboundMessage) -> SendResult:
        text = chat_body(message, max_chars=MAX_CONTENT_CHARS)
        subscriber_url = next(
            (
                endpoint.webhook_url
                for endpoint in message.recipient.chat
                if endpoint.integration_identifier == self.identifier and endpoint.webhook_url
            ),
            None,
        )
        if subscriber_url is None and settings.webhook_url is None:
            raise DeliveryError(
                f"no Discord webhook: the subscriber has none for integration {self.identifier} "
                "and the integration has no webhookUrl",
                kind=FailureKind.PERMANENT,
            )
        raw_url = subscriber_url or (settings.webhook_url.get_secret_value() if settings.webhook_url else "")
        detail: dict[str, Any] = {"target": "subscriber" if subscriber_url else "integration"}
        if subscriber_url:
            detail["integrationIdentifier"] = self.identifier  # which chat entry a BAD_ENDPOINT condemns
        try:
            url = with_query(raw_url, wait="true")
        except ValueError:
            raise DeliveryError("Discord webhook URL is not valid", kind=FailureKind.PERMANENT, detail=detail) from None
        body = json.dumps({"content": text, "allowed_mentions": _ALLOWED_MENTIONS}, ensure_ascii=False).encode()
        try:
            answer = await self.post(
                url,
                body,
                {"Content-Type": "application/json"},
                timeout_seconds=settings.timeout_seconds,
                subscriber_endpoint=subscriber_url is not None,
                detail=detail,
            )
        except DeliveryError as error:
            if subscriber_url and error.detail.get("code") in _DEAD_WEBHOOK_CODES:
                error.kind = FailureKind.BAD_ENDPOINT  # e.g. 401 "Invalid Webhook Token" for the subscriber's URL
            raise
        message_id = json_field(answer.text, ("id",))
        return SendResult(
            provider_message_id=str(message_id) if message_id is not None else None,
            detail={**detail, "status": answer.status, "endpoint": origin(raw_url)},
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        # Discord errors are {"code": 10015, "message": "Unknown Webhook"}: the numeric code is safe to keep.
        code = json_field(answer.text, ("code",))
        return {"code": code} if isinstance(code, int) and not isinstance(code, bool) else {}
