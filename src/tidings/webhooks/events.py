"""The events Tidings sends to webhook endpoints."""

from __future__ import annotations

from enum import StrEnum


class WebhookEventType(StrEnum):
    MESSAGE_SENT = "message.sent"
    MESSAGE_DELIVERED = "message.delivered"
    MESSAGE_FAILED = "message.failed"
    MESSAGE_BOUNCED = "message.bounced"
    MESSAGE_READ = "message.read"
    MESSAGE_SEEN = "message.seen"
    MESSAGE_ARCHIVED = "message.archived"
    WORKFLOW_COMPLETED = "workflow.completed"
    WORKFLOW_FAILED = "workflow.failed"


# Sent by `sendTestWebhook` to one endpoint, whatever it subscribed to; not something an endpoint subscribes to.
TEST_EVENT_TYPE = "webhook.test"
