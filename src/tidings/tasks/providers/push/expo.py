"""The Expo push provider (`expo`).

`POST {base_url}/--/api/v2/push/send` with a JSON list of messages `{to, title, body, data}` (and
`Authorization: Bearer <access token>` when the project requires one). Expo answers 200 with one ticket per message,
in order: `{"status": "ok", "id"}` (the provider message id) or `{"status": "error", "details": {"error"}}`:
DeviceNotRegistered condemns the token, MessageRateExceeded is transient, the rest permanent. A request Expo
refuses as a whole answers `{"errors": [{"code", "message"}]}`; only the code is kept (the message quotes tokens).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from tidings.core.net import origin
from tidings.engine.delivery import DeliveryError, FailureKind, OutboundMessage, SendResult
from tidings.integrations.push_settings import ExpoSettings
from tidings.tasks.providers.base import HttpAnswer
from tidings.tasks.providers.push import PushProvider, fold, push_content

# Expo takes up to 100 messages a request, but error tickets quote the token: ten keep the answer well inside
# the bytes HttpProvider reads of it.
CHUNK = 10
_CODE = re.compile(r"^[A-Za-z_]{1,64}$")
_ID = re.compile(r"^[A-Za-z0-9-]{1,128}$")
_TRANSIENT = frozenset({"MessageRateExceeded"})
_BAD_TOKEN = frozenset({"DeviceNotRegistered"})


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


class ExpoProvider(PushProvider[ExpoSettings]):
    service = "Expo"

    async def send(self, settings: ExpoSettings, message: OutboundMessage) -> SendResult:
        tokens = self.device_tokens(message)
        content = push_content(message)
        url = f"{settings.base_url.rstrip('/')}/--/api/v2/push/send"
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if settings.access_token is not None:
            headers["Authorization"] = f"Bearer {settings.access_token.get_secret_value()}"
        outcomes: list[str | DeliveryError | None] = []
        for start in range(0, len(tokens), CHUNK):
            chunk = tokens[start : start + CHUNK]
            messages = [
                {"to": token, "title": content.title, "body": content.body, "data": dict(content.data)}
                for token in chunk
            ]
            try:
                answer = await self.post(
                    url,
                    json.dumps(messages, ensure_ascii=False, default=str).encode(),
                    headers,
                    timeout_seconds=settings.timeout_seconds,
                    subscriber_endpoint=False,
                )
            except DeliveryError as error:
                outcomes.extend(error for _ in chunk)
                continue
            outcomes.extend(self._tickets(answer, len(chunk), origin(url)))
        return fold(self.service, tokens, outcomes)

    def _tickets(self, answer: HttpAnswer, count: int, endpoint: str) -> list[str | DeliveryError | None]:
        document = _json(answer.text)
        tickets = document.get("data") if isinstance(document, dict) else None
        detail = {"endpoint": endpoint, "status": answer.status}
        if not isinstance(tickets, list) or len(tickets) != count:
            # Expo may have sent them: not TRANSIENT, or a retry could notify twice.
            unreadable = DeliveryError(
                f"Expo at {endpoint} answered without readable tickets", kind=FailureKind.PERMANENT, detail=detail
            )
            return [unreadable] * count
        outcomes: list[str | DeliveryError | None] = []
        for ticket in tickets:
            if isinstance(ticket, dict) and ticket.get("status") == "ok":
                ticket_id = ticket.get("id")
                outcomes.append(ticket_id if isinstance(ticket_id, str) and _ID.match(ticket_id) else None)
                continue
            details = ticket.get("details") if isinstance(ticket, dict) else None
            code = details.get("error") if isinstance(details, dict) else None
            code = code if isinstance(code, str) and _CODE.match(code) else None
            if code in _BAD_TOKEN:
                kind = FailureKind.BAD_ENDPOINT
            elif code in _TRANSIENT:
                kind = FailureKind.TRANSIENT
            else:
                kind = FailureKind.PERMANENT
            outcomes.append(
                DeliveryError(
                    f"Expo refused the notification for a device ({code or 'unknown error'})",
                    kind=kind,
                    detail={**detail, "error": code} if code else detail,
                )
            )
        return outcomes

    def error_detail(self, answer: HttpAnswer) -> Mapping[str, Any]:
        document = _json(answer.text)
        errors = document.get("errors") if isinstance(document, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else None
        code = first.get("code") if isinstance(first, dict) else None
        return {"error": code} if isinstance(code, str) and _CODE.match(code) else {}
