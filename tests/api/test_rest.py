"""The Novu-compatible REST API over plain HTTP: the v1 paths older clients call, Novu's error bodies, the OpenAPI
document, paging, and the isolation of environments. (Novu's own SDK drives the v2 paths in
tests/integration/test_novu_sdk.py.)"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.conftest import GraphQL
from tidings.core.channels import Channel
from tidings.environments.service import IssuedEnvironment
from tidings.inbox.presence import connected, disconnected
from tidings.notifications.documents import Trigger
from tidings.preferences.documents import SubscriberPreference
from tidings.subscribers.commands import MAX_ENDPOINTS
from tidings.subscribers.documents import Subscriber
from tidings.topics.documents import TopicSubscription

CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
UPSERT_SUBSCRIBER = "mutation($input: SubscriberInput!) { upsertSubscriber(input: $input) { created } }"
CHANNELS = [channel.value for channel in Channel]


class Rest:
    def __init__(self, client: httpx.AsyncClient, api_key: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"ApiKey {api_key}"} if api_key else {}

    async def __call__(self, method: str, path: str, body: Any = None, **params: Any) -> httpx.Response:
        return await self.client.request(method, path, json=body, params=params or None, headers=self.headers)

    async def data(self, method: str, path: str, body: Any = None, *, status: int = 200, **params: Any) -> Any:
        response = await self(method, path, body, **params)
        assert response.status_code == status, response.text
        return response.json()["data"] if "data" in response.json() and len(response.json()) == 1 else response.json()

    async def error(self, method: str, path: str, body: Any = None, *, status: int, **params: Any) -> dict[str, Any]:
        response = await self(method, path, body, **params)
        assert response.status_code == status, response.text
        error: dict[str, Any] = response.json()
        assert (error["statusCode"], error["path"]) == (status, path)
        assert error["timestamp"].endswith("Z")
        return error


@pytest.fixture(scope="module")
def rest(client: httpx.AsyncClient, environments: tuple[IssuedEnvironment, IssuedEnvironment]) -> Rest:
    return Rest(client, environments[0].api_key)


@pytest.fixture(scope="module")
def rest_other(client: httpx.AsyncClient, environments: tuple[IssuedEnvironment, IssuedEnvironment]) -> Rest:
    return Rest(client, environments[1].api_key)


async def test_v1_subscriber_lifecycle(rest: Rest) -> None:
    created = await rest.data("POST", "/v1/subscribers", {"subscriberId": "v1-ada", "firstName": "Ada"}, status=201)
    assert (created["subscriberId"], created["firstName"], created["deleted"]) == ("v1-ada", "Ada", False)
    assert created["_environmentId"] == created["_organizationId"]
    updated = await rest.data("PUT", "/v1/subscribers/v1-ada", {"email": "ada@example.com", "firstName": None})
    assert (updated["email"], updated["firstName"]) == ("ada@example.com", None)
    assert (await rest.data("GET", "/v1/subscribers/v1-ada"))["email"] == "ada@example.com"
    deleted = await rest.data("DELETE", "/v1/subscribers/v1-ada")
    assert deleted == {"acknowledged": True, "status": "deleted"}
    missing = await rest.error("GET", "/v1/subscribers/v1-ada", status=404)
    assert (missing["error"], missing["message"]) == ("Not Found", "subscriber 'v1-ada' not found")


async def test_bulk_create_reports_created_and_updated_and_writes_nothing_when_one_is_bad(rest: Rest) -> None:
    await rest.data("POST", "/v1/subscribers", {"subscriberId": "bulk-1"}, status=201)
    body = {"subscribers": [{"subscriberId": "bulk-1", "lastName": "One"}, {"subscriberId": "bulk-2"}]}
    result = await rest.data("POST", "/v1/subscribers/bulk", body, status=201)
    assert result == {"created": [{"subscriberId": "bulk-2"}], "updated": [{"subscriberId": "bulk-1"}], "failed": []}

    bad = {"subscribers": [{"subscriberId": "bulk-3"}, {"subscriberId": "bulk-4", "email": "nope"}]}
    error = await rest.error("POST", "/v1/subscribers/bulk", bad, status=422)
    assert list(error["errors"]) == ["subscribers.1.email"]
    assert await Subscriber.find_one({"subscriber_id": "bulk-3"}) is None


async def test_v1_topics(rest: Rest) -> None:
    for one in ("t-1", "t-2"):
        await rest.data("POST", "/v1/subscribers", {"subscriberId": one}, status=201)
    created = await rest.data("POST", "/v1/topics", {"key": "v1-news", "name": "News"}, status=201)
    assert set(created) == {"_id", "key"}
    await rest.error("POST", "/v1/topics", {"key": "v1-news", "name": "Again"}, status=409)
    added = await rest.data("POST", "/v1/topics/v1-news/subscribers", {"subscribers": ["t-1", "t-2", "t-none"]})
    assert added == {"succeeded": ["t-1", "t-2"], "failed": {"notFound": ["t-none"]}}
    topic = await rest.data("GET", "/v1/topics/v1-news")
    assert (topic["name"], topic["subscribers"]) == ("News", ["t-1", "t-2"])
    member = await rest.data("GET", "/v1/topics/v1-news/subscribers/t-1")
    assert (member["topicKey"], member["externalSubscriberId"]) == ("v1-news", "t-1")
    removal = await rest("POST", "/v1/topics/v1-news/subscribers/removal", {"subscribers": ["t-1"]})
    assert removal.status_code == 204
    await rest.error("GET", "/v1/topics/v1-news/subscribers/t-1", status=404)
    assert [one.subscriber_id for one in await TopicSubscription.find({"topic_key": "v1-news"}).to_list()] == ["t-2"]


async def test_a_topic_key_with_an_email_arrives_whole(rest: Rest) -> None:
    created = await rest.data("POST", "/v2/topics", {"key": "user:ada@example.com"}, status=201)
    assert created["name"] == "user:ada@example.com"
    assert (await rest.data("GET", "/v2/topics/user%3Aada%40example.com"))["key"] == "user:ada@example.com"


async def test_lists_page_forward_with_next_and_count(rest: Rest) -> None:
    ids = [f"page-{index}" for index in range(5)]
    await rest.data("POST", "/v1/subscribers/bulk", {"subscribers": [{"subscriberId": one} for one in ids]}, status=201)
    seen: list[str] = []
    after = None
    while True:
        params: dict[str, Any] = {"limit": 2, "subscriberId": "page-", **({"after": after} if after else {})}
        page = await rest.data("GET", "/v2/subscribers", None, **params)
        assert (page["totalCount"], page["totalCountCapped"], page["previous"]) == (5, False, None)
        seen += [one["subscriberId"] for one in page["data"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert seen == ids
    error = await rest.error("GET", "/v2/subscribers", status=422, limit=500)
    assert list(error["errors"]) == ["limit"]
    for refused in ({"before": "x"}, {"orderDirection": "DESC"}, {"orderBy": "email"}):
        error = await rest.error("GET", "/v2/topics", status=422, **refused)
        assert list(error["errors"]) == list(refused)
    ascending = await rest.data("GET", "/v2/subscribers", subscriberId="page-", orderDirection="ASC", orderBy="_id")
    assert [one["subscriberId"] for one in ascending["data"]] == ids
    await rest.error("GET", "/v2/subscribers", status=422, after="not-a-cursor")


async def test_errors_name_the_field_and_refuse_fields_novu_does_not_have(rest: Rest) -> None:
    error = await rest.error("POST", "/v2/subscribers", {"subscriberId": "x", "nickname": "y"}, status=422)
    assert (error["error"], list(error["errors"])) == ("Unprocessable Entity", ["nickname"])
    missing = await rest.error("POST", "/v1/events/trigger", {"to": "x"}, status=422)
    assert list(missing["errors"]) == ["name"]
    # `to` is a subscriberId, a subscriber or a topic: each is named by the fields the client sent, not by type.
    unclear = await rest.error("POST", "/v1/events/trigger", {"name": "x", "to": {"nope": 1}}, status=422)
    assert {"to.subscriberId", "to.topicKey", "to.nope"} <= set(unclear["errors"])
    assert not [name for name in unclear["errors"] if "Payload" in name or "Target" in name or "str" in name]
    invalid = await rest.error(
        "POST", "/v1/events/trigger", {"name": "x", "to": [{"subscriberId": "a", "email": "@"}]}, status=422
    )
    assert list(invalid["errors"]) == ["to.0.email"]
    not_json = await rest.client.post(
        "/v1/events/trigger", content=b"{", headers={**rest.headers, "Content-Type": "application/json"}
    )
    assert (not_json.status_code, not_json.json()["message"]) == (400, "the body is not JSON")


async def test_a_key_sees_only_its_environment(rest: Rest, rest_other: Rest) -> None:
    await rest.data("POST", "/v2/subscribers", {"subscriberId": "alpha-only", "email": "a@example.com"}, status=201)
    await rest_other.error("GET", "/v2/subscribers/alpha-only", status=404)
    await rest_other.error("PATCH", "/v2/subscribers/alpha-only", {"email": "b@example.com"}, status=404)
    await rest_other.error("DELETE", "/v2/subscribers/alpha-only", status=404)
    listed = await rest_other.data("GET", "/v2/subscribers", subscriberId="alpha-only")
    assert listed["data"] == []
    assert (await rest.data("GET", "/v2/subscribers/alpha-only"))["email"] == "a@example.com"


async def test_every_endpoint_refuses_a_missing_or_wrong_key(client: httpx.AsyncClient) -> None:
    for api_key in (None, "wrong"):
        anonymous = Rest(client, api_key)
        error = await anonymous.error("GET", "/v2/subscribers/x", status=401)
        assert error["error"] == "Unauthorized"
    bearer = await client.get("/v2/subscribers/x", headers={"Authorization": "Bearer token"})
    assert bearer.status_code == 401


async def test_a_trigger_or_broadcast_for_an_unknown_workflow_names_the_field(rest: Rest) -> None:
    for path, body in (
        ("/v1/events/trigger", {"name": "no-such-workflow", "to": "x"}),
        ("/v1/events/trigger/broadcast", {"name": "no-such-workflow", "payload": {}}),
    ):
        error = await rest.error("POST", path, body, status=422)
        assert (error["message"], list(error["errors"])) == ("workflow 'no-such-workflow' not found", ["name"])
    assert await Trigger.find({"workflow.workflow_id": "no-such-workflow"}).count() == 0


async def test_the_openapi_document_lists_every_endpoint_without_a_key(client: httpx.AsyncClient) -> None:
    document = (await client.get("/v1/openapi.json")).json()
    assert document["openapi"] == "3.1.0"
    assert set(document["paths"]["/v1/events/trigger"]) == {"post"}
    assert set(document["paths"]["/v2/subscribers/{subscriberId}"]) == {"get", "patch", "delete"}
    trigger = document["paths"]["/v1/events/trigger"]["post"]
    body = trigger["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    schema = document["components"]["schemas"][body]
    assert {"name", "to", "payload", "transactionId"} <= set(schema["properties"])
    assert set(schema["required"]) == {"name", "to"}


async def test_requests_are_counted_by_route_template_not_by_id(rest: Rest) -> None:
    await rest.data("POST", "/v2/subscribers", {"subscriberId": "counted"}, status=201)
    await rest.data("GET", "/v2/subscribers/counted")
    metrics = (await rest.client.get("/metrics")).text
    assert 'path="/v2/subscribers/{subscriberId}",status="200"' in metrics
    assert "counted" not in metrics


async def test_v1_list_pages_by_number_through_every_subscriber(
    rest: Rest, environments: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    ids = [f"numbered-{index}" for index in range(5)]
    await rest.data("POST", "/v1/subscribers/bulk", {"subscribers": [{"subscriberId": one} for one in ids]}, status=201)
    everyone = await Subscriber.find({"environment_id": environments[0].environment.id}).sort("_id").to_list()
    seen: list[str] = []
    for number in range(len(everyone)):
        page = await rest.data("GET", "/v1/subscribers", page=number, limit=3)
        assert (page["page"], page["pageSize"], page["totalCount"]) == (number, 3, len(everyone))
        seen += [one["subscriberId"] for one in page["data"]]
        if not page["hasMore"]:
            break
    assert seen == [one.subscriber_id for one in everyone]
    assert set(ids) <= set(seen)
    assert (await rest.data("GET", "/v1/subscribers", page=number + 1, limit=3))["data"] == []
    assert list((await rest.error("GET", "/v1/subscribers", status=422, limit=0))["errors"]) == ["limit"]
    deep = await rest.error("GET", "/v1/subscribers", status=422, page=50_000, limit=1)
    assert list(deep["errors"]) == ["page"]


async def test_online_status_is_the_backend_flag_or_an_open_inbox(
    rest: Rest, redis_url: str, environments: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    await rest.data("POST", "/v1/subscribers", {"subscriberId": "presence"}, status=201)
    online = await rest.data("PATCH", "/v1/subscribers/presence/online-status", {"isOnline": True})
    assert (online["isOnline"], online["lastOnlineAt"]) == (True, None)
    offline = await rest.data("PATCH", "/v1/subscribers/presence/online-status", {"isOnline": False})
    assert offline["isOnline"] is False
    assert offline["lastOnlineAt"].endswith("Z")
    stored = await Subscriber.find_one({"subscriber_id": "presence"})
    assert stored is not None
    assert (stored.is_online, stored.last_online_at is not None) == (False, True)

    environment_id = environments[0].environment.id
    assert environment_id is not None
    redis = Redis.from_url(redis_url)
    try:
        await connected(redis, environment_id, "presence", "connection-1", ttl=60)
        assert (await rest.data("GET", "/v2/subscribers/presence"))["isOnline"] is True
        listed = await rest.data("GET", "/v2/subscribers", subscriberId="presence")
        assert [one["isOnline"] for one in listed["data"]] == [True]
        await disconnected(redis, environment_id, "presence", "connection-1")
        assert (await rest.data("GET", "/v2/subscribers/presence"))["isOnline"] is False
    finally:
        await redis.aclose()

    await rest.error("PATCH", "/v1/subscribers/nobody/online-status", {"isOnline": True}, status=404)
    refused = await rest.error("PATCH", "/v1/subscribers/presence/online-status", {"isOnline": "yes"}, status=422)
    assert list(refused["errors"]) == ["isOnline"]


async def test_v1_preferences_per_workflow_and_global(rest: Rest, gql: GraphQL) -> None:
    steps = [{"inApp": {"body": "hi"}}, {"email": {"subject": "s", "body": "b"}}]
    await gql.data(CREATE_WORKFLOW, input={"workflowId": "v1-prefs", "name": "V1 prefs", "steps": steps})
    await rest.data("POST", "/v1/subscribers", {"subscriberId": "pref-v1"}, status=201)

    listed = await rest.data("GET", "/v1/subscribers/pref-v1/preferences")
    (mine,) = [one for one in listed if one["template"]["triggers"][0]["identifier"] == "v1-prefs"]
    assert (mine["template"]["name"], mine["template"]["critical"]) == ("V1 prefs", False)
    assert mine["preference"] == {"enabled": True, "channels": dict.fromkeys(CHANNELS, True), "overrides": []}

    email_off = await rest.data(
        "PATCH", "/v1/subscribers/pref-v1/preferences/v1-prefs", {"channel": {"type": "email", "enabled": False}}
    )
    assert email_off["preference"]["channels"] == {**dict.fromkeys(CHANNELS, True), "email": False}
    assert email_off["preference"]["overrides"] == [{"channel": "email", "source": "subscriber"}]

    # Off as a whole turns every channel off; back on, the email choice is still there.
    off = await rest.data("PATCH", "/v1/subscribers/pref-v1/preferences/v1-prefs", {"enabled": False})
    assert off["preference"]["enabled"] is False
    assert off["preference"]["channels"] == dict.fromkeys(CHANNELS, False)
    back = await rest.data("PATCH", "/v1/subscribers/pref-v1/preferences/v1-prefs", {"enabled": True})
    assert back["preference"]["channels"] == {**dict.fromkeys(CHANNELS, True), "email": False}
    # Turning a channel on while it is off as a whole turns it back on: otherwise the choice would do nothing.
    await rest.data("PATCH", "/v1/subscribers/pref-v1/preferences/v1-prefs", {"enabled": False})
    sms_on = {"channel": {"type": "sms", "enabled": True}}
    resumed = await rest.data("PATCH", "/v1/subscribers/pref-v1/preferences/v1-prefs", sms_on)
    assert resumed["preference"]["enabled"] is True
    assert resumed["preference"]["channels"] == {**dict.fromkeys(CHANNELS, True), "email": False}
    empty = await rest.error("PATCH", "/v1/subscribers/pref-v1/preferences/v1-prefs", {}, status=422)
    assert empty["message"].endswith("send channel or enabled")

    body = {"preferences": [{"type": "sms", "enabled": False}, {"type": "in_app", "enabled": False}]}
    global_set = await rest.data("PATCH", "/v1/subscribers/pref-v1/preferences", body)
    expected = {"enabled": True, "channels": {**dict.fromkeys(CHANNELS, True), "sms": False, "in_app": False}}
    assert global_set == {"preference": expected}
    assert await rest.data("GET", "/v1/subscribers/pref-v1/preferences/global") == [{"preference": expected}]
    by_template = await rest.data("GET", "/v1/subscribers/pref-v1/preferences/template")
    (mine,) = [one for one in by_template if one["template"]["triggers"][0]["identifier"] == "v1-prefs"]
    # The global choices apply where the workflow has none of its own (it turned sms on, email off).
    off_here = {"email": False, "in_app": False}
    assert mine["preference"]["channels"] == {**dict.fromkeys(CHANNELS, True), **off_here}

    # Novu's clients send back the `template._id` they were given.
    by_id = f"/v1/subscribers/pref-v1/preferences/{mine['template']['_id']}"
    push_off = await rest.data("PATCH", by_id, {"channel": {"type": "push", "enabled": False}})
    assert push_off["template"]["triggers"][0]["identifier"] == "v1-prefs"
    assert push_off["preference"]["channels"]["push"] is False
    stored = await SubscriberPreference.find({"subscriber_id": "pref-v1"}).to_list()
    assert sorted(str(row.workflow_id) for row in stored) == ["None", "v1-prefs"]

    level = await rest.error("GET", "/v1/subscribers/pref-v1/preferences/everything", status=422)
    assert list(level["errors"]) == ["parameter"]
    await rest.error("PATCH", "/v1/subscribers/pref-v1/preferences/no-such-workflow", {"enabled": False}, status=404)
    await rest.error("PATCH", "/v1/subscribers/nobody/preferences", {"enabled": False}, status=404)
    bad = await rest.error(
        "PATCH", "/v1/subscribers/pref-v1/preferences", {"preferences": [{"type": "fax", "enabled": True}]}, status=422
    )
    assert list(bad["errors"]) == ["preferences.0.type"]


async def test_an_inline_subscriber_with_too_many_endpoints_refuses_only_its_event(rest: Rest, gql: GraphQL) -> None:
    steps = [{"inApp": {"body": "x"}}]
    await gql.data(CREATE_WORKFLOW, input={"workflowId": "crowded", "name": "Crowded", "steps": steps})
    await gql.data(CREATE_INTEGRATION, input={"providerId": "expo", "name": "Expo", "config": {}})
    full = [{"integrationIdentifier": f"other-{index}", "deviceTokens": ["t"]} for index in range(MAX_ENDPOINTS)]
    await gql.data(UPSERT_SUBSCRIBER, input={"subscriberId": "crowded", "push": full})
    expo = {"providerId": "expo", "credentials": {"deviceTokens": ["ExponentPushToken[c]"]}}
    crowded = {"name": "crowded", "to": [{"subscriberId": "crowded", "channels": [expo]}]}

    error = await rest.error("POST", "/v1/events/trigger", crowded, status=422)
    assert list(error["errors"]) == ["to.0.channels.0"]
    bulk = {"events": [crowded, {"name": "crowded", "to": "crowd-neighbour"}]}
    answers = await rest.data("POST", "/v1/events/trigger/bulk", bulk, status=201)
    assert [one["status"] for one in answers] == ["error", "processed"]
    assert answers[0]["error"][0].startswith("to.0.channels.0: a subscriber has at most")
    recorded = await Trigger.find({"workflow.workflow_id": "crowded"}).to_list()
    assert [one.to[0].subscriber_id for one in recorded] == ["crowd-neighbour"]
