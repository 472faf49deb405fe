"""API keys over GraphQL: rotation with an overlap window, revocation, and what the API shows of keys."""

from __future__ import annotations

import asyncio

import httpx
from beanie import PydanticObjectId

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY
from tidings.core.crypto import Cipher
from tidings.core.ids import hash_secret, new_api_key
from tidings.environments.documents import Environment
from tidings.environments.service import create_environment, ensure_environment

ROTATE = (
    "mutation($o: Int!) { rotateApiKey(overlapSeconds: $o) { apiKey environment { id apiKeys { hint expiresAt } } } }"
)
WHO = "{ currentEnvironment { id name apiKeys { hint createdAt expiresAt } } }"


async def _fresh(client: httpx.AsyncClient, name: str) -> tuple[GraphQL, PydanticObjectId]:
    """A new environment of our own (the module's `gql` fixture keeps Beanie open in this process)."""
    issued = await create_environment(name, cipher=Cipher(SECRET_KEY))
    assert issued.environment.id is not None
    return GraphQL(client, issued.api_key), issued.environment.id


async def test_rotation_keeps_the_old_key_for_the_overlap_then_not(gql: GraphQL) -> None:
    client = gql.client
    old, environment_id = await _fresh(client, "rotating")
    rotated = (await old.data(ROTATE, o=1))["rotateApiKey"]
    new = GraphQL(client, rotated["apiKey"])
    assert rotated["apiKey"] != old.api_key
    assert rotated["environment"]["id"] == str(environment_id)
    hints = rotated["environment"]["apiKeys"]
    assert old.api_key is not None
    assert [key["hint"] for key in hints] == [old.api_key[-4:], rotated["apiKey"][-4:]]
    assert hints[0]["expiresAt"] is not None
    assert hints[1]["expiresAt"] is None

    assert (await old.data(WHO))["currentEnvironment"]["name"] == "rotating"  # inside the overlap
    assert (await new.data(WHO))["currentEnvironment"]["name"] == "rotating"
    await asyncio.sleep(1.2)
    assert (await old.error(WHO))["code"] == "UNAUTHENTICATED"
    assert (await new.data(WHO))["currentEnvironment"]["id"] == str(environment_id)


async def test_overlap_zero_revokes_at_once_and_bounds_are_checked(gql: GraphQL) -> None:
    client = gql.client
    old, _ = await _fresh(client, "revoking")
    rotated = (await old.data(ROTATE, o=0))["rotateApiKey"]
    assert (await old.error(WHO))["code"] == "UNAUTHENTICATED"
    new = GraphQL(client, rotated["apiKey"])
    keys = (await new.data(WHO))["currentEnvironment"]["apiKeys"]
    assert [key["hint"] for key in keys] == [rotated["apiKey"][-4:]]  # the revoked key is gone from the list
    for bad in (-1, 7 * 24 * 3600 + 1):
        error = await new.error(ROTATE, o=bad)
        assert (error["code"], error["field"]) == ("VALIDATION", "overlapSeconds")
    assert (await new.data(WHO))["currentEnvironment"]["name"] == "revoking"  # a refused rotation changes nothing


async def test_rotating_one_environment_leaves_the_others_alone(gql: GraphQL, other: GraphQL) -> None:
    before = (await other.data(WHO))["currentEnvironment"]
    fresh = GraphQL(gql.client, (await gql.data(ROTATE, o=3600))["rotateApiKey"]["apiKey"])
    assert (await fresh.data(WHO))["currentEnvironment"]["name"] == "alpha"
    assert (await other.data(WHO))["currentEnvironment"] == before


async def test_no_key_material_is_ever_returned(gql: GraphQL) -> None:
    body = await gql(WHO)
    assert gql.api_key is not None
    assert gql.api_key not in str(body)
    assert gql.api_key[:-4] not in str(body)


async def test_parallel_rotations_each_hand_out_a_working_key(gql: GraphQL) -> None:
    client = gql.client
    for round_number in range(3):
        old, _ = await _fresh(client, f"parallel-{round_number}")
        rotated = await asyncio.gather(*(old.data(ROTATE, o=3600) for _ in range(6)))
        keys = [result["rotateApiKey"]["apiKey"] for result in rotated]
        assert len(set(keys)) == 6
        for key in [*keys, old.api_key]:
            assert (await GraphQL(client, key).data(WHO))["currentEnvironment"]["name"] == f"parallel-{round_number}"
        listed = (await GraphQL(client, keys[0]).data(WHO))["currentEnvironment"]["apiKeys"]
        assert len(listed) == 7
        assert sum(key["expiresAt"] is None for key in listed) == 1  # the last rotation's key, and only it


async def test_the_dev_key_works_again_when_dev_starts_with_it(gql: GraphQL) -> None:
    """`tidings dev` calls `ensure_environment` with the key it saved, even after that key was rotated out."""
    client = gql.client
    dev_key = new_api_key()
    await ensure_environment("dev-revival", dev_key, cipher=Cipher(SECRET_KEY))
    dev = GraphQL(client, dev_key)
    rotated = GraphQL(client, (await dev.data(ROTATE, o=0))["rotateApiKey"]["apiKey"])
    assert (await dev.error(WHO))["code"] == "UNAUTHENTICATED"

    await ensure_environment("dev-revival", dev_key, cipher=Cipher(SECRET_KEY))  # rotated out: its expiry is cleared
    assert (await dev.data(WHO))["currentEnvironment"]["name"] == "dev-revival"
    assert (await rotated.data(WHO))["currentEnvironment"]["name"] == "dev-revival"

    # Rotated out twice: the second rotation drops the expired key altogether; dev adds it back.
    first = GraphQL(client, (await dev.data(ROTATE, o=0))["rotateApiKey"]["apiKey"])
    await first.data(ROTATE, o=0)
    stored = await Environment.find_one(Environment.name == "dev-revival")
    assert stored is not None
    assert hash_secret(dev_key) not in [key.hash for key in stored.api_keys]
    assert (await dev.error(WHO))["code"] == "UNAUTHENTICATED"
    await ensure_environment("dev-revival", dev_key, cipher=Cipher(SECRET_KEY))
    keys = (await dev.data(WHO))["currentEnvironment"]["apiKeys"]
    assert {"hint": dev_key[-4:], "expiresAt": None} in [{"hint": k["hint"], "expiresAt": k["expiresAt"]} for k in keys]
