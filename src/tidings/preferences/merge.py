"""The preference merge, as Novu orders it: workflow default < subscriber global < subscriber per-workflow.

`readOnly` workflows ignore every subscriber choice; on a `critical` workflow a channel the workflow enables stays
enabled whatever the subscriber chose, while a channel it disables follows the subscriber's choices like any other
(a subscriber may switch it on). Pure functions, so the whole table is unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Reason(StrEnum):
    WORKFLOW_DEFAULT = "workflow_default"
    SUBSCRIBER_GLOBAL = "subscriber_global"
    SUBSCRIBER_WORKFLOW = "subscriber_workflow"
    READ_ONLY = "read_only"
    CRITICAL = "critical"


@dataclass(frozen=True, slots=True)
class Decision:
    enabled: bool
    reason: Reason


def merge_channel(
    *,
    default: bool,
    read_only: bool,
    critical: bool,
    subscriber_global: bool | None,
    subscriber_workflow: bool | None,
) -> Decision:
    if read_only:
        return Decision(default, Reason.READ_ONLY)
    if critical and default:
        return Decision(True, Reason.CRITICAL)
    if subscriber_workflow is not None:
        return Decision(subscriber_workflow, Reason.SUBSCRIBER_WORKFLOW)
    if subscriber_global is not None:
        return Decision(subscriber_global, Reason.SUBSCRIBER_GLOBAL)
    return Decision(default, Reason.WORKFLOW_DEFAULT)
