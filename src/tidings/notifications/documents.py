"""Persistence of triggers, notifications, jobs, execution details, and the digest and throttle state.

MongoDB is the truth for every job: the queue only wakes workers up (DESIGN §3, §4).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, ClassVar

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from tidings.core.clock import utcnow


class TriggerStatus(StrEnum):
    ACCEPTED = "accepted"  # recorded; recipients not (all) resolved yet
    PROCESSED = "processed"  # every notification and first job written
    CANCELED = "canceled"


class Recipient(BaseModel):
    """One entry of a trigger's `to`, after inline subscribers were upserted: a subscriber id, a topic key (less
    `exclude`), or every subscriber of the environment."""

    subscriber_id: str | None = None
    topic_key: str | None = None
    exclude: list[str] = Field(default_factory=list)
    all_subscribers: bool = False


class WorkflowSnapshot(BaseModel):
    """The workflow as it was when triggered: later edits don't change notifications already under way."""

    workflow_id: str
    name: str
    critical: bool
    read_only: bool
    tags: list[str] = Field(default_factory=list)
    channel_defaults: dict[str, bool] = Field(default_factory=dict)
    steps: list[dict[str, Any]] = Field(default_factory=list)


class Trigger(Document):
    environment_id: PydanticObjectId
    transaction_id: str
    workflow: WorkflowSnapshot
    to: list[Recipient]
    payload: dict[str, Any] = Field(default_factory=dict)
    overrides: dict[str, Any] = Field(default_factory=dict)
    actor: str | None = None
    tenant: str | None = None
    status: TriggerStatus = TriggerStatus.ACCEPTED
    # Fan-out progress: the last topic membership `_id` handled per topic, so a resumed fan-out skips what is done.
    topic_cursors: dict[str, PydanticObjectId] = Field(default_factory=dict)
    # The same for a broadcast: the last subscriber `_id` handled.
    broadcast_cursor: PydanticObjectId | None = None
    notification_count: int = 0
    # Kept for the environment's jobs retention after it was accepted, pushed later by every job that parks.
    expires_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "triggers"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("environment_id", ASCENDING), ("transaction_id", ASCENDING)], unique=True),
            IndexModel([("status", ASCENDING), ("updated_at", ASCENDING)]),
            # Erasing a subscriber finds the triggers that name it without having notified it.
            IndexModel([("environment_id", ASCENDING), ("actor", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("to.exclude", ASCENDING)]),
            # Retention (environments.retention): MongoDB deletes the record once `expires_at` passed.
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]


class NotificationStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"


class Notification(Document):
    """One trigger for one subscriber."""

    environment_id: PydanticObjectId
    trigger_id: PydanticObjectId
    transaction_id: str
    workflow_id: str
    subscriber_id: str
    status: NotificationStatus = NotificationStatus.PENDING
    expires_at: datetime | None = None  # set when it finishes: a notification under way is never deleted
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "notifications"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel(
                [("environment_id", ASCENDING), ("transaction_id", ASCENDING), ("subscriber_id", ASCENDING)],
                unique=True,
            ),
            IndexModel([("environment_id", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("subscriber_id", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("workflow_id", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("status", ASCENDING), ("_id", ASCENDING)]),
            IndexModel([("trigger_id", ASCENDING), ("subscriber_id", ASCENDING)]),
            # Retention (environments.retention): MongoDB deletes the record once `expires_at` passed.
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]


class JobStatus(StrEnum):
    PENDING = "pending"
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    DELAYED = "delayed"  # parked until `due_at`: a delay, a digest window, or a retry
    CANCELED = "canceled"
    MERGED = "merged"  # folded into another notification's digest
    SKIPPED = "skipped"  # conditions, preferences, throttle or an inactive step


OPEN_JOB_STATUSES = (JobStatus.PENDING, JobStatus.QUEUED, JobStatus.DELAYED)


class Job(Document):
    """One step of one notification."""

    environment_id: PydanticObjectId
    trigger_id: PydanticObjectId
    notification_id: PydanticObjectId
    transaction_id: str
    workflow_id: str
    subscriber_id: str
    step_index: int
    step_id: str
    step_type: str
    status: JobStatus = JobStatus.QUEUED
    due_at: datetime | None = None
    queued_at: datetime | None = None
    lease_until: datetime | None = None
    attempts: int = 0
    # The provider's id for a send that happened: a redelivered job with it set never sends again.
    sent_message_id: str | None = None
    # The provider's status callbacks about the sent message (POST /webhooks/providers/{integrationId}).
    delivery_status: str | None = None
    delivery_events: list[dict[str, Any]] = Field(default_factory=list)
    # What later steps may read as `steps.<stepId>` (and a digest's `events` and `count`).
    output: dict[str, Any] = Field(default_factory=dict)
    reason: str | None = None
    executions: list[ExecutionDetail] = Field(default_factory=list)
    # Set when the job finishes (never while it is open): the job is deleted at `expires_at`, its `executions`
    # emptied at `details_expire_at` by the scheduler's retention sweep.
    expires_at: datetime | None = None
    details_expire_at: datetime | None = None
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "jobs"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("notification_id", ASCENDING), ("step_index", ASCENDING)], unique=True),
            # The scheduler's sweeps: due parked jobs, lost wake-ups, expired leases (Novu #7430: index `jobs`).
            IndexModel([("status", ASCENDING), ("due_at", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("queued_at", ASCENDING)]),
            IndexModel([("status", ASCENDING), ("lease_until", ASCENDING)]),
            IndexModel([("environment_id", ASCENDING), ("transaction_id", ASCENDING), ("status", ASCENDING)]),
            # Status callbacks find the job by the provider's message id.
            IndexModel([("environment_id", ASCENDING), ("sent_message_id", ASCENDING)], sparse=True),
            # Retention (environments.retention): MongoDB deletes the record once `expires_at` passed.
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
            IndexModel([("details_expire_at", ASCENDING)], sparse=True),
        ]


