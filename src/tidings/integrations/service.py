"""Domain functions for integrations: create, read, list, update, delete, and the one-primary-per-channel rule.

A channel's primary integration is the one deliveries use first. There is at most one per (environment, channel),
which a unique partial index enforces; it is always active. The first active integration of a channel becomes
primary unless the client says otherwise, and when the primary is deactivated or deleted the oldest other active
integration of that channel takes over.

Both rules hold under concurrency: every write that changes `active` or `primary` matches only the state it was
computed from (otherwise the request reads again), and the index refuses a second primary. A create inserts the
record as not primary and promotes it afterwards, so a create that fails changes no other integration.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Collection
from datetime import datetime
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
from tidings.integrations.documents import IDENTIFIER_INDEX, PRIMARY_INDEX, Integration, in_failover_order
from tidings.integrations.providers import PROVIDERS, ProviderSpec

# Each retry follows a concurrent request that took the identifier or the primary role, or changed the record, in
# between; every round lets at least one of the colliding requests through.
_ATTEMPTS = 20


def _violates(error: DuplicateKeyError, index: str) -> bool:
    details = error.details or {}
    return index in str(details.get("errmsg", "")) or index in str(error)


async def get_integration(environment_id: PydanticObjectId, identifier: str) -> Integration:
    integration = await Integration.find_one({"environment_id": environment_id, "identifier": identifier})
    if integration is None:
        raise NotFoundError(f"no integration {identifier[:64]!r} in this environment", field="identifier")
    return integration


async def first_active_integration(
    environment_id: PydanticObjectId, provider_ids: Collection[str]
) -> Integration | None:
    """The active integration of these providers a send would try first."""
    query = {"environment_id": environment_id, "provider_id": {"$in": list(provider_ids)}, "active": True}
    ordered = in_failover_order(await Integration.find(query).to_list())
    return ordered[0] if ordered else None


async def integrations_by_identifier(
    environment_id: PydanticObjectId, identifiers: Collection[str]
) -> dict[str, Integration]:
    found = await Integration.find(
        {"environment_id": environment_id, "identifier": {"$in": list(identifiers)}}
    ).to_list()
    return {integration.identifier: integration for integration in found}


async def integrations_of_providers(
    environment_id: PydanticObjectId, provider_ids: Collection[str]
) -> list[Integration]:
    return await Integration.find(
        {"environment_id": environment_id, "provider_id": {"$in": list(provider_ids)}}
    ).to_list()


async def list_integrations(
    environment_id: PydanticObjectId, request: PageRequest, channel: Channel | None = None
) -> Page[Integration]:
    query: dict[str, Any] = {"environment_id": environment_id}
    if channel is not None:
        query["channel"] = channel.value
    return await paginate(Integration.find(query), request)


async def _free_identifier(environment_id: PydanticObjectId, base: str) -> str:
    """`base`, or `base-2`, `base-3`… whichever is first free in the environment."""
    # A range, not a `^` regex, so the identifier index serves it (SecantusDB scans for regexes): slugs hold only
    # [a-z0-9-], so [base, base + ".") is `base` and every `base-…`; the pattern then keeps `base-<number>`.
    pattern = re.compile(f"^{re.escape(base)}(-[0-9]+)?$")
    cursor = Integration.get_pymongo_collection().find(
        {"environment_id": environment_id, "identifier": {"$gte": base, "$lt": base + "."}},
        {"identifier": 1},
    )
    taken = {row["identifier"] async for row in cursor if pattern.match(row["identifier"])}
    if base not in taken:
        return base
    number = 2
    while f"{base}-{number}" in taken:
        number += 1
    return f"{base}-{number}"


async def _pause(attempt: int) -> None:
    """A little random wait before retrying, so requests that collided do not collide again in lockstep."""
    await asyncio.sleep(random.uniform(0, 0.002 * (attempt + 1)))  # noqa: S311 - jitter, not a secret


async def _clear_primary(environment_id: PydanticObjectId, channel: Channel, keep: PydanticObjectId | None) -> None:
    """Take the role from the channel's primary unless it is `keep`; the write matches only while it still is."""
    collection = Integration.get_pymongo_collection()
    current = await collection.find_one(
        {"environment_id": environment_id, "channel": channel.value, "primary": True}, {"_id": 1}
    )
    if current is not None and current["_id"] != keep:
        await collection.update_one(
            {"_id": current["_id"], "environment_id": environment_id, "primary": True},
            {"$set": {"primary": False, "updated_at": utcnow()}},
        )


async def _has_primary(environment_id: PydanticObjectId, channel: Channel) -> bool:
    query = {"environment_id": environment_id, "channel": channel.value, "primary": True}
    return await Integration.get_pymongo_collection().find_one(query, {"_id": 1}) is not None


async def _make_primary(
    environment_id: PydanticObjectId, integration_id: PydanticObjectId, now: datetime | None = None
) -> bool:
    """Promote one integration if it is still active and not primary; False if the channel has a primary or the
    integration changed meanwhile (the unique index refuses a second primary, however the requests interleave)."""
    try:
        result = await Integration.get_pymongo_collection().update_one(
            {"_id": integration_id, "environment_id": environment_id, "active": True, "primary": False},
            {"$set": {"primary": True, "updated_at": now or utcnow()}},
        )
    except DuplicateKeyError as error:
        if not _violates(error, PRIMARY_INDEX):
            raise
        return False
    return result.modified_count == 1


