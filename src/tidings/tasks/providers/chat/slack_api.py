"""The Slack Web API provider (`slack-api`): `POST {baseUrl}/api/chat.postMessage` with a bot token.

The channel is the subscriber's `channelId` for this integration, else the integration's `defaultChannel`. Slack
answers HTTP 200 for most failures, with `{"ok": false, "error": "channel_not_found"}`; the error code (a short
snake_case word, safe to keep) decides the kind. The message id is Slack's `ts`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.chat_settings import SlackApiSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider
from tidings.tasks.providers.chat.discord import chat_body, json_field

_SLACK_ERROR = re.compile(r"^[a-z_]{1,64}$")
# The channel cannot take the bot's messages: the subscriber's channel id is dead for this integration.
BAD_CHANNEL_ERRORS = frozenset({"channel_not_found", "is_archived", "channel_is_archived", "not_in_channel"})
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


def slack_error_kind(error: str, *, subscriber_channel: bool) -> FailureKind:
    if error in TRANSIENT_ERRORS:
        return FailureKind.TRANSIENT
    if error in BAD_CHANNEL_ERRORS and subscriber_channel:
        return FailureKind.BAD_ENDPOINT
    return FailureKind.PERMANENT


def _error_code(text: str) -> str | None:
    error = json_field(text, ("error",))
    return error if isinstance(error, str) and _SLACK_ERROR.match(error) else None


class SlackApiProvider(HttpProvider[SlackApiSettings]):
    service = "Slack API"

    async def send(self, settings: SlackApiSettings, message: OutboundMessage) -> SendResult:
        text = chat_body(message)
        subscriber_channel = next(
            (
                endpoint.channel_id
                for endpoint in message.recipient.chat
                if endpoint.integration_identifier == self.identifier and endpoint.channel_id
            ),
            None,
        )
        channel = subscriber_channel or settings.default_channel
        if channel is None:
            raise DeliveryError(
                f"no Slack channel: the subscriber has no channelId for integration {self.identifier} "
                "and the integration has no defaultChannel",
                kind=FailureKind.PERMANENT,
            )
        detail: dict[str, Any] = {"target": "subscriber" if subscriber_channel else "integration"}
        if subscriber_channel:
            detail["integrationIdentifier"] = self.identifier  # which chat entry a BAD_ENDPOINT condemns
        url = f"{settings.base_url}/api/chat.postMessage"
        body = json.dumps({"channel": channel, "text": text}, ensure_ascii=False).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "Authorization": f"Bearer {settings.bot_token.get_secret_value()}",
        }
        answer = await self.post(
            url,
            body,
            headers,
            timeout_seconds=settings.timeout_seconds,
            subscriber_endpoint=False,  # a 404 from the API is not about the channel
            detail=detail,
        )
        detail = {**detail, "endpoint": origin(url), "status": answer.status}
        if json_field(answer.text, ("ok",)) is not True:
            error = _error_code(answer.text)
            kind = (
                slack_error_kind(error, subscriber_channel=subscriber_channel is not None)
                if error is not None
                else FailureKind.PERMANENT
            )
            raise DeliveryError(
                f"{self.service} at {origin(url)} refused the message ({error or 'no error code'})",
                kind=kind,
                detail={**detail, **({"error": error} if error else {})},
            )
        ts = json_field(answer.text, ("ts",))
        return SendResult(provider_message_id=ts if isinstance(ts, str) else None, detail=detail)

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        error = _error_code(answer.text)
        return {"error": error} if error else {}
