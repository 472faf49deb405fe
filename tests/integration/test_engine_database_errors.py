"""A MongoDB that fails in the middle of a channel step (a dropped connection, an operation out of time) parks the
step for a retry with backoff, as a provider's 503 does, and fails it only once its attempts are used up; a digest
that loses it is left to its lease, so it never wakes before its window ends.

The failures are real: a SecantusDB of this module's own, started with test commands, fails one command through
mongod's `failCommand` failpoint. The engine runs in this process on that server, so the failing command is the
step's own (the in-app message's insert, the digest's upsert): nothing else sends one while the step runs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from beanie import PydanticObjectId
from pymongo import AsyncMongoClient
from pymongo.errors import AutoReconnect
from redis.asyncio import Redis

from tests.queues import RecordingQueue
from tests.servers import SECRET_KEY, beanie_database, isolated_settings
from tidings.app.embedded import secantus
from tidings.app.engine import circuit_policy, engine_policy, sweep_policy
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.engine.policy import EngineDeps
from tidings.engine.runner import run_job
from tidings.engine.scheduling import recover_lost_work, wake_due_jobs
from tidings.inbox.documents import InboxMessage
from tidings.notifications.documents import (
    Digest,
    DigestStatus,
    Job,
    JobStatus,
    Notification,
    Recipient,
    Trigger,
    WorkflowSnapshot,
)
from tidings.subscribers.documents import Subscriber
from tidings.tasks.circuit import RedisCircuitBreaker
from tidings.tasks.providers.registry import ProviderSender
from tidings.tasks.publisher import RedisPublisher

# mongod's failCommand: drop the connection without a reply, or answer MaxTimeMSExpired (code 50).
FAILURES = {
    "connection dropped": ({"closeConnection": True}, "AutoReconnect"),
    "operation out of time": ({"errorCode": 50}, "ExecutionTimeout"),
}


@pytest.fixture(scope="module")
def failing_mongodb_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = secantus(data_dir=None, log_path=tmp_path_factory.mktemp("secantus") / "log", test_commands=True)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


IN_APP = {"step_id": "inbox", "type": "in_app", "body": "hello"}
DIGEST = {"step_id": "batch", "type": "digest", "window": {"amount": 10, "unit": "minutes"}}


@dataclass
class Stack:
    client: AsyncMongoClient[dict[str, Any]]
    settings: Settings
    deps: EngineDeps
    environment: PydanticObjectId
    job_id: PydanticObjectId | None = None

    async def queue_step(self, step: dict[str, Any]) -> None:
        """A one-step workflow triggered for one subscriber, its first job queued."""
        snapshot = WorkflowSnapshot(workflow_id="news", name="News", critical=False, read_only=False, steps=[step])
        to = [Recipient(subscriber_id="ada")]
        trigger = await Trigger(environment_id=self.environment, transaction_id="tx", workflow=snapshot, to=to).insert()
        assert trigger.id is not None
        ids = {"environment_id": self.environment, "trigger_id": trigger.id, "transaction_id": "tx"}
        notification = await Notification(**ids, workflow_id="news", subscriber_id="ada").insert()
        assert notification.id is not None
        job = await Job(
            **ids,
            workflow_id="news",
            notification_id=notification.id,
            subscriber_id="ada",
            step_index=0,
            step_id=step["step_id"],
            step_type=step["type"],
        ).insert()
        self.job_id = job.id

    async def fail(self, command: str, failure: dict[str, Any], times: int) -> None:
        data = {"failCommands": [command], **failure}
        await self.client.admin.command({"configureFailPoint": "failCommand", "mode": {"times": times}, "data": data})

    async def run(self) -> Job:
        assert self.job_id is not None
        await run_job(str(self.job_id), self.deps)
        return await self.job()

    async def job(self) -> Job:
        job = await Job.get(self.job_id)
        assert job is not None
        return job


@pytest.fixture
async def stack(failing_mongodb_url: str, redis_url: str, tmp_path: Path) -> AsyncIterator[Stack]:
    """The engine's real dependencies on the failing server, and one subscriber; two attempts allowed."""
    settings = isolated_settings(failing_mongodb_url, redis_url, tmp_path).model_copy(update={"engine_max_attempts": 2})
    redis = Redis.from_url(redis_url)
    async with beanie_database(settings) as client:
        environment = PydanticObjectId()
        await Subscriber(environment_id=environment, subscriber_id="ada").insert()
        deps = EngineDeps(
            queue=RecordingQueue(),
            sender=ProviderSender(Cipher(SECRET_KEY), allow_private_networks=False),
            publisher=RedisPublisher(redis),
            policy=engine_policy(settings),
            breaker=RedisCircuitBreaker(redis, circuit_policy(settings)),
        )
        try:
            yield Stack(client, settings, deps, environment)
        finally:
            await client.admin.command({"configureFailPoint": "failCommand", "mode": "off"})
            await redis.aclose()


