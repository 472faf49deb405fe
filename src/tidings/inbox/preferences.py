"""A subscriber changing its own preferences from the inbox: only what it may change.

The admin API records any choice (and the effective view explains why some don't apply); a subscriber is told
no instead, since a switch that does nothing in its own settings screen is a bug report waiting to happen.
"""

from __future__ import annotations

from collections.abc import Mapping

from tidings.core.channels import Channel
from tidings.core.errors import ForbiddenError
from tidings.inbox.state import Owner
from tidings.preferences.documents import SubscriberPreference
from tidings.preferences.service import set_subscriber_preference
from tidings.workflows.service import get_workflow


async def set_own_preferences(
    owner: Owner, workflow_id: str | None, channels: Mapping[Channel, bool | None]
) -> SubscriberPreference:
    if workflow_id is not None:
        workflow = await get_workflow(owner.environment_id, workflow_id)
        if workflow.preferences.read_only:
            raise ForbiddenError(f"workflow {workflow_id!r} has read-only preferences", field="workflowId")
        if workflow.critical and any(value is False for value in channels.values()):
            raise ForbiddenError(
                f"workflow {workflow_id!r} is critical: its channels can't be turned off", field="channels"
            )
    return await set_subscriber_preference(owner.environment_id, owner.subscriber_id, workflow_id, channels)
