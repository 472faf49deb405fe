"""All configuration, read from ``TIDINGS_*`` environment variables (and a ``.env`` file) by the entry points only.

Every limit Tidings enforces is a field here, so operators find them in one table (README, "Configuration").
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Literal

import pydantic
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tidings.core.limits import Limits
from tidings.environments.ratelimits import Rate, RateClass

ENV_PREFIX = "TIDINGS_"
MIN_SECRET_LENGTH = 32
# Values that may hold credentials (URLs carry user:password) never appear in error messages or logs.
_NEVER_ECHOED = frozenset({"secret_key", "mongodb_url", "redis_url"})


class SettingsError(Exception):
    """A setting is missing or invalid; the message is one line that names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_file=".env", extra="ignore", frozen=True)

    # Connections. Unset URLs mean "start embedded servers" for `tidings dev`; production roles require them.
    mongodb_url: str | None = None
    mongodb_database: str = "tidings"
    redis_url: str | None = None
    mongodb_timeout_ms: int = Field(10_000, ge=100, le=120_000)
    # A role that starts while MongoDB or Redis is unreachable retries this long before it gives up.
    startup_timeout_seconds: float = Field(60.0, ge=0, le=3600)
    redis_timeout_seconds: float = Field(5.0, gt=0, le=120)

    # HTTP server. Bodies above `http_max_body_bytes` are refused with 413 before they are parsed.
    http_max_body_bytes: int = Field(1_048_576, ge=1024, le=100_000_000)
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # On SIGTERM the api answers /readyz with 503 and keeps serving `api_shutdown_delay_seconds` (for the load
    # balancer to notice), then stops listening, closes websockets (1012) and gives open requests the grace.
    # Both together must stay below the orchestrator's kill deadline (Kubernetes: 30 s).
    api_shutdown_delay_seconds: float = Field(0.0, ge=0, le=60)
    api_shutdown_grace_seconds: int = Field(20, ge=1, le=3600)
    # One JSON object per line (production), or readable lines (`tidings dev` picks these unless this is set).
    log_format: Literal["json", "console"] = "json"

    # Encrypts integration credentials at rest. Required by the api and worker roles; `tidings dev` generates one.
    secret_key: SecretStr | None = None
    data_dir: Path = Path(".tidings")

    # GraphQL hardening.
    graphql_ide: bool = False
    graphql_introspection: bool = True
    graphql_max_depth: int = Field(12, ge=2, le=100)
    graphql_max_tokens: int = Field(2000, ge=50, le=100_000)
    graphql_max_aliases: int = Field(30, ge=1, le=1000)
    readiness_timeout_seconds: float = Field(2.0, gt=0, le=60)

    # Task queue (taskiq-redis RedisStreamBroker). The stream is trimmed at `queue_maxlen`; a delivery that no worker
    # acknowledged for `task_idle_timeout_seconds` is claimed by another worker, so it must exceed the longest task.
    queue_name: str = "tidings:tasks"
    queue_maxlen: int = Field(100_000, ge=1000)
    task_idle_timeout_seconds: float = Field(300.0, ge=1)
    task_reclaim_interval_seconds: float = Field(5.0, gt=0)
    worker_max_async_tasks: int = Field(50, ge=1, le=10_000)
    # On SIGTERM a worker stops fetching and waits this long for running tasks (below Kubernetes' default 30 s).
    worker_shutdown_grace_seconds: float = Field(25.0, ge=0, le=3600)

    # Workflow engine: retries of transient provider failures, job leases, rendering caps, outbound URLs.
    engine_max_attempts: int = Field(5, ge=1, le=50)
    engine_retry_base_seconds: float = Field(2.0, gt=0, le=3600)
    engine_retry_max_seconds: float = Field(600.0, gt=0, le=86_400)
    engine_job_lease_seconds: float = Field(120.0, ge=5, le=3600)
    render_max_bytes: int = Field(262_144, ge=1024, le=10_000_000)
    render_timeout_seconds: float = Field(2.0, gt=0, le=60)
    # Webhook and provider URLs that resolve to private, loopback or link-local addresses are refused (SSRF)
    # unless this is on: for local development and tests only.
    allow_private_network_urls: bool = False

    # Failover between a channel's integrations: an integration whose sends failed transiently at `circuit_failure_rate`
    # or more (over at least `circuit_min_calls` in the last one to two `circuit_window_seconds`) is skipped for
    # `circuit_open_seconds`, then probed with one send.
    circuit_window_seconds: float = Field(60.0, ge=1, le=3600)
    circuit_min_calls: int = Field(5, ge=1, le=10_000)
    circuit_failure_rate: float = Field(0.5, gt=0, le=1)
    circuit_open_seconds: float = Field(30.0, ge=1, le=3600)

    # Scheduler leader election: the leader renews a Redis lock that expires after `scheduler_lock_ttl_seconds`.
    scheduler_lock_ttl_seconds: float = Field(10.0, ge=1)
    scheduler_tick_seconds: float = Field(0.2, gt=0, le=10)
    scheduler_batch: int = Field(500, ge=1, le=100_000)
    # A queued job or accepted trigger untouched this long lost its wake-up (Redis restarted empty): queue it again.
    scheduler_requeue_after_seconds: float = Field(300.0, ge=1)

    # Data retention (docs/api/environments.md): the days an environment keeps records unless it chose otherwise
    # (setRetention). Each record's expiry is stamped when it is written, from the retention of that moment.
    retention_messages_days: int = Field(90, ge=1, le=3650)
    retention_jobs_days: int = Field(30, ge=1, le=3650)
    retention_execution_details_days: int = Field(7, ge=1, le=3650)
    # How long a process reuses an environment's retention it read; the scheduler's backstop sweep interval.
    retention_cache_seconds: float = Field(30.0, ge=0, le=3600)
    retention_sweep_every_seconds: float = Field(60.0, gt=0, le=86_400)

    # Domain limits (see tidings.core.limits): page sizes, bulk sizes, and caps on stored documents.
    limit_page_size_default: int = Field(Limits.page_size_default, ge=1, le=1000)
    limit_page_size_max: int = Field(Limits.page_size_max, ge=1, le=1000)
    limit_bulk_upsert_max: int = Field(Limits.bulk_upsert_max, ge=1, le=10_000)
    limit_topic_subscribers_per_call: int = Field(Limits.topic_subscribers_per_call, ge=1, le=100_000)
    limit_subscriber_data_bytes: int = Field(Limits.subscriber_data_bytes, ge=256, le=1_000_000)
    limit_template_bytes: int = Field(Limits.template_bytes, ge=1024, le=1_000_000)
    limit_payload_schema_bytes: int = Field(Limits.payload_schema_bytes, ge=1024, le=1_000_000)
    limit_workflow_steps_max: int = Field(Limits.workflow_steps_max, ge=1, le=200)
    limit_tags_max: int = Field(Limits.tags_max, ge=1, le=200)
    limit_payload_bytes: int = Field(Limits.payload_bytes, ge=1024, le=4_000_000)
    limit_trigger_recipients_max: int = Field(Limits.trigger_recipients_max, ge=1, le=10_000)
    limit_bulk_trigger_max: int = Field(Limits.bulk_trigger_max, ge=1, le=1000)
    limit_webhook_endpoints_max: int = Field(Limits.webhook_endpoints_max, ge=1, le=1000)
    limit_bulk_preferences_max: int = Field(Limits.bulk_preferences_max, ge=1, le=1000)

    # Per-environment rate limits (token buckets in Redis, docs/api.md "Rate limits"): tokens per second and bucket
    # size for triggers (one token per event), configuration mutations and inbox sessions; a rate of 0 = unlimited.
    rate_trigger_per_second: float = Field(1000.0, ge=0, le=1_000_000)
    rate_trigger_burst: int = Field(2000, ge=1, le=10_000_000)
    rate_config_per_second: float = Field(100.0, ge=0, le=1_000_000)
    rate_config_burst: int = Field(1000, ge=1, le=10_000_000)
    rate_inbox_session_per_second: float = Field(50.0, ge=0, le=1_000_000)
    rate_inbox_session_burst: int = Field(500, ge=1, le=10_000_000)
    # `Idempotency-Key` on POST /graphql mutations (and /v1/): answers are kept this long; a request still running
    # holds its key for `idempotency_lock_seconds` at most; answers above `idempotency_max_body_bytes` are not kept.
    idempotency_ttl_seconds: int = Field(86_400, ge=1, le=30 * 86_400)
    idempotency_lock_seconds: int = Field(60, ge=1, le=3600)
    idempotency_max_body_bytes: int = Field(65_536, ge=1024, le=10_000_000)

    # In-app inbox and its realtime stream (docs/inbox.md). A subscriber token lives `inbox_session_ttl_seconds`;
    # a websocket client more than `inbox_client_max_lag` events behind is closed (1013) and resumes with `after`;
    # a connection counts as online while its API process refreshes it within `inbox_presence_ttl_seconds`.
    inbox_session_ttl_seconds: int = Field(3600, ge=60, le=7 * 86_400)
    inbox_client_max_lag: int = Field(500, ge=1, le=100_000)
    inbox_replay_page: int = Field(200, ge=1, le=10_000)
    inbox_presence_ttl_seconds: float = Field(60.0, ge=2, le=3600)
    # Operations one websocket may run at once (an inbox needs one); more are refused with an error message.
    inbox_max_subscriptions_per_connection: int = Field(5, ge=1, le=1000)
    # The API's public base URL (https://notify.example.com), when a proxy stands in front: providers sign status
    # callbacks over the URL they called (docs/providers.md).
    public_url: str | None = None
    # Serve /demo/inbox (on in `tidings dev`); browsers on these origins may call the API (the widget on your site).
    demo_page: bool = False
    cors_origins: list[str] = Field(default_factory=list)

    # Liveness of worker and scheduler: they touch a heartbeat file that `tidings healthcheck ROLE` reads.
    heartbeat_dir: Path = Path("/tmp")
    heartbeat_interval_seconds: float = Field(5.0, gt=0)

    # Prometheus metrics of the worker and scheduler roles, served on these ports at `host` (0 = not served); the
    # api serves its own on /metrics of its HTTP port.
    worker_metrics_port: int = Field(9464, ge=0, le=65535)
    scheduler_metrics_port: int = Field(9465, ge=0, le=65535)

    @field_validator("mongodb_url")
    @classmethod
    def _mongodb_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("mongodb://", "mongodb+srv://")):
            raise ValueError("must start with mongodb:// or mongodb+srv://")
        return value

    @field_validator("secret_key")
    @classmethod
    def _secret_length(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < MIN_SECRET_LENGTH:
            raise ValueError(f"must be at least {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must start with redis://, rediss:// or unix://")
        return value

    def limits(self) -> Limits:
        return Limits(**{field.name: getattr(self, "limit_" + field.name) for field in dataclasses.fields(Limits)})

    def rate_limits(self) -> dict[RateClass, Rate]:
        return {
            rate_class: Rate(
                getattr(self, f"rate_{rate_class.value}_per_second"), getattr(self, f"rate_{rate_class.value}_burst")
            )
            for rate_class in RateClass
        }

    def require_mongodb_url(self) -> str:
        return _required(self.mongodb_url, "mongodb_url")

    def require_redis_url(self) -> str:
        return _required(self.redis_url, "redis_url")

    def require_secret_key(self) -> str:
        return _required(self.secret_key, "secret_key").get_secret_value()


def env_name(field: str) -> str:
    return ENV_PREFIX + field.upper()


def _required[T](value: T | None, field: str) -> T:
    if value is None:
        raise SettingsError(f"{env_name(field)} is required for this role (or run `tidings dev` for embedded servers)")
    return value


def load_settings(**overrides: object) -> Settings:
    """Read the settings; turn the first validation problem into one line naming the variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "?"
        given = first.get("input")
        shown = "" if field in _NEVER_ECHOED or isinstance(given, dict) else f" (got {given!r})"
        raise SettingsError(f"{env_name(field)}: {first['msg']}{shown}") from None
