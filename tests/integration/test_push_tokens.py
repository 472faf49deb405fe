"""Dead device tokens end to end: a push step through Expo (a real local server answering in Expo's format) where
one of the subscriber's two tokens is unregistered; the send succeeds for the other, and the dead token is removed
from the subscriber by the engine, not stored in the execution detail."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.api.conftest import GraphQL
from tests.integration.test_engine import ACTIVITY, CREATE_INTEGRATION, CREATE_WORKFLOW, TRIGGER, engine_settings
from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, role_env
from tests.sinks import serve_app
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

DEAD = "ExponentPushToken[dead-device]"
ALIVE = "ExponentPushToken[live-device]"


@pytest.fixture(scope="module")
def expo() -> Iterator[tuple[list[Any], str]]:
    received: list[Any] = []

    async def send(request: Request) -> JSONResponse:
        messages = json.loads(await request.body())
        received.append(messages)
        tickets = [
            {"status": "error", "message": "not registered", "details": {"error": "DeviceNotRegistered"}}
            if message["to"] == DEAD
            else {"status": "ok", "id": f"ticket-{index}"}
            for index, message in enumerate(messages)
        ]
        return JSONResponse({"data": tickets})

    app = Starlette(routes=[Route("/--/api/v2/push/send", send, methods=["POST"])])
    with serve_app(app, "Expo's stand-in") as base:
        yield received, base


@pytest.fixture(scope="module")
async def gql(
    mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory, expo: tuple[list[Any], str]
) -> AsyncIterator[GraphQL]:
    tmp = tmp_path_factory.mktemp("push-tokens")
    settings = engine_settings(mongodb_url, redis_url, tmp)
    async with beanie_database(settings):
        issued = await create_environment("push", cipher=Cipher(SECRET_KEY))
        api, base = api_process(settings, tmp / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        try:
            async with httpx.AsyncClient(base_url=base, timeout=30) as client:
                admin = GraphQL(client, issued.api_key)
                await admin.data(
                    CREATE_INTEGRATION,
                    input={"providerId": "expo", "identifier": "expo", "config": {"baseUrl": expo[1]}},
                )
                steps = [{"push": {"title": "Build", "body": "{{ payload.status }}"}}]
                await admin.data(CREATE_WORKFLOW, input={"workflowId": "build", "name": "Build", "steps": steps})
                yield admin
        finally:
            worker.stop()
            api.stop()


async def test_a_dead_token_is_removed_and_the_live_one_still_gets_the_push(
    gql: GraphQL, expo: tuple[list[Any], str]
) -> None:
    subscriber = {"subscriberId": "dev", "push": [{"integrationIdentifier": "expo", "deviceTokens": [DEAD, ALIVE]}]}
    result = await gql.data(
        TRIGGER, input={"workflowId": "build", "to": [{"subscriber": subscriber}], "payload": {"status": "green"}}
    )
    transaction = result["trigger"]["transactionId"]
    job: dict[str, Any] = {}
    for _ in range(300):
        edges = (await gql.data(ACTIVITY, t=transaction))["notifications"]["edges"]
        jobs = [job for edge in edges for job in edge["node"]["jobs"]]
        if jobs and jobs[0]["status"] in ("COMPLETED", "FAILED"):
            job = jobs[0]
            break
        await asyncio.sleep(0.1)
    assert job.get("status") == "COMPLETED", job
    sent = [message["to"] for batch in expo[0] for message in batch]
    assert sorted(sent) == sorted([DEAD, ALIVE])
    assert {message["title"] for batch in expo[0] for message in batch} == {"Build"}
    detail = job["executionDetails"][-1]["detail"]
    assert detail["removedDeviceTokens"] == 1
    assert "badDeviceTokens" not in detail
    assert DEAD not in json.dumps(detail)
    stored = await gql.data('{ subscriber(subscriberId: "dev") { push { integrationIdentifier deviceTokens } } }')
    assert stored["subscriber"]["push"] == [{"integrationIdentifier": "expo", "deviceTokens": [ALIVE]}]
