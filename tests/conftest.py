"""Session fixtures: real servers, started once (or taken from TIDINGS_MONGODB_URL / TIDINGS_REDIS_URL)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.servers import beanie_database, isolated_settings
from tidings.app.embedded import secantus, valkey
from tidings.app.settings import Settings


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


@pytest.fixture(scope="session")
def redis_url(server_logs: Path) -> Iterator[str]:
    if url := os.environ.get("TIDINGS_REDIS_URL"):
        yield url
        return
    server = valkey(data_dir=None, log_path=server_logs / "valkey.log")
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="session")
def mongodb_url(server_logs: Path) -> Iterator[str]:
    if url := os.environ.get("TIDINGS_MONGODB_URL"):
        yield url
        return
    server = secantus(data_dir=None, log_path=server_logs / "secantusdb.log")
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def settings(mongodb_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return isolated_settings(mongodb_url, redis_url, tmp_path)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    async with beanie_database(settings) as client:
        yield client
