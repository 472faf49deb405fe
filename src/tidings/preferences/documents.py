"""Persistence of subscriber preferences: one global row per subscriber, and one per workflow they changed."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from beanie import Document, PydanticObjectId
from pydantic import Field
from pymongo import ASCENDING, IndexModel

from tidings.core.channels import Channel
from tidings.core.clock import utcnow


class SubscriberPreference(Document):
    environment_id: PydanticObjectId
    subscriber_id: str
    workflow_id: str | None = None  # None: the subscriber's global preference
    channels: dict[Channel, bool] = Field(default_factory=dict)  # only the channels the subscriber chose
    # False: the subscriber turned everything here off (Novu's `enabled`); `channels` is kept for turning it back on.
    enabled: bool = True
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "subscriber_preferences"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel(
                [("environment_id", ASCENDING), ("subscriber_id", ASCENDING), ("workflow_id", ASCENDING)], unique=True
            ),
            # Deleting a workflow deletes every subscriber's choices for it.
            IndexModel([("environment_id", ASCENDING), ("workflow_id", ASCENDING)]),
        ]


def applied_choices(
    global_row: SubscriberPreference | None, workflow_row: SubscriberPreference | None
) -> tuple[dict[Channel, bool], dict[Channel, bool]]:
    """The subscriber's global and per-workflow choices as delivery applies them. A row turned off turns every
    channel off there; the global row turned off also sets the workflow's own choices aside (Novu's switch for
    everything), leaving only what `critical` and `readOnly` workflows decide themselves."""
    if global_row is not None and not global_row.enabled:
        return dict.fromkeys(Channel, False), {}
    chosen_globally = dict(global_row.channels) if global_row is not None else {}
    if workflow_row is None:
        return chosen_globally, {}
    return chosen_globally, dict(workflow_row.channels) if workflow_row.enabled else dict.fromkeys(Channel, False)
