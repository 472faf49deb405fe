"""Domain functions for environments: creation, API key issue and lookup."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from beanie import PydanticObjectId
from pymongo.errors import DuplicateKeyError

from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher, DecryptionError
from tidings.core.errors import AlreadyExistsError, UnauthenticatedError, UnavailableError, ValidationError
from tidings.core.ids import hash_secret, new_api_key, new_identifier
from tidings.environments.documents import ApiKey, Environment

MAX_NAME_LENGTH = 64
MAX_ROTATION_OVERLAP_SECONDS = 7 * 24 * 3600
# Each retry of a rotation follows another change of the keys that landed between its read and its write.
_ROTATION_ATTEMPTS = 20


@dataclass(frozen=True, slots=True)
class IssuedEnvironment:
    """An environment with the one plain-text API key that was just issued for it (shown once)."""

    environment: Environment
    api_key: str


def _sealed_owner(digest: str) -> str:
    return f"api-key:{digest}"


def _api_key_record(plain: str, cipher: Cipher) -> ApiKey:
    digest = hash_secret(plain)
    return ApiKey(hash=digest, hint=plain[-4:], sealed=cipher.encrypt(plain, owner=_sealed_owner(digest)))


def _check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValidationError(f"name must be 1 to {MAX_NAME_LENGTH} characters", field="name")
    return name


async def create_environment(name: str, *, cipher: Cipher, api_key: str | None = None) -> IssuedEnvironment:
    """Create an environment with one API key; pass `api_key` to register a key issued earlier."""
    plain = api_key or new_api_key()
    environment = Environment(
        name=_check_name(name),
        application_identifier=new_identifier(),
        api_keys=[_api_key_record(plain, cipher)],
    )
    try:
        await environment.insert()
    except DuplicateKeyError:
        raise AlreadyExistsError(f"environment {name!r} already exists", field="name") from None
    return IssuedEnvironment(environment=environment, api_key=plain)


def _at_version(environment_id: PydanticObjectId | None, version: int) -> dict[str, Any]:
    return {"_id": environment_id, "keys_version": version if version else {"$in": [0, None]}}


async def ensure_environment(name: str, api_key: str, *, cipher: Cipher) -> Environment:
    """Return the environment `name`, creating it with `api_key` or adding that key to it (idempotent).

    `tidings dev` starts with the key it saved, so that key must work again even after a rotation: one rotated out
    has its expiry cleared, and one dropped after it expired is added back.
    """
    record = _api_key_record(api_key, cipher)
    existing = await Environment.find_one(Environment.name == name)
    if existing is None:
        try:
            return (await create_environment(name, api_key=api_key, cipher=cipher)).environment
        except AlreadyExistsError:
            # Another process created it between our read and insert; fall through and add the key.
            existing = await Environment.find_one(Environment.name == name)
            assert existing is not None
    collection = Environment.get_pymongo_collection()
    known = next((key for key in existing.api_keys if key.hash == record.hash), None)
    if known is None:
        await collection.update_one(
            {"_id": existing.id, "api_keys.hash": {"$ne": record.hash}},
            {"$push": {"api_keys": record.model_dump()}, "$inc": {"keys_version": 1}},
        )
        existing.api_keys.append(record)
    elif known.sealed is None:
        # Issued before keys were sealed: seal it now, so subscriber HMACs made with it verify.
        await collection.update_one(
            {"_id": existing.id, "api_keys.hash": record.hash},
            {"$set": {"api_keys.$.sealed": record.sealed, "api_keys.$.expires_at": None}, "$inc": {"keys_version": 1}},
        )
        known.sealed, known.expires_at = record.sealed, None
    elif known.expires_at is not None:
        await collection.update_one(
            {"_id": existing.id, "api_keys.hash": record.hash},
            {"$set": {"api_keys.$.expires_at": None}, "$inc": {"keys_version": 1}},
        )
        known.expires_at = None
    return existing


def parse_api_key(authorization: str | None) -> str | None:
    """`Authorization: ApiKey <key>` (GraphQL and REST alike); anything else is no admin key at all."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "apikey" or not credentials.strip():
        return None
    return credentials.strip()


async def authenticate_api_key(api_key: str) -> Environment:
    digest = hash_secret(api_key)
    environment = await Environment.find_one({"api_keys.hash": digest})
    now = utcnow()
    if environment is None or not any(key.hash == digest and key.is_valid(now) for key in environment.api_keys):
        raise UnauthenticatedError("unknown or expired API key")
    return environment


async def rotate_api_key(environment: Environment, overlap_seconds: int, *, cipher: Cipher) -> IssuedEnvironment:
    """Issue a new key; every older key keeps working for `overlap_seconds` (0 revokes them now), then expires.

    The keys are rewritten only if they did not change since they were read (`keys_version`); otherwise the
    rotation reads them again. So concurrent rotations each add their key, as if they had run one after another.
    """
    if not 0 <= overlap_seconds <= MAX_ROTATION_OVERLAP_SECONDS:
        raise ValidationError(
            f"overlapSeconds must be between 0 and {MAX_ROTATION_OVERLAP_SECONDS}", field="overlapSeconds"
        )
    plain = new_api_key()
    record = _api_key_record(plain, cipher)
    for attempt in range(_ROTATION_ATTEMPTS):
        current = await Environment.get(environment.id)
        if current is None:
            raise UnauthenticatedError("unknown or expired API key")
        now = utcnow()
        expires_at = now + timedelta(seconds=overlap_seconds)
        # Keys already expired are dropped; the others expire at the end of the overlap (never later than before).
        kept = [
            key.model_copy(update={"expires_at": min(key.expires_at or expires_at, expires_at)})
            for key in current.api_keys
            if key.is_valid(now)
        ]
        keys = [*kept, record]
        result = await Environment.get_pymongo_collection().update_one(
            _at_version(current.id, current.keys_version),
            {"$set": {"api_keys": [key.model_dump() for key in keys]}, "$inc": {"keys_version": 1}},
        )
        if result.matched_count == 1:
            current.api_keys = keys
            current.keys_version += 1
            return IssuedEnvironment(environment=current, api_key=plain)
        await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter, not a secret
    raise UnavailableError("too many concurrent changes to this environment's API keys; try again")


def subscriber_hash_matches(environment: Environment, subscriber_id: str, given: str, cipher: Cipher) -> bool:
    """Whether `given` is HMAC-SHA256(one of the environment's valid secret keys, subscriber_id), in hex.

    Every valid key is tried, so subscriber hashes keep working through a key rotation's overlap."""
    now = utcnow()
    matched = False
    for key in environment.api_keys:
        if key.sealed is None or not key.is_valid(now):
            continue
        try:
            plain = cipher.decrypt(key.sealed, owner=_sealed_owner(key.hash))
        except DecryptionError:
            continue
        expected = hmac.new(plain.encode(), subscriber_id.encode(), hashlib.sha256).hexdigest()
        # No early return: the time taken doesn't tell which key (if any) matched.
        matched |= hmac.compare_digest(expected, given.lower())
    return matched


async def set_inbox_hmac_required(environment: Environment, required: bool) -> Environment:
    await Environment.get_pymongo_collection().update_one(
        {"_id": environment.id}, {"$set": {"inbox_hmac_required": required}}
    )
    environment.inbox_hmac_required = required
    return environment


async def environment_by_application_identifier(application_identifier: str) -> Environment | None:
    return await Environment.find_one(Environment.application_identifier == application_identifier)
