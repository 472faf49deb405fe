"""`Idempotency-Key` on a real `tidings api`: replays, 409 while the first request runs, 422 on another body, keys
scoped by API key, expiry, queries untouched, transient answers not kept, and 503 (not a second run) without Redis."""

from __future__ import annotations

import asyncio
import hashlib
import json
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.servers import SECRET_KEY, api_process, beanie_database, isolated_settings
from tests.sinks import serve_app
from tidings.app.embedded import valkey
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import IssuedEnvironment, create_environment
from tidings.notifications.documents import Trigger

TTL_SECONDS = 5
LOCK_SECONDS = 1  # a request holding the gate outlives its claim's first term: the claim must be renewed
CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"
CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
TRIGGER = "mutation($input: TriggerInput!) { trigger(input: $input) { transactionId duplicate } }"
BULK = "mutation($input: BulkTriggerInput!) { bulkTrigger(input: $input) { transactionId duplicate } }"
TEST_SEND = "mutation($id: String!) { testIntegration(identifier: $id) { success message } }"
SESSION = (
    "mutation($app: String!, $s: String!) { inboxSession(applicationIdentifier: $app, subscriberId: $s) { token } }"
)
CREATE_TOPIC = "mutation($key: String!) { createTopic(input: {key: $key, name: $key}) { key } }"


@dataclass
class Gate:
    """An HTTP endpoint that holds each request until released: a provider call the test controls."""

    entered: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    async def endpoint(self, request: Request) -> JSONResponse:
        await request.body()
        self.entered.set()
        await asyncio.to_thread(self.release.wait, 8)  # below the webhook provider's 10 s timeout
        return JSONResponse({"ok": True})


@pytest.fixture(scope="module")
def gate() -> Iterator[tuple[Gate, str]]:
    gate = Gate()
    app = Starlette(routes=[Route("/hook", gate.endpoint, methods=["POST"])])
    with serve_app(app, "the gate server") as base:
        try:
            yield gate, f"{base}/hook"
        finally:
            gate.release.set()


