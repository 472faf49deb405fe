"""The webhook delivery task: takes a delivery id and the attempt to make, reloads it, and calls the domain.

The broker has no delayed enqueue, so a failed attempt is not queued again here: `deliver` sets the delivery's
`next_attempt_at`, and the scheduler's sweep (`tidings.webhooks.sweep`) queues it when that time comes.
"""

from __future__ import annotations

import logging
from typing import Annotated

from structlog.contextvars import bound_contextvars
from taskiq import Context, TaskiqDepends, async_shared_broker

from tidings.webhooks.delivery import WebhookDeps
from tidings.webhooks.delivery import deliver as deliver_webhook
from tidings.webhooks.documents import DeliveryStatus
from tidings.webhooks.service import DELIVER_TASK

logger = logging.getLogger(__name__)


def _deps(context: Context) -> WebhookDeps:
    deps: WebhookDeps = context.state.webhooks
    return deps


@async_shared_broker.task(task_name=DELIVER_TASK)
async def deliver(delivery_id: str, attempt: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    deps = _deps(context)
    number = int(attempt) if attempt.isdigit() else 0
    # Lines logged during the attempt name the delivery (docs/operations.md, "Logs"); never its URL or secret.
    with bound_contextvars(webhookDeliveryId=delivery_id, attempt=number):
        result = await deliver_webhook(
            delivery_id, number, cipher=deps.cipher, client=deps.client, allow_private=deps.allow_private
        )
        if result.status is DeliveryStatus.SUCCEEDED:
            logger.info("webhook delivered")
        elif result.attempted:
            retry = result.retry_in_seconds
            logger.warning(
                "webhook delivery failed" + ("" if retry is None else ", will retry"),
                extra={"status": result.status.value, "retryInSeconds": None if retry is None else round(retry, 1)},
            )
