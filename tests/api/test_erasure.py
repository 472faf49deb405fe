"""eraseSubscriber against real api, worker and scheduler processes: everything of the subscriber goes, in every
collection (read straight from MongoDB), nothing of anyone else does, and a parked job of theirs never sends."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from beanie import PydanticObjectId
from bson import ObjectId
from pymongo.asynchronous.database import AsyncDatabase
from redis.asyncio import Redis

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY, RoleProcess, beanie_database, isolated_settings, role_env
from tidings.app.embedded import free_port
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment
from tidings.inbox.presence import presence_key

WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
SUBSCRIBER = "mutation($id: String!) { createSubscriber(input: {subscriberId: $id}) { subscriberId } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }"
TOPIC = "mutation($key: String!) { createTopic(input: {key: $key, name: $key}) { key } }"
ADD = """mutation($key: String!, $ids: [String!]!) {
    addTopicSubscribers(key: $key, input: {subscriberIds: $ids}) { added } }"""
PREFERENCE = """mutation($id: String!) {
    setSubscriberPreferences(subscriberId: $id, channels: [{channel: EMAIL, enabled: false}]) { subscriberId } }"""
ERASE = """mutation($id: String!) { eraseSubscriber(subscriberId: $id) {
    subscribers notifications jobs triggers digests throttleWindows inboxMessages inboxEvents preferences
    topicSubscriptions } }"""
RETENTION = """mutation($input: RetentionInput!) {
    setRetention(input: $input) { retention { messagesDays jobsDays executionDetailsDays } } }"""
# Every collection that holds records of a subscriber, by `subscriber_id`.
BY_SUBSCRIBER = (
    "subscribers",
    "notifications",
    "jobs",
    "digests",
    "throttle_windows",
    "inbox_messages",
    "inbox_events",
    "subscriber_preferences",
    "topic_subscriptions",
)


@dataclass
class Stack:
    alpha: GraphQL
    beta: GraphQL
    alpha_id: PydanticObjectId
    beta_id: PydanticObjectId
    db: AsyncDatabase[dict[str, Any]]
    redis: Redis
    processes: list[RoleProcess]

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self.processes)

    async def count(self, collection: str, environment_id: ObjectId, subscriber_id: str) -> int:
        return await self.db[collection].count_documents(
            {"environment_id": environment_id, "subscriber_id": subscriber_id}
        )

    async def eventually(self, check: Callable[[], Awaitable[Any]], what: str, limit: float = 60.0) -> Any:
        deadline = time.monotonic() + limit
        while not (value := await check()):
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} did not happen within {limit}s\n{self.logs()}")
            await asyncio.sleep(0.05)
        return value


STARTUP_SECONDS = 150
# Starting three Python processes with everything imported takes a minute or more while other suites share the two
# cores; the default per-test timeout counts the module fixture's start-up into the first test.
pytestmark = pytest.mark.timeout(480)


@pytest.fixture(scope="module")
async def stack(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    tmp = tmp_path_factory.mktemp("erasure")
    settings = isolated_settings(mongodb_url, redis_url, tmp).model_copy(
        # Every process reads an environment's retention afresh, so a change applies to the very next write.
        update={"scheduler_tick_seconds": 0.1, "mongodb_timeout_ms": 30_000, "retention_cache_seconds": 0}
    )
    async with beanie_database(settings) as mongo:
        alpha = await create_environment("alpha", cipher=Cipher(SECRET_KEY))
        beta = await create_environment("beta", cipher=Cipher(SECRET_KEY))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        processes = [
            RoleProcess("worker", role_env(settings), tmp / "worker.log").start(),
            RoleProcess("scheduler", role_env(settings), tmp / "scheduler.log").start(),
            RoleProcess("api", role_env(settings, TIDINGS_PORT=str(port)), tmp / "api.log").start(),
        ]
        redis = Redis.from_url(redis_url)
        try:
            for process, ready in zip(
                processes,
                ("worker consuming", "scheduler took leadership", "Application startup complete"),
                strict=True,
            ):
                await asyncio.to_thread(process.wait_for_output, ready, STARTUP_SECONDS)
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                yield Stack(
                    alpha=GraphQL(client, alpha.api_key),
                    beta=GraphQL(client, beta.api_key),
                    alpha_id=PydanticObjectId(str(alpha.environment.id)),
                    beta_id=PydanticObjectId(str(beta.environment.id)),
                    db=mongo[settings.mongodb_database],
                    redis=redis,
                    processes=processes,
                )
        finally:
            await redis.aclose()
            for process in reversed(processes):
                process.stop()


async def _trigger(gql: GraphQL, workflow_id: str, *subscriber_ids: str) -> str:
    to = [{"subscriberId": subscriber_id} for subscriber_id in subscriber_ids]
    result = await gql.data(TRIGGER, input={"workflowId": workflow_id, "to": to})
    transaction_id: str = result["trigger"]["transactionId"]
    return transaction_id


async def _workflows(gql: GraphQL) -> None:
    steps: dict[str, list[dict[str, Any]]] = {
        "hello": [{"inApp": {"body": "hello {{ subscriber.subscriberId }}"}}],
        "digested": [{"digest": {"window": {"amount": 1, "unit": "HOURS"}}}, {"inApp": {"body": "digest"}}],
        "throttled": [{"throttle": {"threshold": 5, "window": {"amount": 1, "unit": "HOURS"}}}],
        "later": [{"delay": {"amount": 3, "unit": "SECONDS"}}, {"inApp": {"body": "later"}}],
    }
    for workflow_id, workflow_steps in steps.items():
        await gql.data(WORKFLOW, input={"workflowId": workflow_id, "name": workflow_id, "steps": workflow_steps})


async def test_erasure_removes_everything_of_the_subscriber_and_nothing_else(stack: Stack) -> None:
    alpha, beta = stack.alpha, stack.beta
    await _workflows(alpha)
    await _workflows(beta)
    for subscriber_id in ("gdpr", "keeper"):
        await alpha.data(SUBSCRIBER, id=subscriber_id)
    await beta.data(SUBSCRIBER, id="gdpr")  # the same id in another environment
    await alpha.data(PREFERENCE, id="gdpr")
    await alpha.data(TOPIC, key="news")
    await alpha.data(ADD, key="news", ids=["gdpr", "keeper"])
    shared = await _trigger(alpha, "hello", "gdpr", "keeper")
    # Triggers that name them without notifying them: as the actor, and left out of the topic (Novu's `exclude`).
    acted = (
        await alpha.data(TRIGGER, input={"workflowId": "hello", "to": [{"subscriberId": "keeper"}], "actor": "gdpr"})
    )["trigger"]["transactionId"]
    excluded = await alpha.client.post(
        "/v1/events/trigger",
        json={"name": "hello", "to": {"type": "Topic", "topicKey": "news", "exclude": ["gdpr"]}},
        headers={"Authorization": f"ApiKey {alpha.api_key}"},
    )
    assert excluded.status_code == 201, excluded.text
    await _trigger(alpha, "hello", "gdpr")  # for them alone: the trigger goes too
    await _trigger(alpha, "digested", "gdpr")
    await _trigger(alpha, "throttled", "gdpr")
    await _trigger(beta, "hello", "gdpr")
    await stack.redis.zadd(presence_key(stack.alpha_id, "gdpr"), {"connection": time.time() + 60})

    async def settled() -> bool:
        messages = await stack.count("inbox_messages", stack.alpha_id, "gdpr")
        parked = await stack.db.jobs.count_documents({"step_id": "digest", "status": "delayed"})
        windows = await stack.count("throttle_windows", stack.alpha_id, "gdpr")
        beta_messages = await stack.count("inbox_messages", stack.beta_id, "gdpr")
        keeper = await stack.count("inbox_messages", stack.alpha_id, "keeper")
        return messages == 2 and parked == 1 and windows == 1 and beta_messages == 1 and keeper == 3

    await stack.eventually(settled, "the in-app messages, the open digest and the throttle window")
    # Their delayed job is parked when the erasure comes; the keeper's, triggered alongside, is the control.
    later = await _trigger(alpha, "later", "gdpr", "keeper")
    await stack.eventually(
        lambda: stack.db.jobs.count_documents({"transaction_id": later, "status": "delayed"}), "the parked delays"
    )
    assert await stack.count("digests", stack.alpha_id, "gdpr") == 1

    erased = (await alpha.data(ERASE, id="gdpr"))["eraseSubscriber"]

    assert erased["subscribers"] == 1
    assert erased["notifications"] == 5  # hello twice, digested, throttled, later
    assert erased["jobs"] >= 5
    assert erased["triggers"] == 3  # hello (alone), digested, throttled; not the two shared with the keeper
    assert erased["digests"] == erased["throttleWindows"] == erased["preferences"] == 1
    assert erased["topicSubscriptions"] == 1
    assert erased["inboxMessages"] == 2
    assert erased["inboxEvents"] >= 2
    for collection in BY_SUBSCRIBER:
        assert await stack.count(collection, stack.alpha_id, "gdpr") == 0, collection
    assert await stack.db.triggers.count_documents({"environment_id": stack.alpha_id, "to.subscriber_id": "gdpr"}) == 0
    assert not await stack.redis.exists(presence_key(stack.alpha_id, "gdpr"))

    # The keeper keeps its record, membership, message, and the shared triggers (without the erased recipient).
    for collection in ("subscribers", "topic_subscriptions", "inbox_messages", "notifications"):
        assert await stack.count(collection, stack.alpha_id, "keeper") >= 1, collection
    for transaction_id in (shared, later):
        trigger = await stack.db.triggers.find_one({"transaction_id": transaction_id})
        assert trigger is not None
        assert [one["subscriber_id"] for one in trigger["to"]] == ["keeper"]
    acted_trigger = await stack.db.triggers.find_one({"transaction_id": acted})
    assert acted_trigger is not None
    assert acted_trigger["actor"] is None
    topic_trigger = await stack.db.triggers.find_one({"transaction_id": excluded.json()["data"]["transactionId"]})
    assert topic_trigger is not None
    assert [(one["topic_key"], one["exclude"]) for one in topic_trigger["to"]] == [("news", [])]
    assert "gdpr" not in str(await stack.db.triggers.find({"environment_id": stack.alpha_id}).to_list())
    # The same subscriber id in another environment is untouched.
    for collection in ("subscribers", "inbox_messages", "notifications", "jobs"):
        assert await stack.count(collection, stack.beta_id, "gdpr") >= 1, collection

    # The keeper's delayed message arrives; the erased subscriber's, due at the same time, never does.
    async def keeper_got_it() -> bool:
        return bool(await stack.db.inbox_messages.count_documents({"transaction_id": later, "subscriber_id": "keeper"}))

    await stack.eventually(keeper_got_it, "the keeper's delayed message")
    for collection in ("inbox_messages", "jobs", "notifications"):
        assert await stack.count(collection, stack.alpha_id, "gdpr") == 0, collection

    # Erased already, an id never seen, and another environment's subscriber: NOT_FOUND, and nothing is touched.
    for gql, subscriber_id in ((alpha, "gdpr"), (alpha, "nobody"), (beta, "keeper")):
        error = await gql.error(ERASE, id=subscriber_id)
        assert (error["code"], error["field"]) == ("NOT_FOUND", "subscriberId")
    assert await stack.count("subscribers", stack.alpha_id, "keeper") == 1


async def test_an_interrupted_erasure_is_finished_by_running_it_again(stack: Stack) -> None:
    await stack.alpha.data(SUBSCRIBER, id="halfway")
    await _trigger(stack.alpha, "hello", "halfway")

    async def delivered() -> int:
        return await stack.count("inbox_messages", stack.alpha_id, "halfway")

    await stack.eventually(delivered, "the in-app message")
    # As if an erasure had died right after deleting the subscriber record.
    await stack.db.subscribers.delete_one({"environment_id": stack.alpha_id, "subscriber_id": "halfway"})

    erased = (await stack.alpha.data(ERASE, id="halfway"))["eraseSubscriber"]

    assert erased["subscribers"] == 0
    assert erased["inboxMessages"] == erased["notifications"] == erased["triggers"] == 1
    for collection in BY_SUBSCRIBER:
        assert await stack.count(collection, stack.alpha_id, "halfway") == 0, collection


async def test_a_trigger_still_fanning_out_is_kept_without_the_erased_subscriber(stack: Stack) -> None:
    """Its topic's members may not have their notifications yet: deleting it would cancel theirs."""
    await stack.alpha.data(SUBSCRIBER, id="early")
    transaction_id = await _trigger(stack.alpha, "hello", "early")

    async def delivered() -> int:
        return await stack.count("inbox_messages", stack.alpha_id, "early")

    await stack.eventually(delivered, "the in-app message")
    # As if the trigger's topic pages were still being fanned out.
    await stack.db.triggers.update_one(
        {"environment_id": stack.alpha_id, "transaction_id": transaction_id},
        {"$set": {"status": "accepted"}, "$push": {"to": {"subscriber_id": None, "topic_key": "fans"}}},
    )

    erased = (await stack.alpha.data(ERASE, id="early"))["eraseSubscriber"]

    assert erased["notifications"] == 1
    assert erased["triggers"] == 0
    kept = await stack.db.triggers.find_one({"environment_id": stack.alpha_id, "transaction_id": transaction_id})
    assert kept is not None
    assert [entry.get("topic_key") for entry in kept["to"]] == ["fans"]  # the erased subscriber is gone from it


