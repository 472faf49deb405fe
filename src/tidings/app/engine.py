"""Wire the workflow engine: policy from settings, and the queue, providers and publisher it runs with."""

from __future__ import annotations

from tidings.app.resources import Resources
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.engine.policy import EngineDeps, EnginePolicy
from tidings.engine.scheduling import SweepPolicy
from tidings.tasks.circuit import CircuitPolicy, RedisCircuitBreaker
from tidings.tasks.providers.registry import ProviderSender
from tidings.tasks.publisher import RedisPublisher
from tidings.tasks.queue import BrokerTaskQueue


def engine_policy(settings: Settings) -> EnginePolicy:
    return EnginePolicy(
        max_attempts=settings.engine_max_attempts,
        retry_base_seconds=settings.engine_retry_base_seconds,
        retry_max_seconds=settings.engine_retry_max_seconds,
        lease_seconds=settings.engine_job_lease_seconds,
        render_max_bytes=settings.render_max_bytes,
        render_timeout_seconds=settings.render_timeout_seconds,
    )


def circuit_policy(settings: Settings) -> CircuitPolicy:
    return CircuitPolicy(
        window_seconds=settings.circuit_window_seconds,
        min_calls=settings.circuit_min_calls,
        failure_rate=settings.circuit_failure_rate,
        open_seconds=settings.circuit_open_seconds,
    )


def sweep_policy(settings: Settings) -> SweepPolicy:
    return SweepPolicy(
        batch=settings.scheduler_batch,
        requeue_after_seconds=settings.scheduler_requeue_after_seconds,
        retention_every_seconds=settings.retention_sweep_every_seconds,
    )


def engine_deps(settings: Settings, resources: Resources) -> tuple[EngineDeps, ProviderSender]:
    """The engine's dependencies, and the sender to close when the worker stops."""
    sender = ProviderSender(
        Cipher(settings.require_secret_key()), allow_private_networks=settings.allow_private_network_urls
    )
    deps = EngineDeps(
        queue=BrokerTaskQueue(resources.broker),
        sender=sender,
        publisher=RedisPublisher(resources.redis),
        policy=engine_policy(settings),
        breaker=RedisCircuitBreaker(resources.redis, circuit_policy(settings)),
    )
    return deps, sender
