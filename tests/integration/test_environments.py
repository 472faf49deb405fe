"""Environments and API keys: creation, lookup by key, idempotent dev seeding, and `tidings env create`."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from tests.servers import SECRET_KEY, role_env
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.core.errors import AlreadyExistsError, UnauthenticatedError, ValidationError
from tidings.core.ids import hash_secret
from tidings.environments.documents import Environment
from tidings.environments.service import authenticate_api_key, create_environment, ensure_environment

type Database = AsyncMongoClient[dict[str, Any]]


async def test_api_key_is_stored_only_as_its_hash(database: Database, settings: Settings) -> None:
    issued = await create_environment("production", cipher=Cipher(SECRET_KEY))
    raw = await database[settings.mongodb_database]["environments"].find_one({"name": "production"})
    assert raw is not None
    assert issued.api_key not in str(raw)
    assert raw["api_keys"][0]["hash"] == hash_secret(issued.api_key)
    assert (await authenticate_api_key(issued.api_key)).id == issued.environment.id


async def test_keys_select_their_own_environment(database: Database) -> None:
    first = await create_environment("first", cipher=Cipher(SECRET_KEY))
    second = await create_environment("second", cipher=Cipher(SECRET_KEY))
    assert (await authenticate_api_key(first.api_key)).name == "first"
    assert (await authenticate_api_key(second.api_key)).name == "second"
    with pytest.raises(UnauthenticatedError):
        await authenticate_api_key(first.api_key + "x")


async def test_duplicate_and_blank_names_are_refused(database: Database) -> None:
    await create_environment("staging", cipher=Cipher(SECRET_KEY))
    with pytest.raises(AlreadyExistsError) as duplicate:
        await create_environment("staging", cipher=Cipher(SECRET_KEY))
    assert duplicate.value.field == "name"
    with pytest.raises(ValidationError):
        await create_environment("   ", cipher=Cipher(SECRET_KEY))
    assert await Environment.find(Environment.name == "staging").count() == 1


async def test_ensure_environment_is_idempotent(database: Database) -> None:
    first = await ensure_environment("development", "tid_sk_one", cipher=Cipher(SECRET_KEY))
    again = await ensure_environment("development", "tid_sk_one", cipher=Cipher(SECRET_KEY))
    assert again.id == first.id
    assert len(again.api_keys) == 1
    with_second_key = await ensure_environment("development", "tid_sk_two", cipher=Cipher(SECRET_KEY))
    assert with_second_key.id == first.id
    assert (await authenticate_api_key("tid_sk_two")).id == first.id
    stored = await Environment.get(first.id)
    assert stored is not None
    assert len(stored.api_keys) == 2


def _env_create(settings: Settings, name: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tidings", "env", "create", name],
        env=role_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_env_create_prints_a_working_key_once(database: Database, settings: Settings) -> None:
    created = _env_create(settings, "production")
    assert created.returncode == 0, created.stderr
    match = re.search(r"^API key\s+(tid_sk_\S+)$", created.stdout, re.MULTILINE)
    assert match, created.stdout
    assert (await authenticate_api_key(match.group(1))).name == "production"

    repeated = _env_create(settings, "production")
    assert repeated.returncode == 1
    assert repeated.stderr.strip() == "tidings: environment 'production' already exists"