def _near(value: datetime | None, expected: datetime) -> bool:
    return value is not None and abs(value - expected) < timedelta(seconds=5)


async def test_finished_work_is_stamped_with_its_environments_retention(stack: Stack) -> None:
    """Across api and worker: the expiry of every record a trigger leaves comes from the environment's retention."""
    changed = await stack.beta.data(RETENTION, input={"messagesDays": 3, "jobsDays": 2, "executionDetailsDays": 1})
    assert changed["setRetention"]["retention"] == {"messagesDays": 3, "jobsDays": 2, "executionDetailsDays": 1}
    try:
        for refused, field in (
            ({"jobsDays": 0}, "input.jobsDays"),
            ({"executionDetailsDays": 5}, "input.executionDetailsDays"),  # longer than the 2 days of jobs
        ):
            error = await stack.beta.error(RETENTION, input=refused)
            assert (error["code"], error["field"]) == ("VALIDATION", field)
        current = await stack.beta.data("{ currentEnvironment { retention { messagesDays jobsDays } } }")
        assert current["currentEnvironment"]["retention"] == {"messagesDays": 3, "jobsDays": 2}
        # The other environment keeps the server's defaults.
        alpha = await stack.alpha.data("{ currentEnvironment { retention { messagesDays jobsDays } } }")
        assert alpha["currentEnvironment"]["retention"] == {"messagesDays": 90, "jobsDays": 30}
        await stack.beta.data(SUBSCRIBER, id="stamped")
        transaction_id = await _trigger(stack.beta, "later", "stamped")  # a 3 s delay, then an in-app message

        async def completed() -> Any:
            return await stack.db.notifications.find_one({"transaction_id": transaction_id, "status": "completed"})

        notification = await stack.eventually(completed, "the delayed notification")
        day = timedelta(days=1)
        assert _near(notification["expires_at"], notification["updated_at"] + 2 * day)
        jobs = await stack.db.jobs.find({"transaction_id": transaction_id}).sort("step_index").to_list()
        assert [job["status"] for job in jobs] == ["completed", "completed"]
        for job in jobs:
            assert _near(job["expires_at"], job["updated_at"] + 2 * day), job
            assert _near(job["details_expire_at"], job["updated_at"] + day), job
        trigger = await stack.db.triggers.find_one({"transaction_id": transaction_id})
        assert trigger is not None
        # Pushed past the delay's wake-up when the delay parked: the trigger outlives its last job's start.
        parked_until = jobs[0]["due_at"]
        assert _near(trigger["expires_at"], parked_until + 2 * day), (trigger["expires_at"], parked_until)
        message = await stack.db.inbox_messages.find_one({"transaction_id": transaction_id})
        assert message is not None
        assert _near(message["expires_at"], message["created_at"] + 3 * day)
    finally:
        await stack.beta.data(RETENTION, input={"messagesDays": None, "jobsDays": None, "executionDetailsDays": None})
