"""`POST /webhooks/providers/{integrationId}`: where providers send delivery status callbacks.

No API key: providers can't send one. Trust comes from each provider's own signature or credentials, checked by
the provider before any field of the callback is used; an unknown integration and a provider without callbacks
are both a plain 404, so the endpoint tells a prober nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from beanie import PydanticObjectId
from bson.errors import InvalidId
from starlette.requests import Request
from starlette.responses import JSONResponse

from tidings.core.queue import TaskQueue
from tidings.engine.delivery import InboundWebhook, StatusCallbacksUnsupportedError, WebhookRejectedError
from tidings.engine.status import apply_status_updates
from tidings.integrations.documents import Integration
from tidings.tasks.providers.registry import ProviderSender

logger = logging.getLogger(__name__)

PATH = "/webhooks/providers/{integration_id}"


def status_callback_endpoint(
    sender: ProviderSender, public_url: str | None, queue: Callable[[], TaskQueue | None]
) -> Callable[[Request], Awaitable[JSONResponse]]:
    async def receive(request: Request) -> JSONResponse:
        try:
            integration_id = PydanticObjectId(request.path_params["integration_id"])
        except (InvalidId, TypeError):
            return JSONResponse({"error": "not found"}, status_code=404)
        integration = await Integration.get(integration_id)
        if integration is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        # Signatures cover the URL the provider called; behind a proxy that is the public one, not ours.
        url = str(request.url)
        if public_url:
            query = f"?{request.url.query}" if request.url.query else ""
            url = f"{public_url.rstrip('/')}{request.url.path}{query}"
        webhook = InboundWebhook(headers=request.headers, body=await request.body(), url=url)
        try:
            updates = await sender.parse_status(integration, webhook)
        except StatusCallbacksUnsupportedError:
            return JSONResponse({"error": "not found"}, status_code=404)
        except WebhookRejectedError as exc:
            logger.warning("status callback for integration %s refused: %s", integration.identifier, exc)
            return JSONResponse({"error": "the callback did not verify"}, status_code=401)
        applied = await apply_status_updates(integration, updates, queue())
        return JSONResponse(
            {"received": len(updates), "matched": applied.matched, "disabledEndpoints": applied.disabled_endpoints}
        )

    return receive
