"""Domain functions for integrations: create, read, list, update, delete, and the one-primary-per-channel rule.

A channel's primary integration is the one deliveries use first. There is at most one per (environment, channel),
which a unique partial index enforces; it is always active. The first active integration of a channel becomes
primary unless the client says otherwise, and when the primary is deactivated or deleted the oldest other active
integration of that channel takes over.
"""

from __future__ import annotations

import contextlib
import re
from typing import Any

from beanie import PydanticObjectId
from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from tidings.core.channels import Channel
from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher, DecryptionError
from tidings.core.errors import AlreadyExistsError, NotFoundError, UnavailableError, ValidationError
from tidings.core.pagination import Page, PageRequest, paginate
from tidings.core.validation import camel
from tidings.integrations.commands import CreateIntegration, UpdateIntegration
from tidings.integrations.credentials import (
    client_config,
    client_credentials,
    decrypt,
    encrypt,
    provider_spec,
    split_settings,
    validate_settings,
)
from tidings.integrations.documents import IDENTIFIER_INDEX, PRIMARY_INDEX, Integration
from tidings.integrations.providers import PROVIDERS, ProviderSpec

# Each retry follows a concurrent request that took the identifier or the primary role in between.
_ATTEMPTS = 5


def _violates(error: DuplicateKeyError, index: str) -> bool:
    details = error.details or {}
    return index in str(details.get("errmsg", "")) or index in str(error)


async def get_integration(environment_id: PydanticObjectId, identifier: str) -> Integration:
    integration = await Integration.find_one({"environment_id": environment_id, "identifier": identifier})
    if integration is None:
        raise NotFoundError(f"no integration {identifier[:64]!r} in this environment", field="identifier")
    return integration


async def list_integrations(
    environment_id: PydanticObjectId, request: PageRequest, channel: Channel | None = None
) -> Page[Integration]:
    query: dict[str, Any] = {"environment_id": environment_id}
    if channel is not None:
        query["channel"] = channel.value
    return await paginate(Integration.find(query), request)


async def _free_identifier(environment_id: PydanticObjectId, base: str) -> str:
    """`base`, or `base-2`, `base-3`… whichever is first free in the environment."""
    pattern = f"^{re.escape(base)}(-[0-9]+)?$"
    cursor = Integration.get_pymongo_collection().find(
        {"environment_id": environment_id, "identifier": {"$regex": pattern}}, {"identifier": 1}
    )
    taken = {row["identifier"] async for row in cursor}
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


async def _has_primary(environment_id: PydanticObjectId, channel: Channel) -> bool:
    query = {"environment_id": environment_id, "channel": channel.value, "primary": True}
    return await Integration.get_pymongo_collection().find_one(query, {"_id": 1}) is not None


async def _clear_primary(environment_id: PydanticObjectId, channel: Channel, keep: PydanticObjectId | None) -> None:
    await Integration.get_pymongo_collection().update_many(
        {"environment_id": environment_id, "channel": channel.value, "primary": True, "_id": {"$ne": keep}},
        {"$set": {"primary": False, "updated_at": utcnow()}},
    )


async def _promote_next(environment_id: PydanticObjectId, channel: Channel) -> None:
    """Make the oldest active integration of the channel primary, unless something already is."""
    collection = Integration.get_pymongo_collection()
    candidate = await collection.find_one(
        {"environment_id": environment_id, "channel": channel.value, "active": True, "primary": False},
        {"_id": 1},
        sort=[("_id", ASCENDING)],
    )
    if candidate is None:
        return
    # A duplicate key means another request made a primary meanwhile: the channel has one, which is all we wanted.
    with contextlib.suppress(DuplicateKeyError):
        await collection.update_one(
            {"_id": candidate["_id"], "environment_id": environment_id, "active": True},
            {"$set": {"primary": True, "updated_at": utcnow()}},
        )


