"""Domain functions for environments: creation, API key issue and lookup."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.core.errors import AlreadyExistsError, UnauthenticatedError, ValidationError
from tidings.core.ids import hash_secret, new_api_key, new_identifier
from tidings.environments.documents import ApiKey, Environment

MAX_NAME_LENGTH = 64
MAX_ROTATION_OVERLAP_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class IssuedEnvironment:
    """An environment with the one plain-text API key that was just issued for it (shown once)."""

    environment: Environment
    api_key: str


def _api_key_record(plain: str) -> ApiKey:
    return ApiKey(hash=hash_secret(plain), hint=plain[-4:])


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    return name


async def create_environment(name: str, *, api_key: str | None = None) -> IssuedEnvironment:
    """Create an environment with one API key; pass `api_key` to register a key issued earlier."""
    plain = api_key or new_api_key()
    environment = Environment(
        name=_check_name(name),
        application_identifier=new_identifier(),
        api_keys=[_api_key_record(plain)],
    )
    try:
        await environment.insert()
    except DuplicateKeyError:
        raise AlreadyExistsError(f"environment {name!r} already exists", field="name") from None
    return IssuedEnvironment(environment=environment, api_key=plain)


async def ensure_environment(name: str, api_key: str) -> Environment:
    """Return the environment `name`, creating it with `api_key` or adding that key to it (idempotent)."""
    record = _api_key_record(api_key)
    existing = await Environment.find_one(Environment.name == name)
    if existing is None:
        try:
            return (await create_environment(name, api_key=api_key)).environment
        except AlreadyExistsError:
            # Another process created it between our read and insert; fall through and add the key.
            existing = await Environment.find_one(Environment.name == name)
            assert existing is not None
    if all(key.hash != record.hash for key in existing.api_keys):
        await Environment.get_pymongo_collection().update_one(
            {"_id": existing.id, "api_keys.hash": {"$ne": record.hash}},
            {"$push": {"api_keys": record.model_dump()}},
        )
        existing.api_keys.append(record)
    return existing


async def authenticate_api_key(api_key: str) -> Environment:
    digest = hash_secret(api_key)
    environment = await Environment.find_one({"api_keys.hash": digest})
    now = utcnow()
    if environment is None or not any(key.hash == digest and key.is_valid(now) for key in environment.api_keys):
        raise UnauthenticatedError("unknown or expired API key")
    return environment


async def rotate_api_key(environment: Environment, overlap_seconds: int) -> IssuedEnvironment:
    """Issue a new key; every older key keeps working for `overlap_seconds` (0 revokes them now), then expires."""
    if not 0 <= overlap_seconds <= MAX_ROTATION_OVERLAP_SECONDS:
        raise ValidationError(
            f"overlapSeconds must be between 0 and {MAX_ROTATION_OVERLAP_SECONDS}", field="overlapSeconds"
        )
    now = utcnow()
    expires_at = now + timedelta(seconds=overlap_seconds)
    plain = new_api_key()
    # Keys already expired are dropped; the others expire at the end of the overlap (never later than before).
    kept = [
        key.model_copy(update={"expires_at": min(key.expires_at or expires_at, expires_at)})
        for key in environment.api_keys
        if key.is_valid(now)
    ]
    keys = [*kept, _api_key_record(plain)]
    await Environment.get_pymongo_collection().update_one(
        {"_id": environment.id}, {"$set": {"api_keys": [key.model_dump() for key in keys]}}
    )
    environment.api_keys = keys
    return IssuedEnvironment(environment=environment, api_key=plain)