async def _wake_due(stack: Stack, job: Job) -> None:
    """What the scheduler does when a retry falls due."""
    assert job.due_at is not None
    woken = await wake_due_jobs(stack.deps.queue, sweep_policy(stack.settings), now=job.due_at + timedelta(seconds=1))
    assert woken == 1


@pytest.mark.parametrize("failure", FAILURES.values(), ids=FAILURES.keys())
async def test_a_database_failure_mid_step_is_retried_and_the_message_is_stored_once(
    stack: Stack, failure: tuple[dict[str, Any], str]
) -> None:
    command, error = failure
    await stack.queue_step(IN_APP)
    await stack.fail("insert", command, times=1)

    parked = await stack.run()
    assert parked.status == JobStatus.DELAYED
    assert parked.reason is not None
    assert parked.reason.startswith("transient failure, attempt 2 of 2")
    assert parked.reason.endswith(f"database unavailable: {error}")
    assert await InboxMessage.find({"notification_id": parked.notification_id}).count() == 0

    await _wake_due(stack, parked)
    done = await stack.run()
    assert done.status == JobStatus.COMPLETED
    assert [run.status for run in done.executions] == [JobStatus.DELAYED, JobStatus.COMPLETED]
    messages = await InboxMessage.find({"notification_id": done.notification_id}).to_list()
    assert [message.body for message in messages] == ["hello"]
    assert done.output == {"messageId": str(messages[0].id)}


async def test_a_database_failing_on_every_attempt_fails_the_step_after_the_last(stack: Stack) -> None:
    await stack.queue_step(IN_APP)
    await stack.fail("insert", {"closeConnection": True}, times=2)

    parked = await stack.run()
    assert parked.status == JobStatus.DELAYED
    await _wake_due(stack, parked)
    given_up = await stack.run()
    assert given_up.status == JobStatus.FAILED
    assert given_up.reason == "gave up after retries: database unavailable: AutoReconnect"
    assert await InboxMessage.find({"notification_id": given_up.notification_id}).count() == 0
    notification = await Notification.get(given_up.notification_id)
    assert notification is not None
    assert notification.status == "failed"


async def test_a_digest_that_loses_the_database_is_rerun_after_its_lease_and_keeps_its_window(stack: Stack) -> None:
    """Parked for a retry, a digest would wake as if its window had closed; it is left to its lease instead."""
    await stack.queue_step(DIGEST)
    await stack.fail("findAndModify", {"closeConnection": True}, times=1)

    with pytest.raises(AutoReconnect):
        await stack.run()
    running = await stack.job()
    assert running.status == JobStatus.RUNNING
    assert running.lease_until is not None

    policy = sweep_policy(stack.settings)
    assert await recover_lost_work(stack.deps.queue, policy, now=running.lease_until + timedelta(seconds=1)) == 1
    parked = await stack.run()
    assert (parked.status, parked.reason) == (JobStatus.DELAYED, "digesting")
    assert parked.due_at is not None
    assert parked.due_at - parked.updated_at > timedelta(minutes=9)  # the digest's own window, not a backoff
    digests = await Digest.find({"leader_job_id": parked.id}).to_list()
    assert [(digest.status, digest.event_count) for digest in digests] == [(DigestStatus.OPEN, 1)]
