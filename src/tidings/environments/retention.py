"""How long an environment keeps its records: in-app messages, activity (triggers, notifications, jobs, webhook
deliveries) and the execution details on jobs.

Each record gets an `expires_at` when it is written (a job and a notification when they finish), computed from its
environment's retention at that moment; a TTL index on `expires_at` lets MongoDB delete it, and the scheduler's
retention sweep does the same where no TTL monitor runs. So a change of retention applies to records written
afterwards, as in Knock and Novu: records already stamped keep their date.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from beanie import PydanticObjectId

from tidings.core.errors import NotFoundError, ValidationError
from tidings.core.validation import camel
from tidings.environments.documents import Environment, RetentionOverrides

MIN_DAYS = 1
MAX_DAYS = 3650


@dataclass(frozen=True, slots=True)
class Retention:
    """Days each kind of record is kept (the environment's choices over the server's defaults)."""

    messages_days: int = 90
    jobs_days: int = 30
    execution_details_days: int = 7

    def messages_until(self, now: datetime) -> datetime:
        return now + timedelta(days=self.messages_days)

    def jobs_until(self, now: datetime) -> datetime:
        return now + timedelta(days=self.jobs_days)

    def details_until(self, now: datetime) -> datetime:
        # Details live on the job: they cannot outlive it.
        return now + timedelta(days=min(self.execution_details_days, self.jobs_days))


@dataclass(slots=True)
class _Config:
    defaults: Retention
    cache_seconds: float


_config = _Config(defaults=Retention(), cache_seconds=30.0)
# environment id → (monotonic time read, retention): every write of a message or job needs it.
_cache: dict[PydanticObjectId, tuple[float, Retention]] = {}
_CACHE_MAX = 10_000


def configure(defaults: Retention, cache_seconds: float) -> None:
    """Set the server's defaults; each role calls it once at start-up, from its settings."""
    _config.defaults, _config.cache_seconds = defaults, cache_seconds
    _cache.clear()


def effective(overrides: RetentionOverrides | None) -> Retention:
    chosen = {
        key: value for key, value in (overrides or RetentionOverrides()).model_dump().items() if value is not None
    }
    return replace(_config.defaults, **chosen)


async def retention_for(environment_id: PydanticObjectId) -> Retention:
    """The environment's retention, read at most once per `cache_seconds` per process."""
    now = time.monotonic()
    cached = _cache.get(environment_id)
    if cached is not None and now - cached[0] < _config.cache_seconds:
        return cached[1]
    raw = await Environment.get_pymongo_collection().find_one({"_id": environment_id}, {"retention": 1})
    retention = effective(RetentionOverrides.model_validate(raw["retention"]) if raw and raw.get("retention") else None)
    if len(_cache) >= _CACHE_MAX:
        _cache.clear()
    _cache[environment_id] = (now, retention)
    return retention


def _check_days(value: int | None, field: str) -> None:
    if value is not None and not MIN_DAYS <= value <= MAX_DAYS:
        raise ValidationError(f"must be between {MIN_DAYS} and {MAX_DAYS} days", field=field)


async def set_retention(environment: Environment, changes: Mapping[str, int | None]) -> Environment:
    """Apply `changes` (snake_case field → days, None back to the server default) to the environment's retention.

    Execution details live on the job, so they may not be kept longer than jobs."""
    unknown = set(changes) - set(RetentionOverrides.model_fields)
    if unknown:
        raise ValidationError(f"unknown retention fields {sorted(unknown)}", field="input")
    for name, value in changes.items():
        _check_days(value, "input." + camel(name))
    overrides = (environment.retention or RetentionOverrides()).model_copy(update=dict(changes))
    result = effective(overrides)
    if result.execution_details_days > result.jobs_days:
        raise ValidationError(
            f"execution details cannot be kept longer than jobs ({result.jobs_days} days)",
            field="input.executionDetailsDays",
        )
    stored: dict[str, Any] = overrides.model_dump()
    updated = await Environment.get_pymongo_collection().update_one(
        {"_id": environment.id}, {"$set": {"retention": stored}}
    )
    if not updated.matched_count:
        raise NotFoundError("the environment is gone")
    environment.retention = overrides
    if environment.id is not None:
        _cache.pop(environment.id, None)
    return environment
