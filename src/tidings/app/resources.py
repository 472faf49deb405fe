"""Open and close what every role needs: MongoDB (with Beanie), Redis and the task broker."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from beanie import init_beanie
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from tidings.app.settings import Settings
from tidings.diagnostics.documents import Probe
from tidings.environments.documents import Environment
from tidings.environments.retention import Retention
from tidings.environments.retention import configure as configure_retention
from tidings.inbox.documents import InboxEvent, InboxMessage
from tidings.integrations.documents import Integration
from tidings.notifications.documents import (
    Digest,
    Job,
    Notification,
    ThrottleWindow,
    Trigger,
)
from tidings.preferences.documents import SubscriberPreference
from tidings.subscribers.documents import Subscriber
from tidings.tasks.broker import BrokerConfig, ReclaimingStreamBroker, build_broker
from tidings.topics.documents import Topic, TopicSubscription
from tidings.webhooks.documents import WebhookDelivery, WebhookEndpoint
from tidings.workflows.documents import Workflow

logger = logging.getLogger(__name__)

DOCUMENT_MODELS: list[Any] = [
    Workflow,
    Environment,
    Probe,
    Subscriber,
    Topic,
    TopicSubscription,
    SubscriberPreference,
    Integration,
    Trigger,
    Notification,
    Job,
    Digest,
    ThrottleWindow,
    InboxMessage,
    InboxEvent,
    WebhookEndpoint,
    WebhookDelivery,
]


@dataclass(frozen=True, slots=True)
class Resources:
    settings: Settings
    mongo: AsyncMongoClient[dict[str, Any]]
    redis: Redis
    broker: ReclaimingStreamBroker


def broker_config(settings: Settings) -> BrokerConfig:
    return BrokerConfig(
        redis_url=settings.require_redis_url(),
        queue_name=settings.queue_name,
        maxlen=settings.queue_maxlen,
        idle_timeout_seconds=settings.task_idle_timeout_seconds,
        reclaim_interval_seconds=settings.task_reclaim_interval_seconds,
        socket_timeout_seconds=settings.redis_timeout_seconds,
    )


def open_mongo(settings: Settings) -> AsyncMongoClient[dict[str, Any]]:
    return AsyncMongoClient(
        settings.require_mongodb_url(),
        serverSelectionTimeoutMS=settings.mongodb_timeout_ms,
        connectTimeoutMS=settings.mongodb_timeout_ms,
        timeoutMS=settings.mongodb_timeout_ms,
        tz_aware=True,
        appname="tidings",
    )


def open_redis(settings: Settings) -> Redis:
    return Redis.from_url(
        settings.require_redis_url(),
        socket_timeout=settings.redis_timeout_seconds,
        socket_connect_timeout=settings.redis_timeout_seconds,
        health_check_interval=30,
    )


@asynccontextmanager
async def open_database(settings: Settings, *, wait: bool = False) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """MongoDB with Beanie initialised (indexes created) on the configured database; with `wait`, for as long as
    `startup_timeout_seconds` while MongoDB is unreachable."""
    mongo = open_mongo(settings)
    configure_retention(
        Retention(
            messages_days=settings.retention_messages_days,
            jobs_days=settings.retention_jobs_days,
            execution_details_days=settings.retention_execution_details_days,
        ),
        cache_seconds=settings.retention_cache_seconds,
    )
    try:

        async def initialise() -> None:
            await init_beanie(database=mongo[settings.mongodb_database], document_models=DOCUMENT_MODELS)

        await _until_reachable(initialise, "MongoDB", settings.startup_timeout_seconds if wait else 0.0)
        yield mongo
    finally:
        await mongo.close()


@asynccontextmanager
async def open_resources(settings: Settings, *, worker: bool = False) -> AsyncIterator[Resources]:
    """Start-up needs MongoDB (Beanie creates indexes) and Redis (the consumer group); after that an outage of
    either is survived: drivers reconnect, and `/readyz` names the part that is down meanwhile."""
    redis = open_redis(settings)
    broker = build_broker(broker_config(settings))
    broker.is_worker_process = worker
    async with open_database(settings, wait=True) as mongo:
        try:
            await _until_reachable(broker.startup, "Redis", settings.startup_timeout_seconds)
            yield Resources(settings=settings, mongo=mongo, redis=redis, broker=broker)
        finally:
            await broker.shutdown()
            await redis.aclose()


async def _until_reachable(connect: Callable[[], Awaitable[None]], what: str, limit: float) -> None:
    """Retry a start-up connection for `limit` seconds: roles restarted during an outage wait for it to end rather
    than exit (and crash-loop); past the limit the error goes to the command line as one line."""
    deadline = time.monotonic() + limit
    while True:
        try:
            await connect()
            return
        except (PyMongoError, RedisError, OSError) as exc:
            if time.monotonic() >= deadline:
                raise
            logger.warning("waiting for %s: %s", what, str(exc).splitlines()[0][:200] if str(exc) else type(exc))
            await asyncio.sleep(1.0)
