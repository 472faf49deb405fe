"""One-shot operator commands that need the database but no running role."""

from __future__ import annotations

from tidings.app.resources import open_database
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.environments.documents import Environment
from tidings.environments.service import IssuedEnvironment, create_environment, ensure_environment


async def create_environment_with_key(settings: Settings, name: str) -> IssuedEnvironment:
    async with open_database(settings):
        return await create_environment(name, cipher=Cipher(settings.require_secret_key()))


async def seed_environment(settings: Settings, name: str, api_key: str) -> Environment:
    async with open_database(settings):
        return await ensure_environment(name, api_key, cipher=Cipher(settings.require_secret_key()))
