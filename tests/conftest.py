"""Session fixtures: real servers, started once (or taken from TIDINGS_MONGODB_URL / TIDINGS_REDIS_URL)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.servers import beanie_database, isolated_settings
from tidings.app.embedded import EmbeddedServer, secantus, valkey
from tidings.app.settings import Settings


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("server-logs")


def _external_or_embedded(variable: str, embedded: EmbeddedServer) -> Iterator[str]:
    """The URL in `variable` when set (a real server), else the embedded server, started for the session."""
    if url := os.environ.get(variable):
        yield url
        return
    embedded.start()
    try:
        yield embedded.url
    finally:
        embedded.stop()


@pytest.fixture(scope="session")
def redis_url(server_logs: Path) -> Iterator[str]:
    yield from _external_or_embedded("TIDINGS_REDIS_URL", valkey(data_dir=None, log_path=server_logs / "valkey.log"))


@pytest.fixture(scope="session")
def mongodb_url(server_logs: Path) -> Iterator[str]:
    server = secantus(data_dir=None, log_path=server_logs / "secantusdb.log")
    yield from _external_or_embedded("TIDINGS_MONGODB_URL", server)


@pytest.fixture
def settings(mongodb_url: str, redis_url: str, tmp_path: Path) -> Settings:
    return isolated_settings(mongodb_url, redis_url, tmp_path)


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    async with beanie_database(settings) as client:
        yield client
