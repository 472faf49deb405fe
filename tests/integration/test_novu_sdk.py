"""The Novu-compatible REST API driven by Novu's own TypeScript SDK (`@novu/api` from npm, run with Node), each call
checked on the Tidings side: the in-app message stored, the email received, the subscriber and topic as written."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.conftest import GraphQL
from tests.integration.test_engine import CREATE_INTEGRATION, CREATE_WORKFLOW, engine_settings
from tests.node import node_cache, npm_install, run_node, script_beside
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, role_env
from tests.sinks import SmtpSink, smtp_sink
from tidings.core.channels import Channel
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment
from tidings.inbox.documents import InboxMessage
from tidings.notifications.documents import Job, JobStatus
from tidings.preferences.documents import SubscriberPreference
from tidings.subscribers.documents import Subscriber
from tidings.topics.documents import TopicSubscription

SDK = "@novu/api@3.19.1"
SCRIPT = Path(__file__).parent / "node" / "novu_calls.mjs"


@dataclass
class Stack:
    base: str
    api_key: str
    script: Path
    smtp: SmtpSink
    processes: list[RoleProcess]

    async def sdk(self, *calls: tuple[str, list[Any]]) -> list[dict[str, Any]]:
        """Run SDK calls in order (one Node process); each answer is {ok, result} or {ok: false, error}."""
        stdin = {
            "serverURL": self.base,
            "secretKey": self.api_key,
            "calls": [{"method": method, "args": args} for method, args in calls],
        }
        return await run_node(self.script, stdin=stdin)

    async def one(self, method: str, *args: Any) -> Any:
        (answer,) = await self.sdk((method, list(args)))
        assert answer["ok"], answer["error"]
        return answer["result"]

    async def failing(self, method: str, *args: Any) -> dict[str, Any]:
        (answer,) = await self.sdk((method, list(args)))
        assert not answer["ok"], answer
        error: dict[str, Any] = answer["error"]
        return error

    def logs(self) -> str:
        return "\n".join(process.output()[-3000:] for process in self.processes)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[SmtpSink, int]]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
async def stack(
    mongodb_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: tuple[SmtpSink, int],
    pytestconfig: pytest.Config,
) -> AsyncIterator[Stack]:
    modules = await asyncio.to_thread(npm_install, node_cache(pytestconfig) / "novu-api", "@novu/api", [SDK])
    script = script_beside(modules, SCRIPT)
    tmp = tmp_path_factory.mktemp("novu")
    settings = engine_settings(mongodb_url, redis_url, tmp)
    sink, port = smtp
    async with beanie_database(settings):
        issued = await create_environment("novu", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        scheduler = RoleProcess("scheduler", role_env(settings), tmp / "scheduler.log").start()
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                config = {"host": "127.0.0.1", "port": port, "security": "none", "fromEmail": "t@example.com"}
                await gql.data(CREATE_INTEGRATION, input={"providerId": "smtp", "name": "Sink", "config": config})
                # Providers for the credentials test; nothing is sent through them.
                await gql.data(CREATE_INTEGRATION, input={"providerId": "expo", "name": "Expo", "config": {}})
                hook = {"url": "http://127.0.0.1:9/hook"}
                await gql.data(CREATE_INTEGRATION, input={"providerId": "webhook", "name": "Hook", "config": hook})
                steps = [
                    {"inApp": {"subject": "New comment", "body": "{{ payload.text }}"}},
                    {"email": {"subject": "Comment: {{ payload.text }}", "body": "<p>{{ payload.text }}</p>"}},
                ]
                schema = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
                await gql.data(
                    CREATE_WORKFLOW,
                    input={"workflowId": "comment", "name": "Comment", "steps": steps, "payloadSchema": schema},
                )
                later = [{"delay": {"amount": 1, "unit": "HOURS"}}, {"inApp": {"body": "later"}}]
                await gql.data(CREATE_WORKFLOW, input={"workflowId": "later", "name": "Later", "steps": later})
            yield Stack(base, issued.api_key, script, sink, [api, worker, scheduler])
        finally:
            for process in (scheduler, worker, api):
                process.stop()


async def _eventually(check: Any, stack: Stack, what: str, limit: float = 60) -> Any:
    deadline = time.monotonic() + limit
    while not (value := await check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit}s\n{stack.logs()}")
        await asyncio.sleep(0.1)
    return value


async def _finished(stack: Stack, transaction_id: str, count: int) -> list[Job]:
    async def done() -> list[Job] | None:
        jobs = await Job.find({"transaction_id": transaction_id}).to_list()
        finished = (JobStatus.COMPLETED, JobStatus.SKIPPED, JobStatus.FAILED)
        return jobs if len(jobs) == count and all(job.status in finished for job in jobs) else None

    return sorted(await _eventually(done, stack, f"{count} steps"), key=lambda job: job.step_index)


def _id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_trigger_to_a_subscriber_stores_the_message_and_sends_the_email(stack: Stack) -> None:
    ada = _id("ada")
    created = await stack.one("subscribers.create", {"subscriberId": ada, "email": f"{ada}@example.com"})
    assert (created["subscriberId"], created["email"]) == (ada, f"{ada}@example.com")

    result = await stack.one("trigger", {"workflowId": "comment", "to": ada, "payload": {"text": "hello ada"}})
    assert (result["acknowledged"], result["status"]) == (True, "processed")

    async def stored() -> list[InboxMessage]:
        return await InboxMessage.find({"subscriber_id": ada, "transaction_id": result["transactionId"]}).to_list()

    (message,) = await _eventually(stored, stack, "the in-app message")
    assert (message.subject, message.body) == ("New comment", "hello ada")

    async def emailed() -> list[str]:
        return [str(sent["Subject"]) for sent in stack.smtp.messages if f"{ada}@example.com" in str(sent["To"])]

    assert await _eventually(emailed, stack, "the email") == ["Comment: hello ada"]


async def test_trigger_to_a_topic_created_with_the_sdk_reaches_its_subscribers_but_the_excluded(stack: Stack) -> None:
    members = [_id("member") for _ in range(3)]
    await stack.one("subscribers.createBulk", {"subscribers": [{"subscriberId": one} for one in members]})
    topic_key = _id("topic")
    topic = await stack.one("topics.create", {"key": topic_key, "name": "Release notes"})
    assert (topic["key"], topic["name"]) == (topic_key, "Release notes")
    added = await stack.one("topics.subscriptions.create", {"subscriptions": [*members, "nobody-here"]}, topic_key)
    assert sorted(item["subscriber"]["subscriberId"] for item in added["data"]) == sorted(members)
    assert added["meta"] == {"totalCount": 4, "successful": 3, "failed": 1}
    assert added["errors"][0]["subscriberId"] == "nobody-here"
    stored = await TopicSubscription.find({"topic_key": topic_key}).to_list()
    assert sorted(one.subscriber_id for one in stored) == sorted(members)

    to = {"type": "Topic", "topicKey": topic_key, "exclude": [members[0]]}
    result = await stack.one("trigger", {"workflowId": "comment", "to": to, "payload": {"text": "release"}})

    async def reached() -> list[str] | None:
        rows = await InboxMessage.find({"transaction_id": result["transactionId"]}).to_list()
        return sorted(row.subscriber_id for row in rows) if len(rows) >= 2 else None

    assert await _eventually(reached, stack, "the topic's messages") == sorted(members[1:])
    await asyncio.sleep(1.0)  # time for a wrong message to the excluded member to show up
    assert await InboxMessage.find({"transaction_id": result["transactionId"]}).count() == 2


async def test_bulk_trigger_answers_each_event_and_stores_the_accepted_ones(stack: Stack) -> None:
    grace = _id("grace")
    await stack.one("subscribers.create", {"subscriberId": grace})
    events = [
        {"workflowId": "comment", "to": grace, "payload": {"text": "first"}},
        {"workflowId": "no-such-workflow", "to": grace, "payload": {}},
        {"workflowId": "comment", "to": {"subscriberId": grace, "firstName": "Grace"}, "payload": {"text": "third"}},
    ]
    results = await stack.one("triggerBulk", {"events": events})
    assert [item["status"] for item in results] == ["processed", "error", "processed"]
    assert "no-such-workflow" in results[1]["error"][0]

    async def stored() -> list[str] | None:
        rows = await InboxMessage.find({"subscriber_id": grace}).to_list()
        return sorted(row.body for row in rows) if len(rows) >= 2 else None

    assert await _eventually(stored, stack, "the accepted events' messages") == ["first", "third"]
    subscriber = await Subscriber.find_one({"subscriber_id": grace})
    assert subscriber is not None
    assert subscriber.first_name == "Grace"  # the inline subscriber of the third event was upserted


async def test_cancel_stops_a_delayed_trigger_and_answers_false_when_nothing_matches(stack: Stack) -> None:
    linus = _id("linus")
    await stack.one("subscribers.create", {"subscriberId": linus})
    transaction_id = _id("tx")
    await stack.one("trigger", {"workflowId": "later", "to": linus, "transactionId": transaction_id})

    async def parked() -> bool:
        return await Job.find_one({"transaction_id": transaction_id, "status": JobStatus.DELAYED}) is not None

    await _eventually(parked, stack, "the delay step parking")
    answers = await stack.sdk(("cancel", [transaction_id]), ("cancel", ["never-triggered"]))
    assert [answer["result"] for answer in answers] == [True, False]
    jobs = await Job.find({"transaction_id": transaction_id}).to_list()
    assert [job.status for job in jobs] == [JobStatus.CANCELED]


async def test_broadcast_reaches_every_subscriber(stack: Stack) -> None:
    result = await stack.one("triggerBroadcast", {"name": "comment", "payload": {"text": "to everyone"}})
    everyone = {row.subscriber_id for row in await Subscriber.find_all().to_list()}

    async def reached() -> set[str] | None:
        rows = await InboxMessage.find({"transaction_id": result["transactionId"]}).to_list()
        found = {row.subscriber_id for row in rows}
        return found if found >= everyone else None

    assert await _eventually(reached, stack, "the broadcast's messages") == everyone


async def test_subscriber_crud(stack: Stack) -> None:
    mary = _id("mary")
    created = await stack.one("subscribers.create", {"subscriberId": mary, "firstName": "Mary", "locale": "en"})
    assert created["firstName"] == "Mary"
    assert created["id"]

    patched = await stack.one("subscribers.patch", {"lastName": "Shelley", "locale": None}, mary)
    assert (patched["firstName"], patched["lastName"], patched["locale"]) == ("Mary", "Shelley", None)
    stored = await Subscriber.find_one({"subscriber_id": mary})
    assert stored is not None
    assert (stored.last_name, stored.locale) == ("Shelley", None)

    retrieved = await stack.one("subscribers.retrieve", mary)
    assert retrieved["lastName"] == "Shelley"
    found = await stack.one("subscribers.search", {"subscriberId": mary, "limit": 5})
    assert [one["subscriberId"] for one in found["data"]] == [mary]
    assert (found["totalCount"], found["next"]) == (1, None)

    upserted = await stack.one("subscribers.create", {"subscriberId": mary, "email": f"{mary}@example.com"})
    assert (upserted["firstName"], upserted["email"]) == ("Mary", f"{mary}@example.com")
    conflict = await stack.failing("subscribers.create", {"subscriberId": mary}, True)
    assert conflict["statusCode"] == 409

    deleted = await stack.one("subscribers.delete", mary)
    assert deleted == {"acknowledged": True, "status": "deleted"}
    assert await Subscriber.find_one({"subscriber_id": mary}) is None
    missing = await stack.failing("subscribers.retrieve", mary)
    assert (missing["name"], missing["statusCode"]) == ("ErrorDto", 404)


async def test_errors_come_back_as_the_sdk_typed_errors(stack: Stack) -> None:
    bob = _id("bob")
    await stack.one("subscribers.create", {"subscriberId": bob})
    answers = await stack.sdk(
        ("trigger", [{"workflowId": "no-such-workflow", "to": bob}]),
        ("trigger", [{"workflowId": "comment", "to": bob, "payload": {"text": 7}}]),
        ("subscribers.create", [{"subscriberId": _id("eve"), "email": "not-an-email"}]),
    )
    unknown, invalid_payload, invalid_email = (answer["error"] for answer in answers)
    assert (unknown["name"], unknown["statusCode"]) == ("ValidationErrorDto", 422)
    assert "no-such-workflow" in unknown["message"]
    assert (invalid_payload["name"], invalid_payload["statusCode"]) == ("PayloadValidationExceptionDto", 400)
    assert '"field":"payload.text"' in invalid_payload["body"]
    assert (invalid_email["name"], invalid_email["statusCode"]) == ("ValidationErrorDto", 422)
    assert '"email"' in invalid_email["body"]
    assert await InboxMessage.find({"subscriber_id": bob}).count() == 0

    wrong_key = Stack(stack.base, "not-a-key", stack.script, stack.smtp, stack.processes)
    refused = await wrong_key.failing("subscribers.retrieve", bob)
    assert (refused["name"], refused["statusCode"]) == ("ErrorDto", 401)


async def test_a_preference_set_with_the_sdk_stops_that_channel(stack: Stack) -> None:
    joan = _id("joan")
    await stack.one("subscribers.create", {"subscriberId": joan, "email": f"{joan}@example.com"})
    updated = await stack.one(
        "subscribers.preferences.update", {"workflowId": "comment", "channels": {"email": False}}, joan
    )
    (comment,) = [one for one in updated["workflows"] if one["workflow"]["identifier"] == "comment"]
    assert (comment["channels"]["email"], comment["channels"]["inApp"]) == (False, True)
    assert comment["overrides"] == [{"channel": "email", "source": "subscriber"}]
    await stack.one("subscribers.preferences.update", {"channels": {"inApp": True}}, joan)
    listed = await stack.one("subscribers.preferences.list", {"subscriberId": joan})
    assert listed["global"]["channels"]["inApp"] is True

    result = await stack.one("trigger", {"workflowId": "comment", "to": joan, "payload": {"text": "quiet"}})
    jobs = await _finished(stack, result["transactionId"], 2)
    assert [job.status for job in jobs] == [JobStatus.COMPLETED, JobStatus.SKIPPED]
    assert await InboxMessage.find({"subscriber_id": joan}).count() == 1
    assert not [sent for sent in stack.smtp.messages if f"{joan}@example.com" in str(sent["To"])]


async def test_credentials_are_set_added_to_and_removed_per_provider(stack: Stack) -> None:
    lin = _id("lin")
    await stack.one("subscribers.create", {"subscriberId": lin})
    hook = {"providerId": "chat-webhook", "credentials": {"webhookUrl": "https://chat.example.com/lin"}}
    with_chat = await stack.one("subscribers.credentials.update", hook, lin)
    (chat,) = with_chat["channels"]
    assert (chat["providerId"], chat["credentials"]) == ("chat-webhook", {"webhookUrl": "https://chat.example.com/lin"})
    assert chat["integrationId"]

    tokens = {"providerId": "expo", "credentials": {"deviceTokens": ["ExponentPushToken[a]"]}}
    await stack.one("subscribers.credentials.update", tokens, lin)
    more = {"providerId": "expo", "credentials": {"deviceTokens": ["ExponentPushToken[b]", "ExponentPushToken[a]"]}}
    appended = await stack.one("subscribers.credentials.append", more, lin)
    (push,) = [one for one in appended["channels"] if one["providerId"] == "expo"]
    assert push["credentials"]["deviceTokens"] == ["ExponentPushToken[a]", "ExponentPushToken[b]"]
    stored = await Subscriber.find_one({"subscriber_id": lin})
    assert stored is not None
    assert [one.device_tokens for one in stored.push] == [["ExponentPushToken[a]", "ExponentPushToken[b]"]]
    assert [one.webhook_url for one in stored.chat] == ["https://chat.example.com/lin"]
    retrieved = await stack.one("subscribers.retrieve", lin)
    assert sorted(one["providerId"] for one in retrieved["channels"]) == ["chat-webhook", "expo"]

    (removed,) = await stack.sdk(("subscribers.credentials.delete", [lin, "expo"]))
    assert removed["ok"], removed
    stored = await Subscriber.find_one({"subscriber_id": lin})
    assert stored is not None
    assert (stored.push, len(stored.chat)) == ([], 1)

    no_integration = await stack.failing(
        "subscribers.credentials.update",
        {"providerId": "slack", "credentials": {"webhookUrl": "https://x.example"}},
        lin,
    )
    assert (no_integration["name"], no_integration["statusCode"]) == ("ErrorDto", 400)


async def test_bulk_preferences_and_a_workflow_turned_off_as_a_whole(stack: Stack) -> None:
    kim = _id("kim")
    await stack.one("subscribers.create", {"subscriberId": kim, "email": f"{kim}@example.com"})
    both = {
        "preferences": [
            {"workflowId": "comment", "channels": {"email": False}},
            {"workflowId": "later", "channels": {"inApp": False}},
        ]
    }
    answered = await stack.one("subscribers.preferences.bulkUpdate", both, kim)
    assert [
        (one["level"], one["workflow"]["identifier"], one["channels"]["email"], one["channels"]["inApp"])
        for one in answered
    ] == [("template", "comment", False, True), ("template", "later", True, False)]

    unknown = {
        "preferences": [
            {"workflowId": "comment", "channels": {"sms": False}},
            {"workflowId": "no-such-workflow", "channels": {"email": True}},
        ]
    }
    refused = await stack.failing("subscribers.preferences.bulkUpdate", unknown, kim)
    assert (refused["name"], refused["statusCode"]) == ("ErrorDto", 404)
    row = await SubscriberPreference.find_one({"subscriber_id": kim, "workflow_id": "comment"})
    assert row is not None
    assert row.channels == {Channel.EMAIL: False}  # the refused call recorded nothing

    # Novu's v1 `enabled: false` (plain HTTP: SDK 3.x has no v1 preference calls) turns every step of it off.
    headers = {"Authorization": f"ApiKey {stack.api_key}"}
    async with httpx.AsyncClient(base_url=stack.base, headers=headers, timeout=30) as client:
        off = await client.patch(f"/v1/subscribers/{kim}/preferences/comment", json={"enabled": False})
    assert off.status_code == 200, off.text
    assert off.json()["data"]["preference"]["enabled"] is False
    result = await stack.one("trigger", {"workflowId": "comment", "to": kim, "payload": {"text": "muted"}})
    jobs = await _finished(stack, result["transactionId"], 2)
    assert [job.status for job in jobs] == [JobStatus.SKIPPED, JobStatus.SKIPPED]
    assert await InboxMessage.find({"subscriber_id": kim}).count() == 0


async def test_the_online_flag_set_with_the_sdk(stack: Stack) -> None:
    sam = _id("sam")
    await stack.one("subscribers.create", {"subscriberId": sam})
    online = await stack.one("subscribers.properties.updateOnlineFlag", {"isOnline": True}, sam)
    assert online["isOnline"] is True
    assert (await stack.one("subscribers.retrieve", sam))["isOnline"] is True
    offline = await stack.one("subscribers.properties.updateOnlineFlag", {"isOnline": False}, sam)
    assert offline["isOnline"] is False
    stored = await Subscriber.find_one({"subscriber_id": sam})
    assert stored is not None
    assert (stored.is_online, stored.last_online_at is not None) == (False, True)
    missing = await stack.failing("subscribers.properties.updateOnlineFlag", {"isOnline": True}, _id("nobody"))
    assert (missing["name"], missing["statusCode"]) == ("ErrorDto", 404)


async def test_a_trigger_subscriber_brings_its_channels(stack: Stack) -> None:
    max_ = _id("max")
    await stack.one("subscribers.create", {"subscriberId": max_})
    hook = {"providerId": "chat-webhook", "credentials": {"webhookUrl": "https://chat.example.com/max"}}
    await stack.one("subscribers.credentials.update", hook, max_)
    tokens = {"providerId": "expo", "credentials": {"deviceTokens": ["ExponentPushToken[m]"]}}
    to = {"subscriberId": max_, "firstName": "Max", "channels": [tokens]}
    result = await stack.one("trigger", {"workflowId": "comment", "to": to, "payload": {"text": "hi"}})
    assert result["status"] == "processed"
    stored = await Subscriber.find_one({"subscriber_id": max_})
    assert stored is not None
    assert stored.first_name == "Max"
    assert [one.device_tokens for one in stored.push] == [["ExponentPushToken[m]"]]
    assert [one.webhook_url for one in stored.chat] == ["https://chat.example.com/max"]  # other providers stay

    slack = {"providerId": "slack", "credentials": {"webhookUrl": "https://hooks.example.com/x"}}
    newcomer = _id("new")
    refused = await stack.failing(
        "trigger", {"workflowId": "comment", "to": [{"subscriberId": newcomer, "channels": [slack]}], "payload": {}}
    )
    assert (refused["name"], refused["statusCode"]) == ("ValidationErrorDto", 422)
    assert "to.0.channels.0.providerId" in refused["body"]
    assert await Subscriber.find_one({"subscriber_id": newcomer}) is None


async def test_a_subscribers_topics_and_one_subscription(stack: Stack) -> None:
    eve = _id("eve")
    await stack.one("subscribers.create", {"subscriberId": eve})
    keys = [_id("first"), _id("second")]
    for key in keys:
        await stack.one("topics.subscriptions.create", {"subscriberIds": [eve]}, key)
    listed = await stack.one("subscribers.topics.list", {"subscriberId": eve})
    assert [one["topic"]["key"] for one in listed["data"]] == keys
    assert (listed["totalCount"], listed["next"]) == (2, None)
    assert {one["subscriber"]["subscriberId"] for one in listed["data"]} == {eve}
    one_key = await stack.one("subscribers.topics.list", {"subscriberId": eve, "key": keys[1]})
    assert [one["topic"]["key"] for one in one_key["data"]] == [keys[1]]

    identifier = listed["data"][0]["identifier"]
    detail = await stack.one("topics.subscriptions.getSubscription", keys[0], identifier)
    membership = await TopicSubscription.find_one({"topic_key": keys[0], "subscriber_id": eve})
    assert membership is not None
    assert (detail["id"], detail["identifier"]) == (str(membership.id), identifier)
    other_topic = await stack.failing("topics.subscriptions.getSubscription", keys[1], identifier)
    assert (other_topic["name"], other_topic["statusCode"]) == ("ErrorDto", 404)
    nobody = await stack.failing("subscribers.topics.list", {"subscriberId": _id("nobody")})
    assert (nobody["name"], nobody["statusCode"]) == ("ErrorDto", 404)