async def _take_primary(
    environment_id: PydanticObjectId, channel: Channel, integration_id: PydanticObjectId, now: datetime
) -> bool:
    """Make the integration its channel's primary, taking the role from another; False if it became inactive."""
    for attempt in range(_ATTEMPTS):
        await _clear_primary(environment_id, channel, keep=integration_id)
        if await _make_primary(environment_id, integration_id, now):
            return True
        state = await Integration.get_pymongo_collection().find_one(
            {"_id": integration_id, "environment_id": environment_id}, {"active": 1, "primary": 1}
        )
        if state is None or not state.get("active"):
            return False
        if state.get("primary"):
            return True
        await _pause(attempt)
    raise UnavailableError("too many concurrent changes to this channel's integrations; try again")


async def _promote_next(environment_id: PydanticObjectId, channel: Channel) -> None:
    """Make the oldest active integration of the channel primary, unless something already is."""
    for _ in range(_ATTEMPTS):
        candidate = await Integration.get_pymongo_collection().find_one(
            {"environment_id": environment_id, "channel": channel.value, "active": True, "primary": False},
            {"_id": 1},
            sort=[("_id", ASCENDING)],
        )
        if candidate is None or await _make_primary(environment_id, candidate["_id"]):
            return
        if await _has_primary(environment_id, channel):
            return  # another request made one meanwhile, which is all we wanted
        # The candidate was deactivated or deleted between the read and the write: try the next one.


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
        priority=command.priority,
        created_at=now,
        updated_at=now,
    )
    # Inserted as not primary, then promoted: a create that fails (a taken identifier) changes no other record.
    for attempt in range(_ATTEMPTS):
        try:
            await integration.insert()
            break
        except DuplicateKeyError as error:
            if not _violates(error, IDENTIFIER_INDEX):
                raise
            if command.identifier:
                raise AlreadyExistsError(
                    f"integration {command.identifier!r} already exists", field="input.identifier"
                ) from None
            integration.identifier = await _free_identifier(environment_id, spec.id)
            await _pause(attempt)
    else:
        raise UnavailableError("too many concurrent changes to this channel's integrations; try again")
    if command.primary:
        integration.primary = await _take_primary(environment_id, spec.channel, integration_id, now)
    elif command.primary is None and command.active:
        integration.primary = await _make_primary(environment_id, integration_id, now)
    return integration


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


def _changes(
    spec: ProviderSpec, integration: Integration, command: UpdateIntegration, cipher: Cipher
) -> dict[str, Any]:
    """The fields to set on `integration` as read; the role rules are checked against that state."""
    given = command.model_fields_set
    changes: dict[str, Any] = {name: getattr(command, name) for name in given & {"name", "active", "priority"}}
    if given & {"config", "credentials"}:
        changes.update(_changed_settings(spec, integration, command, cipher))
    active = changes.get("active", integration.active)
    primary = command.primary if "primary" in given else integration.primary
    if primary and not active:
        if command.primary:
            raise ValidationError("an inactive integration cannot be primary", field="input.primary")
        primary = False  # deactivating the primary hands the role on
    if primary != integration.primary:
        changes["primary"] = bool(primary)
    changes["updated_at"] = utcnow()
    return changes


async def update_integration(
    environment_id: PydanticObjectId, identifier: str, command: UpdateIntegration, cipher: Cipher
) -> Integration:
    """Change what the command gives; the provider (and so the channel) of an integration never changes.

    The write matches only while `active` and `primary` are as read: a concurrent change of either (another
    update, a takeover, a hand-over) makes it read again and re-check the rules, so a primary is always active.
    """
    collection = Integration.get_pymongo_collection()
    for attempt in range(_ATTEMPTS):
        integration = await get_integration(environment_id, identifier)
        changes = _changes(PROVIDERS[integration.provider_id], integration, command, cipher)
        if changes.get("primary"):
            await _clear_primary(environment_id, integration.channel, keep=integration.id)
        as_read = {"active": integration.active, "primary": integration.primary}
        try:
            result = await collection.update_one(
                {"_id": integration.id, "environment_id": environment_id, **as_read}, {"$set": changes}
            )
        except DuplicateKeyError as error:
            if not _violates(error, PRIMARY_INDEX):
                raise
            await _pause(attempt)  # another integration took the role after we cleared it
            continue
        if result.matched_count == 0:
            await _pause(attempt)  # changed (or deleted) since the read
            continue
        if integration.primary and not changes.get("active", integration.active):
            await _promote_next(environment_id, integration.channel)
        for name, value in changes.items():
            setattr(integration, name, value)
        return integration
    raise UnavailableError("too many concurrent changes to this channel's integrations; try again")


async def delete_integration(environment_id: PydanticObjectId, identifier: str) -> None:
    deleted = await Integration.get_pymongo_collection().find_one_and_delete(
        {"environment_id": environment_id, "identifier": identifier}, {"primary": 1, "channel": 1}
    )
    if deleted is None:
        raise NotFoundError(f"no integration {identifier[:64]!r} in this environment", field="identifier")
    if deleted.get("primary"):
        await _promote_next(environment_id, Channel(deleted["channel"]))