class ExecutionDetail(BaseModel):
    """What one run of a job did: the step's outcome, the reason, the provider's answer, the time it took.

    Kept on the job itself (runs are few: at most `engine_max_attempts`), so recording a run is part of the one
    write that records the outcome.
    """

    attempt: int
    status: str
    reason: str | None = None
    detail: dict[str, Any] = Field(default_factory=dict)
    duration_ms: int = 0
    created_at: datetime = Field(default_factory=utcnow)


# Digest and throttle state is kept per environment, workflow, subscriber, step and key value.
_STEP_KEY = [
    ("environment_id", ASCENDING),
    ("workflow_id", ASCENDING),
    ("subscriber_id", ASCENDING),
    ("step_id", ASCENDING),
    ("key_value", ASCENDING),
]


class DigestStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


class Digest(Document):
    """Events of one subscriber (and one digest-key value) collected during a window by one atomic upsert each."""

    environment_id: PydanticObjectId
    workflow_id: str
    subscriber_id: str
    step_id: str
    key_value: str
    status: DigestStatus = DigestStatus.OPEN
    leader_job_id: PydanticObjectId
    events: list[dict[str, Any]] = Field(default_factory=list)
    event_count: int = 0  # all events, also those beyond the ones kept in `events`
    window_ends_at: datetime
    created_at: datetime = Field(default_factory=utcnow)
    # Set when the digest closes (its events hold payloads): kept as long as the jobs that carried them.
    expires_at: datetime | None = None

    class Settings:
        name = "digests"
        indexes: ClassVar[list[IndexModel]] = [
            # At most one open digest per key: concurrent events race on this index, never on a read (Novu #2569).
            IndexModel(
                _STEP_KEY,
                unique=True,
                partialFilterExpression={"status": "open"},
                name="one_open_digest",
            ),
            IndexModel([*_STEP_KEY, ("created_at", ASCENDING)]),
            # Erasing a subscriber (subscribers.erasure).
            IndexModel([("environment_id", ASCENDING), ("subscriber_id", ASCENDING)]),
            # Retention (environments.retention): MongoDB deletes the record once `expires_at` passed.
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
        ]


class ThrottleWindow(Document):
    """How many events one key let through in one fixed window; expires with the window."""

    environment_id: PydanticObjectId
    workflow_id: str
    subscriber_id: str
    step_id: str
    key_value: str
    window_start: datetime
    hits: int = 0
    expires_at: datetime

    class Settings:
        name = "throttle_windows"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([*_STEP_KEY, ("window_start", ASCENDING)], unique=True),
            IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
            IndexModel([("environment_id", ASCENDING), ("subscriber_id", ASCENDING)]),
        ]