@pytest.fixture(scope="module")
def api_settings(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Overrides tests/api/conftest.py: answers kept briefly, loopback provider URLs, one inbox session per env."""
    return isolated_settings(mongodb_url, redis_url, tmp_path_factory.mktemp("api")).model_copy(
        update={
            "idempotency_ttl_seconds": TTL_SECONDS,
            "idempotency_lock_seconds": LOCK_SECONDS,
            "allow_private_network_urls": True,
            "rate_inbox_session_per_second": 0.01,
            "rate_inbox_session_burst": 1,
        }
    )


@pytest.fixture(scope="module")
async def prepared(
    client: httpx.AsyncClient, environments: tuple[IssuedEnvironment, IssuedEnvironment], gate: tuple[Gate, str]
) -> tuple[IssuedEnvironment, IssuedEnvironment]:
    workflow = {"workflowId": "w", "name": "w", "steps": [{"inApp": {"body": "hi"}}]}
    for environment in environments:
        await _ok(await _post(client, environment.api_key, CREATE_WORKFLOW, input=workflow))
    hook = {"providerId": "webhook", "name": "Hook", "config": {"url": gate[1]}}
    await _ok(await _post(client, environments[0].api_key, CREATE_INTEGRATION, input=hook))
    return environments


async def _post(
    client: httpx.AsyncClient, api_key: str | None, query: str, idem: str | None = None, **variables: Any
) -> httpx.Response:
    headers = {"Authorization": f"ApiKey {api_key}"} if api_key else {}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)


async def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


async def _triggers(environment: IssuedEnvironment) -> int:
    return await Trigger.find(Trigger.environment_id == environment.environment.id).count()


EVENT = {"workflowId": "w", "to": [{"subscriberId": "ada"}]}  # no transactionId: each run makes a new trigger


async def test_a_repeated_trigger_is_replayed_not_run_again(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    alpha = prepared[0]
    before = await _triggers(alpha)
    first = await _post(client, alpha.api_key, TRIGGER, idem="order-1001", input=EVENT)
    assert first.status_code == 200
    assert "idempotency-replayed" not in first.headers
    again = await _post(client, alpha.api_key, TRIGGER, idem="order-1001", input=EVENT)
    assert again.status_code == 200
    assert again.headers["idempotency-replayed"] == "true"
    assert again.headers["content-type"] == first.headers["content-type"]
    assert again.content == first.content
    assert await _triggers(alpha) == before + 1

    changed = await _post(client, alpha.api_key, TRIGGER, idem="order-1001", input={**EVENT, "payload": {"x": 1}})
    assert changed.status_code == 422
    assert changed.json() == {"error": "this Idempotency-Key was used with a different request body"}
    assert await _triggers(alpha) == before + 1


async def test_a_key_is_scoped_to_the_api_key(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    alpha, beta = prepared
    before = await _triggers(beta)
    mine = await _ok(await _post(client, alpha.api_key, TRIGGER, idem="shared-key", input=EVENT))
    theirs = await _post(client, beta.api_key, TRIGGER, idem="shared-key", input=EVENT)
    assert "idempotency-replayed" not in theirs.headers
    assert (await _ok(theirs))["trigger"]["transactionId"] != mine["trigger"]["transactionId"]
    assert await _triggers(beta) == before + 1


async def test_409_while_the_first_request_runs_then_the_replay(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment], gate: tuple[Gate, str]
) -> None:
    alpha, (hold, _) = prepared[0], gate
    hold.entered.clear()
    hold.release.clear()
    first = asyncio.create_task(_post(client, alpha.api_key, TEST_SEND, idem="send-1", id="webhook"))
    try:
        assert await asyncio.to_thread(hold.entered.wait, 30), "the test send never reached the provider"
        await asyncio.sleep(LOCK_SECONDS * 2.5)  # past the claim's first term: it is renewed while the request runs
        running = await _post(client, alpha.api_key, TEST_SEND, idem="send-1", id="webhook")
        assert running.status_code == 409
        assert running.json() == {"error": "a request with this Idempotency-Key is still in progress; retry later"}
        other_body = await _post(client, alpha.api_key, TEST_SEND, idem="send-1", id="other")
        assert other_body.status_code == 422
    finally:
        hold.release.set()
    done = await first
    assert (await _ok(done))["testIntegration"]["success"] is True
    hold.entered.clear()
    replayed = await _post(client, alpha.api_key, TEST_SEND, idem="send-1", id="webhook")
    assert replayed.headers["idempotency-replayed"] == "true"
    assert replayed.content == done.content
    assert not hold.entered.is_set()  # the provider was not called again


async def test_a_kept_answer_expires(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    alpha = prepared[0]
    first = await _ok(await _post(client, alpha.api_key, TRIGGER, idem="expiring", input=EVENT))
    await asyncio.sleep(TTL_SECONDS + 0.5)  # waiting out the TTL, not asserting speed
    later = await _post(client, alpha.api_key, TRIGGER, idem="expiring", input=EVENT)
    assert "idempotency-replayed" not in later.headers  # run again, not replayed…
    again = (await _ok(later))["trigger"]
    # …and the trigger's transactionId, derived from the key, finds the trigger of the first run: never two.
    assert again == {"transactionId": first["trigger"]["transactionId"], "duplicate": True}


async def test_a_retry_whose_first_answer_was_lost_finds_the_recorded_trigger(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment], api_settings: Settings
) -> None:
    """An answer that is not kept (the queue was down: UNAVAILABLE, or the process died) releases the key; the retry
    runs again, and must not make a second trigger of a request that sent no transactionId."""
    alpha = prepared[0]
    before = await _triggers(alpha)
    first = (await _ok(await _post(client, alpha.api_key, TRIGGER, idem="lost-1", input=EVENT)))["trigger"]
    assert first["transactionId"].startswith("idem-")
    redis = Redis.from_url(api_settings.require_redis_url())
    try:
        caller = hashlib.sha256(f"ApiKey {alpha.api_key}".encode()).hexdigest()
        assert await redis.delete(f"tidings:idempotency:{caller}:{hashlib.sha256(b'lost-1').hexdigest()}") == 1
    finally:
        await redis.aclose()
    retried = await _post(client, alpha.api_key, TRIGGER, idem="lost-1", input=EVENT)
    assert "idempotency-replayed" not in retried.headers
    assert (await _ok(retried))["trigger"] == {"transactionId": first["transactionId"], "duplicate": True}
    assert await _triggers(alpha) == before + 1

    bulk = {"events": [EVENT, EVENT, {**EVENT, "transactionId": "given-by-caller"}]}
    ids = [
        one["transactionId"]
        for one in (await _ok(await _post(client, alpha.api_key, BULK, idem="bulk-1", input=bulk)))["bulkTrigger"]
    ]
    assert ids[2] == "given-by-caller"
    assert ids[0].startswith("idem-")
    assert ids[1].startswith("idem-")
    assert ids[0] != ids[1]
    assert await _triggers(alpha) == before + 4


async def test_a_client_gone_mid_upload_leaves_the_key_free(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    alpha = prepared[0]
    body = json.dumps({"query": TRIGGER, "variables": {"input": EVENT}}).encode()
    host, port = client.base_url.host, client.base_url.port
    assert port is not None
    reader, writer = await asyncio.open_connection(host, port)
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Authorization: ApiKey {alpha.api_key}\r\nIdempotency-Key: upload-1\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    writer.write(head.encode() + body[: len(body) // 2])
    await writer.drain()
    writer.close()  # gone before the rest of the body
    await writer.wait_closed()
    del reader
    before = await _triggers(alpha)
    whole = await _post(client, alpha.api_key, TRIGGER, idem="upload-1", input=EVENT)
    assert whole.status_code == 200, whole.text  # not 409 (a claim left behind) nor 422 (half a body fingerprinted)
    assert "idempotency-replayed" not in whole.headers
    assert await _triggers(alpha) == before + 1


async def test_queries_pass_through_and_bad_keys_are_refused(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    alpha = prepared[0]
    for query in ("{ currentEnvironment { name } }", "{ currentEnvironment { id } }"):
        answer = await _post(client, alpha.api_key, query, idem="a-query")
        assert answer.status_code == 200
        assert "idempotency-replayed" not in answer.headers
    too_long = await _post(client, alpha.api_key, TRIGGER, idem="k" * 256, input=EVENT)
    assert too_long.status_code == 400
    assert "Idempotency-Key" in too_long.json()["error"]


async def test_a_rate_limited_answer_is_not_kept(
    client: httpx.AsyncClient, prepared: tuple[IssuedEnvironment, IssuedEnvironment]
) -> None:
    app = prepared[1].environment.application_identifier
    await _ok(await _post(client, None, SESSION, app=app, s="first"))  # the bucket's only token
    for _ in range(2):
        refused = await _post(client, None, SESSION, idem="session-1", app=app, s="second")
        assert refused.status_code == 429
        assert "idempotency-replayed" not in refused.headers


@pytest.fixture
async def redis_down_api(mongodb_url: str, tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, str, Any]]:
    """An API on a Redis of its own, which is stopped once the API is up."""
    server = valkey(data_dir=None, log_path=tmp_path / "valkey.log")
    server.start()
    settings = isolated_settings(mongodb_url, server.url, tmp_path)
    try:
        async with beanie_database(settings):
            issued = await create_environment("down", cipher=Cipher(SECRET_KEY))
            api, base = api_process(settings, tmp_path / "api.log")
            try:
                server.stop()
                async with httpx.AsyncClient(base_url=base, timeout=60) as http:
                    yield http, issued.api_key, api
            finally:
                api.stop()
    finally:
        server.stop()


async def test_without_redis_a_keyed_request_is_refused_and_limits_fail_open(
    redis_down_api: tuple[httpx.AsyncClient, str, Any],
) -> None:
    client, api_key, api = redis_down_api
    keyed = await _post(client, api_key, CREATE_TOPIC, idem="k-1", key="x")
    assert keyed.status_code == 503
    assert keyed.json() == {"error": "the idempotency store is unavailable; retry later with the same key"}
    created = await _ok(await _post(client, api_key, CREATE_TOPIC, key="unguarded"))
    assert created["createTopic"] == {"key": "unguarded"}
    output = api.output()
    assert "Idempotency-Key refused: Redis unavailable" in output
    assert "rate limits not enforced: Redis unavailable" in output
