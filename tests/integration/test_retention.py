"""Retention on the real database server: TTL indexes on `expires_at`, expiries stamped from the environment's
retention when records are written, and the scheduler's backstop sweep deleting what expired while keeping fresh and
open records.

SecantusDB honours TTL indexes like MongoDB (its monitor deletes an expired record within about a minute), so the
sweep tests stamp records an hour ahead and sweep "two hours from now": the monitor leaves them alone, and what is
deleted was deleted by the sweep.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from beanie import PydanticObjectId
from bson import ObjectId
from pymongo import AsyncMongoClient
from redis.asyncio import Redis

from tests.servers import SECRET_KEY
from tidings.app.settings import Settings
from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher
from tidings.core.errors import ValidationError
from tidings.engine.retention import sweep_expired
from tidings.environments.retention import retention_for, set_retention
from tidings.environments.service import create_environment
from tidings.inbox.documents import InboxEvent, InboxMessage
from tidings.inbox.service import NewMessage, deliver_in_app
from tidings.tasks.publisher import RedisPublisher

EXPIRING = ("inbox_messages", "inbox_events", "triggers", "notifications", "jobs", "webhook_deliveries", "digests")
DAY = timedelta(days=1)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


def _near(value: datetime | None, expected: datetime) -> bool:
    return value is not None and abs(value - expected) < timedelta(minutes=1)


async def test_every_expiring_collection_has_a_ttl_index_on_expires_at(
    database: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    db = database[settings.mongodb_database]
    for collection in EXPIRING:
        indexes = [index async for index in await db[collection].list_indexes()]
        ttl = [index for index in indexes if dict(index["key"]) == {"expires_at": 1}]
        assert ttl, (collection, indexes)
        assert ttl[0]["expireAfterSeconds"] == 0, ttl


async def test_retention_is_validated_with_field_paths(database: AsyncMongoClient[dict[str, Any]]) -> None:
    environment = (await create_environment("limits", cipher=Cipher(SECRET_KEY))).environment
    for changes, field in (
        ({"messages_days": 0}, "input.messagesDays"),
        ({"jobs_days": 3651}, "input.jobsDays"),
        ({"execution_details_days": 60}, "input.executionDetailsDays"),  # longer than the 30 days of jobs
    ):
        with pytest.raises(ValidationError) as refused:
            await set_retention(environment, changes)
        assert refused.value.field == field
    await set_retention(environment, {"jobs_days": 10, "execution_details_days": 10})
    assert environment.id is not None
    chosen = await retention_for(environment.id)
    assert (chosen.messages_days, chosen.jobs_days, chosen.execution_details_days) == (90, 10, 10)
    await set_retention(environment, {"jobs_days": None, "execution_details_days": None})  # back to the defaults
    assert (await retention_for(environment.id)).jobs_days == 30


async def test_messages_and_events_expire_after_the_environments_messages_retention(
    database: AsyncMongoClient[dict[str, Any]], redis: Redis
) -> None:
    environment = (await create_environment("short", cipher=Cipher(SECRET_KEY))).environment
    assert environment.id is not None
    await set_retention(environment, {"messages_days": 3})
    for n in range(3):
        new = NewMessage(
            environment_id=environment.id,
            subscriber_id="ada",
            notification_id=PydanticObjectId(),
            transaction_id=f"t{n}",
            workflow_id="w",
            step_id="in-app",
            body=f"message {n}",
        )
        await deliver_in_app(new, RedisPublisher(redis))
    now = utcnow()
    messages = await InboxMessage.find({"environment_id": environment.id}).to_list()
    assert len(messages) == 3
    assert all(_near(message.expires_at, now + 3 * DAY) for message in messages), messages
    events = await InboxEvent.find({"environment_id": environment.id}).sort("seq").to_list()
    assert [event.seq for event in events] == [1, 2, 3]
    # The newest event never expires, so were all the older ones deleted the next seq would still be 4.
    assert [_near(event.expires_at, now + 3 * DAY) for event in events] == [True, True, False]
    assert events[-1].expires_at is None


async def _seed(db: Any, collection: str, expires_at: datetime | None, **fields: Any) -> ObjectId:
    # Fresh values for every unique index of these collections (each record is in an environment of its own).
    unique = {"notification_id": ObjectId(), "message_id": ObjectId(), "step_index": 0, "transaction_id": "t", "seq": 1}
    document = {"_id": ObjectId(), "environment_id": ObjectId(), "expires_at": expires_at, **unique, **fields}
    await db[collection].insert_one(document)
    return ObjectId(document["_id"])


async def test_the_sweep_deletes_what_expired_and_keeps_fresh_and_open_records(
    database: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    db = database[settings.mongodb_database]
    now = utcnow()
    soon, later, sweep_at = now + timedelta(hours=1), now + 2 * DAY, now + timedelta(hours=2)
    expired, kept = {}, {}
    for collection in EXPIRING:
        status = {"status": "completed"} if collection == "jobs" else {}
        expired[collection] = await _seed(db, collection, soon, **status)
        kept[collection] = [
            await _seed(db, collection, later, **status),
            await _seed(db, collection, None, **status),  # never stamped (an open notification, the newest event)
        ]
    # Jobs still under way are never deleted, whatever their record says.
    open_jobs = [await _seed(db, "jobs", soon, status=status) for status in ("delayed", "queued", "running")]
    details_due = await _seed(db, "jobs", later, status="completed", details_expire_at=soon, executions=[{"n": 1}])
    details_kept = await _seed(db, "jobs", later, status="completed", details_expire_at=later, executions=[{"n": 1}])

    swept = await sweep_expired(batch=100, now=sweep_at)

    assert swept.deleted == dict.fromkeys(EXPIRING, 1)
    assert swept.details_trimmed == 1
    assert not swept.backlog
    for collection in EXPIRING:
        assert await db[collection].find_one({"_id": expired[collection]}) is None, collection
        for record in kept[collection]:
            assert await db[collection].find_one({"_id": record}) is not None, collection
    for job in open_jobs:
        assert await db.jobs.find_one({"_id": job}) is not None
    trimmed = await db.jobs.find_one({"_id": details_due})
    assert trimmed is not None
    assert trimmed["executions"] == []
    assert "details_expire_at" not in trimmed
    untouched = await db.jobs.find_one({"_id": details_kept})
    assert untouched is not None
    assert untouched["executions"] == [{"n": 1}]


async def test_a_full_batch_reports_a_backlog_and_the_next_run_takes_the_rest(
    database: AsyncMongoClient[dict[str, Any]], settings: Settings
) -> None:
    db = database[settings.mongodb_database]
    soon = utcnow() + timedelta(hours=1)
    for _ in range(5):
        await _seed(db, "inbox_messages", soon)
    first = await sweep_expired(batch=3, now=soon)
    assert first.backlog
    assert first.deleted["inbox_messages"] == 3
    second = await sweep_expired(batch=3, now=soon)
    assert second.deleted["inbox_messages"] == 2
    assert not second.backlog
    assert await db.inbox_messages.count_documents({}) == 0
