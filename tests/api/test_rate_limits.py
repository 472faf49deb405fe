"""Per-environment rate limits on a real `tidings api` started with small buckets: 429 + Retry-After + RATE_LIMITED,
nothing of a refused operation runs, other environments and queries are unaffected, buckets refill."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.servers import SECRET_KEY, isolated_settings
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import IssuedEnvironment, create_environment
from tidings.notifications.documents import Trigger
from tidings.subscribers.documents import Subscriber

CREATE_TOPIC = "mutation($key: String!) { createTopic(input: {key: $key, name: $key}) { key } }"
GET_TOPIC = "query($key: String!) { topic(key: $key) { key } }"
CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId } }"
BULK = "mutation($input: BulkTriggerInput!) { bulkTrigger(input: $input) { transactionId } }"
CANCEL = "mutation($t: String!) { cancelTrigger(transactionId: $t) { canceledJobs } }"
SESSION = (
    "mutation($app: String!, $s: String!) { inboxSession(applicationIdentifier: $app, subscriberId: $s) { token } }"
)
SESSION_WITH_HASH = (
    "mutation($app: String!, $s: String!, $h: String!) "
    "{ inboxSession(applicationIdentifier: $app, subscriberId: $s, subscriberHash: $h) { token } }"
)

# Config refills fast enough to wait for; triggers and inbox sessions so slowly that nothing refills during a test.
CONFIG_PER_SECOND, CONFIG_BURST = 0.5, 3
TRIGGER_BURST = 5
SESSION_BURST = 2


@pytest.fixture(scope="module")
def api_settings(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Overrides tests/api/conftest.py: the same API process fixture, with small buckets."""
    return isolated_settings(mongodb_url, redis_url, tmp_path_factory.mktemp("api")).model_copy(
        update={
            "rate_config_per_second": CONFIG_PER_SECOND,
            "rate_config_burst": CONFIG_BURST,
            "rate_trigger_per_second": 0.01,
            "rate_trigger_burst": TRIGGER_BURST,
            "rate_inbox_session_per_second": 0.01,
            "rate_inbox_session_burst": SESSION_BURST,
        }
    )


@pytest.fixture
async def fresh(environments: tuple[IssuedEnvironment, IssuedEnvironment]) -> IssuedEnvironment:
    """An environment of its own per test, so each starts with full buckets."""
    return await create_environment(f"rl-{uuid.uuid4().hex[:8]}", cipher=Cipher(SECRET_KEY))


async def _post(client: httpx.AsyncClient, api_key: str | None, query: str, **variables: Any) -> httpx.Response:
    headers = {"Authorization": f"ApiKey {api_key}"} if api_key else {}
    return await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


def _refusal(response: httpx.Response) -> int:
    """Asserts a rate-limit refusal and returns its Retry-After."""
    assert response.status_code == 429, response.text
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"] == {"code": "RATE_LIMITED", "retryAfter": retry_after}
    return retry_after


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def test_config_mutations_are_refused_after_the_burst_and_refill(
    client: httpx.AsyncClient, fresh: IssuedEnvironment, environments: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    key = fresh.api_key
    answers = [await _post(client, key, CREATE_TOPIC, key=f"t{index}") for index in range(CONFIG_BURST + 5)]
    refused_at = next(index for index, answer in enumerate(answers) if answer.status_code != 200)
    assert refused_at >= CONFIG_BURST
    retry_after = _refusal(answers[refused_at])
    assert retry_after <= 1 / CONFIG_PER_SECOND

    # The refused call stored nothing; queries are not limited, and another environment has its own bucket.
    missing = (await _post(client, key, GET_TOPIC, key=f"t{refused_at}")).json()
    assert missing["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await _ok(await _post(client, key, GET_TOPIC, key="t0")))["topic"] == {"key": "t0"}
    other = await _post(client, environments[1].api_key, CREATE_TOPIC, key=f"t{refused_at}")
    assert (await _ok(other))["createTopic"] == {"key": f"t{refused_at}"}

    await asyncio.sleep(retry_after)  # waiting as told, not asserting speed
    again = await _post(client, key, CREATE_TOPIC, key=f"t{refused_at}")
    assert (await _ok(again))["createTopic"] == {"key": f"t{refused_at}"}


async def test_triggers_cost_one_token_per_event_and_refused_ones_record_nothing(
    client: httpx.AsyncClient, fresh: IssuedEnvironment
) -> None:
    key = fresh.api_key
    steps = [{"inApp": {"body": "hi"}}]
    await _ok(await _post(client, key, CREATE_WORKFLOW, input={"workflowId": "w", "name": "w", "steps": steps}))

    def event(transaction_id: str) -> dict[str, Any]:
        return {"workflowId": "w", "to": [{"subscriberId": "ada"}], "transactionId": transaction_id}

    bulk = await _post(client, key, BULK, input={"events": [event(f"a{index}") for index in range(3)]})
    assert len((await _ok(bulk))["bulkTrigger"]) == 3  # 5 - 3 = 2 tokens left
    _refusal(await _post(client, key, BULK, input={"events": [event(f"b{index}") for index in range(3)]}))
    # Three triggers in one operation are priced together: refused as a whole, none of them runs.
    aliased = (
        "mutation($x: TriggerInput!, $y: TriggerInput!, $z: TriggerInput!) { "
        + " ".join(f"{name}: trigger(input: ${name}) {{ transactionId }}" for name in "xyz")
        + " }"
    )
    _refusal(await _post(client, key, aliased, x=event("c0"), y=event("c1"), z=event("c2")))
    await _ok(await _post(client, key, TRIGGER, input=event("d0")))
    await _ok(await _post(client, key, TRIGGER, input=event("d1")))  # the last token
    _refusal(await _post(client, key, CANCEL, t="d0"))  # cancelling spends the trigger bucket too

    recorded = await Trigger.find(Trigger.environment_id == fresh.environment.id).to_list()
    assert sorted(trigger.transaction_id for trigger in recorded) == ["a0", "a1", "a2", "d0", "d1"]


async def test_inbox_sessions_have_a_bucket_per_environment(
    client: httpx.AsyncClient, fresh: IssuedEnvironment, environments: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    app = fresh.environment.application_identifier
    # Anyone knows the applicationIdentifier: calls with a wrong subscriberHash are refused and spend nothing.
    for _ in range(SESSION_BURST * 3):
        wrong = (await _post(client, None, SESSION_WITH_HASH, app=app, s="intruder", h="0" * 64)).json()
        assert wrong["errors"][0]["extensions"] == {"code": "FORBIDDEN", "field": "subscriberHash"}
    for index in range(SESSION_BURST):
        assert (await _ok(await _post(client, None, SESSION, app=app, s=f"u{index}")))["inboxSession"]["token"]
    _refusal(await _post(client, None, SESSION, app=app, s="late"))
    assert await Subscriber.find_one({"environment_id": fresh.environment.id, "subscriber_id": "late"}) is None
    other = environments[1].environment.application_identifier
    assert (await _ok(await _post(client, None, SESSION, app=other, s="late")))["inboxSession"]["token"]
