"""The webhook delivery task: takes a delivery id and the attempt to make, reloads it, and calls the domain.

The broker has no delayed enqueue, so a failed attempt is not queued again here: `deliver` sets the delivery's
`next_attempt_at`, and the scheduler's sweep (`tidings.webhooks.sweep`) queues it when that time comes.
"""

from __future__ import annotations

from typing import Annotated

from taskiq import Context, TaskiqDepends, async_shared_broker

from tidings.webhooks.delivery import WebhookDeps
from tidings.webhooks.delivery import deliver as deliver_webhook
from tidings.webhooks.service import DELIVER_TASK


def _deps(context: Context) -> WebhookDeps:
    deps: WebhookDeps = context.state.webhooks
    return deps


@async_shared_broker.task(task_name=DELIVER_TASK)
async def deliver(delivery_id: str, attempt: str, context: Annotated[Context, TaskiqDepends()]) -> None:
    deps = _deps(context)
    await deliver_webhook(
        delivery_id,
        int(attempt) if attempt.isdigit() else 0,
        cipher=deps.cipher,
        client=deps.client,
        allow_private=deps.allow_private,
    )
