"""One guarded stack for the security tests: a real `tidings api` and worker with private network URLs refused (the
production default), and two environments, each a tenant the other one attacks."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, isolated_settings, role_env
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import IssuedEnvironment, create_environment

SESSION = """mutation($app: String!, $id: String!, $hash: String) {
    inboxSession(applicationIdentifier: $app, subscriberId: $id, subscriberHash: $hash) { token seq } }"""


def guarded_settings(mongodb_url: str, redis_url: str, tmp: Path) -> Settings:
    return isolated_settings(mongodb_url, redis_url, tmp).model_copy(
        update={
            "allow_private_network_urls": False,  # what production runs with: every SSRF check is live
            # Below the default 12, which no real path of the schema reaches (its deepest has depth 5), so the limit
            # can be tested; the introspection fields Strawberry's limiter skips are bounded by the token limit.
            "graphql_max_depth": 4,
            "engine_retry_base_seconds": 0.2,
            "engine_retry_max_seconds": 1.0,
            "mongodb_timeout_ms": 30_000,  # two cores shared by several processes
        }
    )


@dataclass(frozen=True)
class Caller:
    """Posts GraphQL with one `Authorization` header (an API key, a subscriber token, or none) and returns the
    whole answer: status, body and raw text, so a test can search all of it for leaked data."""

    client: httpx.AsyncClient
    authorization: str | None

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        # As bytes: a header may carry any octets, and attackers send non-ASCII ones.
        headers = {b"Authorization": self.authorization.encode()} if self.authorization else {}
        return await self.client.post("/graphql", json={"query": query, "variables": variables or {}}, headers=headers)

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        response = await self.post(query, variables)
        body = response.json()
        assert response.status_code == 200, response.text
        assert "errors" not in body, response.text
        data: dict[str, Any] = body["data"]
        return data

    async def codes(self, query: str, **variables: Any) -> list[str]:
        body = (await self.post(query, variables)).json()
        return [error["extensions"]["code"] for error in body.get("errors", [])]


def admin(client: httpx.AsyncClient, api_key: str) -> Caller:
    return Caller(client, f"ApiKey {api_key}")


def subscriber_hash(api_key: str, subscriber_id: str) -> str:
    return hmac.new(api_key.encode(), subscriber_id.encode(), hashlib.sha256).hexdigest()


async def session_token(client: httpx.AsyncClient, env: IssuedEnvironment, subscriber_id: str) -> str:
    """A subscriber token, opened the way a browser does (with the HMAC, so it works whether or not it is required)."""
    data = await Caller(client, None).data(
        SESSION,
        app=env.environment.application_identifier,
        id=subscriber_id,
        hash=subscriber_hash(env.api_key, subscriber_id),
    )
    token: str = data["inboxSession"]["token"]
    return token


async def eventually[T](check: Callable[[], Awaitable[T | None]], what: str, limit: float = 90.0) -> T:
    deadline = time.monotonic() + limit
    while True:
        if (value := await check()) is not None:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {limit}s")
        await asyncio.sleep(0.05)


def start_api(settings: Settings, log_path: Path) -> tuple[RoleProcess, str]:
    """`tidings api` on a free port, with room to start on a machine busy with other suites."""
    return api_process(settings, log_path, timeout=120.0)


@dataclass
class Guarded:
    settings: Settings
    base: str
    client: httpx.AsyncClient
    alpha: IssuedEnvironment
    beta: IssuedEnvironment
    api: RoleProcess
    worker: RoleProcess

    def logs(self) -> str:
        return self.api.output()[-4000:] + "\n" + self.worker.output()[-4000:]


@pytest.fixture(scope="package")
async def guarded(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Guarded]:
    tmp = tmp_path_factory.mktemp("security")
    settings = guarded_settings(mongodb_url, redis_url, tmp)
    async with beanie_database(settings):
        alpha = await create_environment("alpha", cipher=Cipher(SECRET_KEY))
        beta = await create_environment("beta", cipher=Cipher(SECRET_KEY))
        api, base = start_api(settings, tmp / "api.log")
        worker = RoleProcess("worker", role_env(settings), tmp / "worker.log").start()
        try:
            # Tasks queued before the worker's consumer group exists are only picked up by a scheduler's requeue.
            worker.wait_for_output("Listening started", timeout=60)
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                yield Guarded(settings, base, client, alpha, beta, api, worker)
        finally:
            worker.stop()
            api.stop()
