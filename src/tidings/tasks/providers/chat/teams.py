"""The Microsoft Teams provider (`teams`): an Adaptive Card with the step's body, POSTed to an incoming webhook.

Works with the classic Office 365 connector webhooks and with the Workflows (Power Automate) webhooks that replace
them. A subscriber may have their own webhook URL for this integration; otherwise the integration's is used. The
URL is the credential, so only its scheme and host are ever logged or stored. Teams returns no message id.

Classic connector webhooks answer HTTP 200 even when Teams refused the message, with a body such as
"Webhook message delivery failed with error: Microsoft Teams endpoint returned HTTP error 429 …"; that text is read
and classified like the status it names.
"""

from __future__ import annotations

import json
import re
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.chat_settings import TeamsSettings
from tidings.tasks.providers.base import HttpProvider
from tidings.tasks.providers.chat.discord import chat_body
from tidings.tasks.providers.errors import http_failure_kind

ADAPTIVE_CARD = "application/vnd.microsoft.card.adaptive"
_FAILED_DELIVERY = re.compile(r"returned HTTP error (\d{3})")


def teams_card(text: str) -> dict[str, Any]:
    return {
        "type": "message",
        "attachments": [
            {
                "contentType": ADAPTIVE_CARD,
                "contentUrl": None,
                "content": {
                    "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                    "type": "AdaptiveCard",
                    "version": "1.2",
                    "body": [{"type": "TextBlock", "text": text, "wrap": True}],
                },
            }
        ],
    }


class TeamsProvider(HttpProvider[TeamsSettings]):
    service = "Microsoft Teams"

    async def send(self, settings: TeamsSettings, message: OutboundMessage) -> SendResult:
        text = chat_body(message)
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
                f"no Teams webhook: the subscriber has none for integration {self.identifier} "
                "and the integration has no webhookUrl",
                kind=FailureKind.PERMANENT,
            )
        url = subscriber_url or (settings.webhook_url.get_secret_value() if settings.webhook_url else "")
        detail: dict[str, Any] = {"target": "subscriber" if subscriber_url else "integration"}
        if subscriber_url:
            detail["integrationIdentifier"] = self.identifier  # which chat entry a BAD_ENDPOINT condemns
        body = json.dumps(teams_card(text), ensure_ascii=False).encode()
        answer = await self.post(
            url,
            body,
            {"Content-Type": "application/json"},
            timeout_seconds=settings.timeout_seconds,
            subscriber_endpoint=subscriber_url is not None,
            detail=detail,
        )
        detail = {**detail, "endpoint": origin(url), "status": answer.status}
        failed = _FAILED_DELIVERY.search(answer.text)
        if failed is not None:
            # The body names Teams' own status; the rest of it (a context id, maybe the card) is not kept.
            teams_status = int(failed.group(1))
            kind = http_failure_kind(teams_status, subscriber_endpoint=subscriber_url is not None)
            raise DeliveryError(
                f"{self.service} at {origin(url)} refused the message (Teams answered {teams_status})",
                kind=kind,
                detail={**detail, "teamsStatus": teams_status},
            )
        return SendResult(provider_message_id=None, detail=detail)
