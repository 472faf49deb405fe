"""Session fixtures: real servers, started once (or taken from TIDINGS_MONGODB_URL / TIDINGS_REDIS_URL)."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from beanie import init_beanie
from pymongo import AsyncMongoClient

from tidings.app.embedded import secantus, valkey
from tidings.app.resources import DOCUMENT_MODELS, open_mongo
from tidings.app.settings import Settings

from .servers import SECRET_KEY


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
    """Settings of one test: its own database and queue, so tests never see each other's data or tasks."""
    unique = uuid.uuid4().hex[:12]
    return Settings(
        mongodb_url=mongodb_url,
        redis_url=redis_url,
        mongodb_database=f"tidings_test_{unique}",
        queue_name=f"tidings:test:{unique}",
        secret_key=SECRET_KEY,  # type: ignore[arg-type]
        heartbeat_dir=tmp_path / "run",
        heartbeat_interval_seconds=0.5,
        _env_file=None,  # type: ignore[call-arg]
    )


@pytest.fixture
async def database(settings: Settings) -> AsyncIterator[AsyncMongoClient[dict[str, Any]]]:
    """Beanie initialised on the test's own database, dropped afterwards."""
    client = open_mongo(settings)
    await init_beanie(database=client[settings.mongodb_database], document_models=DOCUMENT_MODELS)
    yield client
    await client.drop_database(settings.mongodb_database)
    await client.close()
