"""Metrics of the workflow engine, exported by the worker (jobs, steps, deliveries, providers) and the scheduler
(the oldest due job) on their own metrics ports.

Every label value comes from a closed set (step types, job outcomes, channels, provider ids, failure kinds), never
from an id or a string a client chose, so a busy environment cannot blow up the number of series.
"""

from __future__ import annotations

import typing
from datetime import datetime

from prometheus_client import Counter, Gauge, Histogram

from tidings.core.channels import Channel
from tidings.engine.delivery import FailureKind
from tidings.integrations.providers import PROVIDERS
from tidings.notifications.documents import JobStatus
from tidings.workflows.steps import Step

OTHER = "other"
STEP_TYPES = frozenset(
    typing.get_args(member.model_fields["type"].annotation)[0] for member in typing.get_args(typing.get_args(Step)[0])
)
_CHANNELS = frozenset(channel.value for channel in Channel)

JOBS = Counter(
    "tidings_jobs_total",
    "Job runs by step type and outcome (completed, failed, skipped, merged, canceled; retried: a channel step parked "
    "for a retry; parked: a delay or digest waiting for its time)",
    ["step_type", "outcome"],
)
STEP_DURATION = Histogram(
    "tidings_step_duration_seconds",
    "Time one run of a step took in the worker, by step type",
    ["step_type"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
DELIVERY_LATENCY = Histogram(
    "tidings_delivery_latency_seconds",
    "From the trigger's acceptance to the provider's acceptance (or the in-app message stored), by channel; "
    "includes delays, digest windows and retries of the workflow",
    ["channel"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21_600.0, 86_400.0),
)
PROVIDER_SENDS = Counter("tidings_provider_sends_total", "Messages a provider accepted, by provider id", ["provider"])
PROVIDER_ERRORS = Counter(
    "tidings_provider_errors_total",
    "Failed provider calls by provider id and kind (transient, permanent, bad_endpoint)",
    ["provider", "kind"],
)
OLDEST_DUE = Gauge(
    "tidings_queue_oldest_due_seconds",
    "Seconds since the oldest parked job that is due (delay, digest window or retry) became due, at the scheduler's "
    "last tick; 0 when none is waiting",
)


def _step_type(step_type: str) -> str:
    return step_type if step_type in STEP_TYPES else OTHER


def _provider(provider_id: str) -> str:
    return provider_id if provider_id in PROVIDERS else OTHER


def job_outcome(step_type: str, status: JobStatus) -> str:
    if status is JobStatus.DELAYED:
        return "retried" if step_type in _CHANNELS else "parked"
    return status.value


def record_job(step_type: str, status: JobStatus, seconds: float) -> None:
    JOBS.labels(_step_type(step_type), job_outcome(step_type, status)).inc()
    STEP_DURATION.labels(_step_type(step_type)).observe(seconds)


def record_delivery(channel: Channel, triggered_at: datetime, delivered_at: datetime) -> None:
    DELIVERY_LATENCY.labels(channel.value).observe(max(0.0, (delivered_at - triggered_at).total_seconds()))


def record_send(provider_id: str) -> None:
    PROVIDER_SENDS.labels(_provider(provider_id)).inc()


def record_provider_error(provider_id: str, kind: FailureKind) -> None:
    PROVIDER_ERRORS.labels(_provider(provider_id), kind.value).inc()


def record_oldest_due(now: datetime, oldest_due_at: datetime | None) -> None:
    OLDEST_DUE.set(0.0 if oldest_due_at is None else max(0.0, (now - oldest_due_at).total_seconds()))
