"""Limits the domain enforces. Operators set them through `TIDINGS_LIMIT_*` settings; these are the defaults."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)  # no slots: settings read the defaults off the class
class Limits:
    page_size_default: int = 20
    page_size_max: int = 100
    bulk_upsert_max: int = 500
    topic_subscribers_per_call: int = 1000
    subscriber_data_bytes: int = 16_384
    template_bytes: int = 65_536
    payload_schema_bytes: int = 65_536
    workflow_steps_max: int = 30
    tags_max: int = 20
    payload_bytes: int = 65_536
    trigger_recipients_max: int = 100
    bulk_trigger_max: int = 100
    webhook_endpoints_max: int = 20
    bulk_preferences_max: int = 100
