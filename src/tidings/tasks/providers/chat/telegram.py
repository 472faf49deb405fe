"""The Telegram bot provider (`telegram`): `POST {baseUrl}/bot<token>/sendMessage` with `{"chat_id", "text"}`.

The chat is the subscriber's `channelId` for this integration, else the integration's `defaultChatId`. The bot token
is in the request path, so errors and details name only the API's scheme and host (HttpProvider.post does that).
Telegram answers `{"ok": true, "result": {"message_id": …}}`, or `{"ok": false, "error_code": 403, "description":
"Forbidden: bot was blocked by the user", "parameters": {"retry_after": 5}}`; of an error only the numeric code and
a reason derived from the description (never the description itself) are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.chat_settings import TelegramSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider
from tidings.tasks.providers.chat.discord import chat_body, json_field
from tidings.tasks.providers.errors import MAX_RETRY_AFTER_SECONDS

MAX_TEXT_CHARS = 4096  # Telegram refuses longer messages
# Description fragments → reason codes. The first group means the chat can no longer be reached by this bot.
_DEAD_CHAT = {
    "chat not found": "chat_not_found",
    "bot was blocked by the user": "bot_blocked",
    "user is deactivated": "user_deactivated",
    "bot was kicked": "bot_kicked",
    "bot is not a member": "bot_not_member",
    "bot can't initiate conversation": "cannot_initiate",
    "group chat was upgraded to a supergroup": "chat_migrated",
}
_OTHER = {
    "not enough rights": "not_enough_rights",
    "have no rights": "not_enough_rights",
    "message is too long": "message_too_long",
    "can't parse entities": "cannot_parse_entities",
    "too many requests": "too_many_requests",
    "unauthorized": "unauthorized",
}
_DEAD_REASONS = frozenset(_DEAD_CHAT.values())


def telegram_reason(description: str) -> str | None:
    lowered = description.lower()
    return next((code for fragment, code in {**_DEAD_CHAT, **_OTHER}.items() if fragment in lowered), None)


class TelegramProvider(HttpProvider[TelegramSettings]):
    service = "Telegram"

    async def send(self, settings: TelegramSettings, message: OutboundMessage) -> SendResult:
        text = chat_body(message, max_chars=MAX_TEXT_CHARS)
        subscriber_chat = next(
            (
                endpoint.channel_id
                for endpoint in message.recipient.chat
                if endpoint.integration_identifier == self.identifier and endpoint.channel_id
            ),
            None,
        )
        chat_id = subscriber_chat or settings.default_chat_id
        if chat_id is None:
            raise DeliveryError(
                f"no Telegram chat: the subscriber has no channelId for integration {self.identifier} "
                "and the integration has no defaultChatId",
                kind=FailureKind.PERMANENT,
            )
        detail: dict[str, Any] = {"target": "subscriber" if subscriber_chat else "integration"}
        if subscriber_chat:
            detail["integrationIdentifier"] = self.identifier  # which chat entry a BAD_ENDPOINT condemns
        url = f"{settings.base_url}/bot{settings.bot_token.get_secret_value()}/sendMessage"
        body = json.dumps({"chat_id": chat_id, "text": text}, ensure_ascii=False).encode()
        try:
            answer = await self.post(
                url,
                body,
                {"Content-Type": "application/json"},
                timeout_seconds=settings.timeout_seconds,
                subscriber_endpoint=False,  # a 404 here means a wrong token, not a gone chat
                detail=detail,
            )
        except DeliveryError as error:
            retry_after = error.detail.pop("retryAfter", None)
            if error.kind is FailureKind.TRANSIENT and error.retry_after is None and retry_after is not None:
                error.retry_after = retry_after  # Telegram says how long in the body, not in a header
            if subscriber_chat and error.detail.get("reason") in _DEAD_REASONS:
                error.kind = FailureKind.BAD_ENDPOINT
            raise
        message_id = json_field(answer.text, ("result", "message_id"))
        return SendResult(
            provider_message_id=str(message_id) if message_id is not None else None,
            detail={**detail, "status": answer.status, "endpoint": origin(url)},
        )

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        found: dict[str, Any] = {}
        code = json_field(answer.text, ("error_code",))
        if isinstance(code, int) and not isinstance(code, bool):
            found["errorCode"] = code
        description = json_field(answer.text, ("description",))
        reason = telegram_reason(description) if isinstance(description, str) else None
        if reason is not None:
            found["reason"] = reason
        retry_after = json_field(answer.text, ("parameters", "retry_after"))
        if isinstance(retry_after, int | float) and not isinstance(retry_after, bool) and retry_after >= 0:
            found["retryAfter"] = float(min(retry_after, MAX_RETRY_AFTER_SECONDS))
        return found
