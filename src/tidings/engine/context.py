"""What a step sees while it runs: the job, its step, the trigger, the subscriber and earlier steps' outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from tidings.engine.policy import EngineDeps
from tidings.notifications.documents import Job, Trigger
from tidings.subscribers.documents import Subscriber
from tidings.workflows.steps import Step

STEP = TypeAdapter(Step)
# Subscriber fields templates and conditions may read; endpoints and tokens stay out of rendered content.
_SUBSCRIBER_FIELDS = ("subscriber_id", "email", "phone", "first_name", "last_name", "avatar", "locale", "timezone")


@dataclass(frozen=True, slots=True)
class StepContext:
    job: Job
    step: Any  # one of the Step union's models
    trigger: Trigger
    subscriber: Subscriber
    previous: Mapping[str, Mapping[str, Any]]  # step_id → output of the steps that ran before
    deps: EngineDeps
    now: datetime

    def data(self) -> dict[str, Any]:
        """The variables of templates and conditions: payload, subscriber, actor, tenant, overrides, steps, digest."""
        subscriber = {field: getattr(self.subscriber, field) for field in _SUBSCRIBER_FIELDS}
        subscriber["data"] = self.subscriber.data
        # camelCase aliases too, so templates can follow the API's names ({{ subscriber.firstName }}).
        subscriber |= {
            "subscriberId": self.subscriber.subscriber_id,
            "firstName": self.subscriber.first_name,
            "lastName": self.subscriber.last_name,
        }
        digests = [output for output in self.previous.values() if "events" in output]
        return {
            "payload": self.trigger.payload,
            "subscriber": subscriber,
            "actor": self.trigger.actor,
            "tenant": self.trigger.tenant,
            "overrides": self.trigger.overrides,
            "steps": dict(self.previous),
            "digest": digests[-1] if digests else {"events": [], "count": 0},
        }


def lookup(data: Mapping[str, Any], path: str) -> Any:
    """`payload.user.id` → the value, or None when any part is missing."""
    value: Any = data
    for part in path.split("."):
        if isinstance(value, Mapping) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value
