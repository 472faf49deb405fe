"""Fixtures for GraphQL-over-HTTP tests: one real `tidings api` process per module, two environments."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, isolated_settings
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.service import IssuedEnvironment, create_environment


@dataclass(frozen=True)
class GraphQL:
    """Posts operations with one environment's API key."""

    client: httpx.AsyncClient
    api_key: str | None

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        headers = {"Authorization": f"ApiKey {self.api_key}"} if self.api_key else {}
        response = await self.client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, **variables: Any) -> dict[str, Any]:
        """The `data` of an operation that must succeed."""
        body = await self(query, **variables)
        assert "errors" not in body, body["errors"]
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, query: str, **variables: Any) -> dict[str, Any]:
        """The single error of an operation that must fail: `{"code", "field", "message"}`."""
        body = await self(query, **variables)
        assert body.get("errors"), body
        assert len(body["errors"]) == 1, body["errors"]
        error = body["errors"][0]
        return {"code": error["extensions"]["code"], "field": error["extensions"].get("field"), **error}


@pytest.fixture(scope="module")
def api_settings(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(mongodb_url, redis_url, tmp_path_factory.mktemp("api"))


@pytest.fixture(scope="module")
def api(api_settings: Settings) -> Iterator[tuple[RoleProcess, str]]:
    """One API process for the module (starting Python with Strawberry and Beanie costs seconds)."""
    process, base = api_process(api_settings, api_settings.heartbeat_dir.parent / "api.log")
    yield process, base
    assert process.stop() in (0, -signal.SIGTERM), process.output()
    assert "Application shutdown complete" in process.output()


@pytest.fixture(scope="module")
async def client(api: tuple[RoleProcess, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api[1], timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
async def environments(api_settings: Settings) -> AsyncIterator[tuple[IssuedEnvironment, IssuedEnvironment]]:
    async with beanie_database(api_settings):
        yield (
            await create_environment("alpha", cipher=Cipher(SECRET_KEY)),
            await create_environment("beta", cipher=Cipher(SECRET_KEY)),
        )


@pytest.fixture(scope="module")
def gql(client: httpx.AsyncClient, environments: tuple[IssuedEnvironment, IssuedEnvironment]) -> GraphQL:
    """GraphQL as environment alpha."""
    return GraphQL(client, environments[0].api_key)


@pytest.fixture(scope="module")
def other(client: httpx.AsyncClient, environments: tuple[IssuedEnvironment, IssuedEnvironment]) -> GraphQL:
    """GraphQL as environment beta, to prove that alpha's records stay out of its reach."""
    return GraphQL(client, environments[1].api_key)


@pytest.fixture(scope="module")
def anonymous(client: httpx.AsyncClient) -> GraphQL:
    return GraphQL(client, None)
