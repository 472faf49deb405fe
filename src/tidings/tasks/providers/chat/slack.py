"""The Slack incoming-webhook provider (`slack-webhook`).

A subscriber may have their own incoming-webhook URL for this integration (their chat endpoint); otherwise the
integration's URL is used. Both URLs carry Slack's token, so only their scheme and host are ever logged or stored.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.providers import SlackWebhookSettings
from tidings.tasks.providers.base import HttpAnswer, HttpProvider

# Slack answers errors with a bare code ("no_service", "channel_is_archived"): safe and useful to keep.
_SLACK_ERROR = re.compile(r"^[a-z_]{1,64}$")


class SlackWebhookProvider(HttpProvider[SlackWebhookSettings]):
    service = "Slack webhook"

    async def send(self, settings: SlackWebhookSettings, message: OutboundMessage) -> SendResult:
        text = message.content.get("body")
        if not isinstance(text, str) or not text.strip():
            raise DeliveryError("chat content has no body", kind=FailureKind.PERMANENT)
        subscriber_url = next(
            (
                endpoint.webhook_url
                for endpoint in message.recipient.chat
                if endpoint.integration_identifier == self.identifier and endpoint.webhook_url
            ),
            None,
        )
        url = subscriber_url or settings.webhook_url.get_secret_value()
        detail: dict[str, Any] = {"target": "subscriber" if subscriber_url else "integration"}
        if subscriber_url:
            # Which address to stop using when the answer is BAD_ENDPOINT.
            detail["integrationIdentifier"] = self.identifier
        body = json.dumps({"text": text}, ensure_ascii=False).encode()
        answer = await self.post(
            url,
            body,
            {"Content-Type": "application/json"},
            timeout_seconds=settings.timeout_seconds,
            subscriber_endpoint=subscriber_url is not None,
            detail=detail,
        )
        return SendResult(provider_message_id=None, detail={**detail, "status": answer.status, "endpoint": origin(url)})

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        error = answer.text.strip()
        return {"error": error} if _SLACK_ERROR.match(error) else {}