async def create_integration(
    environment_id: PydanticObjectId, command: CreateIntegration, cipher: Cipher
) -> Integration:
    spec = provider_spec(command.provider_id)
    secrets = client_credentials(spec, command.credentials or {}, allow_null=False)
    settings = validate_settings(
        spec,
        client_config(spec, command.config or {}),
        {name: value for name, value in secrets.items() if value is not None},
    )
    if command.primary and not command.active:
        raise ValidationError("an inactive integration cannot be primary", field="input.primary")
    config, plaintext = split_settings(spec, settings)
    # The id exists before the insert because every ciphertext is bound to it.
    integration_id = PydanticObjectId()
    now = utcnow()
    integration = Integration(
        id=integration_id,
        environment_id=environment_id,
        identifier=command.identifier or await _free_identifier(environment_id, spec.id),
        name=command.name or spec.name,
        channel=spec.channel,
        provider_id=spec.id,
        config=config,
        credentials={name: encrypt(cipher, value, integration_id) for name, value in plaintext.items()},
        active=command.active,
        created_at=now,
        updated_at=now,
    )
    for _ in range(_ATTEMPTS):
        if command.primary:
            await _clear_primary(environment_id, spec.channel, keep=None)
            integration.primary = True
        else:
            integration.primary = (
                command.primary is None and command.active and not await _has_primary(environment_id, spec.channel)
            )
        try:
            await integration.insert()
        except DuplicateKeyError as error:
            if _violates(error, IDENTIFIER_INDEX):
                if command.identifier:
                    raise AlreadyExistsError(
                        f"integration {command.identifier!r} already exists", field="input.identifier"
                    ) from None
                integration.identifier = await _free_identifier(environment_id, spec.id)
            elif not _violates(error, PRIMARY_INDEX):
                raise
            continue
        return integration
    raise UnavailableError("too many concurrent changes to this channel's integrations; try again")


def _changed_settings(
    spec: ProviderSpec, integration: Integration, command: UpdateIntegration, cipher: Cipher
) -> dict[str, Any]:
    """New `config` and `credentials` for the stored document; unchanged secrets keep their ciphertext."""
    given = command.model_fields_set
    config = client_config(spec, command.config or {}) if "config" in given else dict(integration.config)
    changed = client_credentials(spec, command.credentials or {}, allow_null=True) if "credentials" in given else {}
    secrets: dict[str, str] = {}
    for name, ciphertext in integration.credentials.items():
        if name in changed:
            continue
        try:
            secrets[name] = decrypt(cipher, ciphertext, integration.id)
        except DecryptionError:
            raise ValidationError(
                "the stored secret can no longer be decrypted (was the secret key changed?); send it again",
                field=f"input.credentials.{camel(name)}",
            ) from None
    secrets.update({name: value for name, value in changed.items() if value is not None})
    new_config, plaintext = split_settings(spec, validate_settings(spec, config, secrets))
    credentials = {
        name: integration.credentials[name]
        if name in integration.credentials and name not in changed
        else encrypt(cipher, value, integration.id)
        for name, value in plaintext.items()
    }
    return {"config": new_config, "credentials": credentials}


async def update_integration(
    environment_id: PydanticObjectId, identifier: str, command: UpdateIntegration, cipher: Cipher
) -> Integration:
    """Change what the command gives; the provider (and so the channel) of an integration never changes."""
    integration = await get_integration(environment_id, identifier)
    spec = PROVIDERS[integration.provider_id]
    given = command.model_fields_set
    changes: dict[str, Any] = {name: getattr(command, name) for name in given & {"name", "active"}}
    if given & {"config", "credentials"}:
        changes.update(_changed_settings(spec, integration, command, cipher))
    active = changes.get("active", integration.active)
    primary = command.primary if "primary" in given else integration.primary
    if primary and not active:
        if command.primary:
            raise ValidationError("an inactive integration cannot be primary", field="input.primary")
        primary = False  # deactivating the primary hands the role on (below)
    if primary != integration.primary:
        changes["primary"] = bool(primary)
    changes["updated_at"] = utcnow()
    for _ in range(_ATTEMPTS):
        if primary and not integration.primary:
            await _clear_primary(environment_id, integration.channel, keep=integration.id)
        try:
            result = await Integration.get_pymongo_collection().update_one(
                {"_id": integration.id, "environment_id": environment_id}, {"$set": changes}
            )
        except DuplicateKeyError as error:
            if not _violates(error, PRIMARY_INDEX):
                raise
            continue
        if result.matched_count == 0:
            raise NotFoundError(f"no integration {identifier[:64]!r} in this environment", field="identifier")
        break
    else:
        raise UnavailableError("too many concurrent changes to this channel's integrations; try again")
    if integration.primary and not active:
        await _promote_next(environment_id, integration.channel)
    for name, value in changes.items():
        setattr(integration, name, value)
    return integration


async def delete_integration(environment_id: PydanticObjectId, identifier: str) -> None:
    deleted = await Integration.get_pymongo_collection().find_one_and_delete(
        {"environment_id": environment_id, "identifier": identifier}, {"primary": 1, "channel": 1}
    )
    if deleted is None:
        raise NotFoundError(f"no integration {identifier[:64]!r} in this environment", field="identifier")
    if deleted.get("primary"):
        await _promote_next(environment_id, Channel(deleted["channel"]))
