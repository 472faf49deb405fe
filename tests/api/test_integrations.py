"""Integrations over real HTTP: CRUD, encrypted credentials, the one-primary rule, errors and environment isolation."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from pymongo.errors import DuplicateKeyError

from tests.servers import SECRET_KEY, RoleProcess, api_process, beanie_database, isolated_settings
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher, DecryptionError
from tidings.environments.service import IssuedEnvironment, create_environment
from tidings.integrations.credentials import decrypted_settings
from tidings.integrations.documents import PRIMARY_INDEX, Integration
from tidings.integrations.providers import SlackWebhookSettings, SmtpSettings

FIELDS = "identifier name channel providerId config credentialKeys active primary createdAt updatedAt"
CREATE = f"mutation($input: CreateIntegrationInput!) {{ createIntegration(input: $input) {{ {FIELDS} }} }}"
UPDATE = (
    "mutation($identifier: String!, $input: UpdateIntegrationInput!) "
    f"{{ updateIntegration(identifier: $identifier, input: $input) {{ {FIELDS} }} }}"
)
DELETE = "mutation($identifier: String!) { deleteIntegration(identifier: $identifier) }"
GET = f"query($identifier: String!) {{ integration(identifier: $identifier) {{ {FIELDS} }} }}"
LIST = (
    "query($channel: Channel, $first: Int, $after: String) { integrations(channel: $channel, first: $first, "
    "after: $after) { edges { cursor node { identifier primary } } pageInfo { hasNextPage endCursor } } }"
)

PASSWORD = "smtp-password-plaintext-7f3a"
SIGNING = "webhook-signing-secret-91bc"
SLACK_URL = "https://hooks.slack.com/services/T000/B000/slack-token-5d2e"
SMTP_CONFIG = {"host": "smtp.example.com", "fromEmail": "news@example.com", "fromName": "News"}


@pytest.fixture(scope="module")
def api_settings(mongodb_url: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return isolated_settings(mongodb_url, redis_url, tmp_path_factory.mktemp("api-integrations"))


@pytest.fixture(scope="module")
def api(api_settings: Settings) -> Iterator[tuple[RoleProcess, str]]:
    process, base = api_process(api_settings, api_settings.heartbeat_dir.parent / "api.log")
    yield process, base
    assert process.stop() in (0, -signal.SIGTERM), process.output()


@pytest.fixture
async def client(api: tuple[RoleProcess, str]) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=api[1], timeout=10) as http:
        yield http


@pytest.fixture(scope="module")
async def database(api_settings: Settings) -> AsyncIterator[None]:
    """Beanie on the API's database in this process too, to create environments and read raw documents."""
    async with beanie_database(api_settings):
        yield


@pytest.fixture
async def env(database: None) -> IssuedEnvironment:
    """A fresh environment per test, so primaries and generated identifiers start from nothing."""
    return await create_environment(f"env-{uuid.uuid4().hex[:10]}", cipher=Cipher(SECRET_KEY))


@pytest.fixture
async def other(database: None) -> IssuedEnvironment:
    return await create_environment(f"other-{uuid.uuid4().hex[:10]}", cipher=Cipher(SECRET_KEY))


async def gql(client: httpx.AsyncClient, query: str, api_key: str | None, **variables: Any) -> dict[str, Any]:
    headers = {"Authorization": f"ApiKey {api_key}"} if api_key else {}
    response = await client.post("/graphql", json={"query": query, "variables": variables}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def ok(client: httpx.AsyncClient, query: str, api_key: str, **variables: Any) -> Any:
    body = await gql(client, query, api_key, **variables)
    assert "errors" not in body, body["errors"]
    return next(iter(body["data"].values()))


async def error(client: httpx.AsyncClient, query: str, api_key: str | None, **variables: Any) -> dict[str, Any]:
    body = await gql(client, query, api_key, **variables)
    assert body.get("data") is None, body
    assert len(body["errors"]) == 1
    extensions: dict[str, Any] = body["errors"][0]["extensions"]
    return {"message": body["errors"][0]["message"], **extensions}


async def create(client: httpx.AsyncClient, api_key: str, **input: Any) -> Any:
    return await ok(client, CREATE, api_key, input=input)


async def create_smtp(client: httpx.AsyncClient, api_key: str, **extra: Any) -> Any:
    return await create(
        client, api_key, providerId="smtp", config=SMTP_CONFIG, credentials={"password": PASSWORD}, **extra
    )


async def stored(env: IssuedEnvironment, identifier: str) -> Integration:
    integration = await Integration.find_one({"environment_id": env.environment.id, "identifier": identifier})
    assert integration is not None
    return integration


async def raw(env: IssuedEnvironment, identifier: str) -> dict[str, Any]:
    document: dict[str, Any] | None = await Integration.get_pymongo_collection().find_one(
        {"environment_id": env.environment.id, "identifier": identifier}
    )
    assert document is not None
    return document


async def primaries(env: IssuedEnvironment, channel: str) -> list[str]:
    cursor = Integration.get_pymongo_collection().find(
        {"environment_id": env.environment.id, "channel": channel, "primary": True}
    )
    return [row["identifier"] async for row in cursor]


# --- create and read --------------------------------------------------------------------------------------------


async def test_create_smtp_shows_config_and_credential_keys_but_never_the_secret(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": CREATE,
            "variables": {
                "input": {"providerId": "smtp", "config": SMTP_CONFIG, "credentials": {"password": PASSWORD}}
            },
        },
        headers={"Authorization": f"ApiKey {env.api_key}"},
    )
    assert PASSWORD not in response.text
    created = response.json()["data"]["createIntegration"]
    assert created["identifier"] == "smtp"
    assert created["name"] == "SMTP"
    assert created["channel"] == "EMAIL"
    assert created["providerId"] == "smtp"
    assert created["config"] == {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "fromEmail": "news@example.com",
        "fromName": "News",
        "timeoutSeconds": 10,
    }
    assert created["credentialKeys"] == ["password"]
    assert created["active"] is True
    assert created["primary"] is True  # first of its channel
    assert created["createdAt"] == created["updatedAt"]

    fetched = await ok(client, GET, env.api_key, identifier="smtp")
    assert fetched == created


async def test_raw_document_holds_only_ciphertext_and_decrypts_for_the_engine(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    await create_smtp(client, env.api_key)
    await create(client, env.api_key, providerId="slack-webhook", credentials={"webhookUrl": SLACK_URL})
    await create(
        client,
        env.api_key,
        providerId="webhook",
        config={"url": "https://example.com/h"},
        credentials={"signingSecret": SIGNING},
    )
    for identifier, secret in (("smtp", PASSWORD), ("slack-webhook", SLACK_URL), ("webhook", SIGNING)):
        document = await raw(env, identifier)
        assert secret not in str(document)
        assert all(value.startswith("v1.") for value in document["credentials"].values())

    cipher = Cipher(SECRET_KEY)
    smtp = decrypted_settings(await stored(env, "smtp"), cipher)
    assert isinstance(smtp, SmtpSettings)
    assert smtp.password is not None
    assert smtp.password.get_secret_value() == PASSWORD
    assert (smtp.host, smtp.port, smtp.from_email, smtp.from_name) == (
        "smtp.example.com",
        587,
        "news@example.com",
        "News",
    )
    slack = decrypted_settings(await stored(env, "slack-webhook"), cipher)
    assert isinstance(slack, SlackWebhookSettings)
    assert slack.webhook_url.get_secret_value() == SLACK_URL


async def test_moved_or_tampered_ciphertext_does_not_decrypt(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    await create_smtp(client, env.api_key)
    await create_smtp(client, env.api_key)
    cipher = Cipher(SECRET_KEY)
    first, second = await stored(env, "smtp"), await stored(env, "smtp-2")

    moved = second.model_copy(update={"credentials": {"password": first.credentials["password"]}})
    with pytest.raises(DecryptionError):
        decrypted_settings(moved, cipher)

    sealed = first.credentials["password"]
    flipped = sealed[:-4] + ("A" if sealed[-4] != "A" else "B") + sealed[-3:]
    with pytest.raises(DecryptionError):
        decrypted_settings(first.model_copy(update={"credentials": {"password": flipped}}), cipher)

    with pytest.raises(DecryptionError):
        decrypted_settings(first, Cipher("another-secret-key-of-at-least-32-chars"))


async def test_identifiers_are_generated_from_the_provider_and_unique_per_environment(
    client: httpx.AsyncClient, env: IssuedEnvironment, other: IssuedEnvironment
) -> None:
    assert (await create_smtp(client, env.api_key))["identifier"] == "smtp"
    assert (await create_smtp(client, env.api_key))["identifier"] == "smtp-2"
    assert (await create_smtp(client, env.api_key, identifier="smtp-3"))["identifier"] == "smtp-3"
    assert (await create_smtp(client, env.api_key))["identifier"] == "smtp-4"
    assert (await create(client, env.api_key, providerId="in-app"))["identifier"] == "in-app"

    duplicate = await error(client, CREATE, env.api_key, input={"providerId": "in-app", "identifier": "smtp-2"})
    assert (duplicate["code"], duplicate["field"]) == ("ALREADY_EXISTS", "input.identifier")
    # Identifiers are per environment: the same one is free elsewhere.
    assert (await create_smtp(client, other.api_key, identifier="smtp-2"))["identifier"] == "smtp-2"


async def test_in_app_has_no_settings_and_custom_name(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    created = await create(client, env.api_key, providerId="in-app", name="  Inbox  ", identifier="inbox")
    assert (created["channel"], created["config"], created["credentialKeys"]) == ("IN_APP", {}, [])
    assert created["name"] == "Inbox"


# --- list --------------------------------------------------------------------------------------------------------


async def test_list_pages_in_creation_order_and_filters_by_channel(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    for _ in range(3):
        await create_smtp(client, env.api_key)
    await create(client, env.api_key, providerId="slack-webhook", credentials={"webhookUrl": SLACK_URL})
    await create(client, env.api_key, providerId="in-app")

    first = await ok(client, LIST, env.api_key, first=2)
    assert [edge["node"]["identifier"] for edge in first["edges"]] == ["smtp", "smtp-2"]
    assert first["pageInfo"]["hasNextPage"] is True
    rest = await ok(client, LIST, env.api_key, first=10, after=first["pageInfo"]["endCursor"])
    assert [edge["node"]["identifier"] for edge in rest["edges"]] == ["smtp-3", "slack-webhook", "in-app"]
    assert rest["pageInfo"]["hasNextPage"] is False

    email = await ok(client, LIST, env.api_key, channel="EMAIL")
    assert [edge["node"] for edge in email["edges"]] == [
        {"identifier": "smtp", "primary": True},
        {"identifier": "smtp-2", "primary": False},
        {"identifier": "smtp-3", "primary": False},
    ]
    chat = await ok(client, LIST, env.api_key, channel="CHAT")
    assert [edge["node"]["identifier"] for edge in chat["edges"]] == ["slack-webhook"]
    assert (await ok(client, LIST, env.api_key, channel="SMS"))["edges"] == []


@pytest.mark.parametrize(
    ("variables", "field"), [({"first": 0}, "first"), ({"first": 101}, "first"), ({"after": "not-a-cursor"}, "after")]
)
async def test_list_refuses_bad_page_requests(
    client: httpx.AsyncClient, env: IssuedEnvironment, variables: dict[str, Any], field: str
) -> None:
    failure = await error(client, LIST, env.api_key, **variables)
    assert (failure["code"], failure["field"]) == ("VALIDATION", field)


# --- update ------------------------------------------------------------------------------------------------------


async def test_update_replaces_config_and_merges_credentials(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    await create(
        client,
        env.api_key,
        providerId="webhook",
        config={"url": "https://example.com/a", "timeoutSeconds": 30},
        credentials={"signingSecret": SIGNING},
    )
    before = await raw(env, "webhook")

    renamed = await ok(client, UPDATE, env.api_key, identifier="webhook", input={"name": "Ops hook"})
    assert renamed["name"] == "Ops hook"
    assert renamed["config"] == {"url": "https://example.com/a", "timeoutSeconds": 30}
    assert renamed["updatedAt"] >= renamed["createdAt"]

    # config replaces: timeoutSeconds not sent returns to its default; the secret is untouched (same ciphertext).
    replaced = await ok(client, UPDATE, env.api_key, identifier="webhook", input={"config": {"url": "http://x.io/b"}})
    assert replaced["config"] == {"url": "http://x.io/b", "timeoutSeconds": 10}
    assert replaced["credentialKeys"] == ["signingSecret"]
    assert (await raw(env, "webhook"))["credentials"] == before["credentials"]

    rotated = await ok(
        client, UPDATE, env.api_key, identifier="webhook", input={"credentials": {"signingSecret": "new-secret-0042"}}
    )
    assert rotated["credentialKeys"] == ["signingSecret"]
    settings = decrypted_settings(await stored(env, "webhook"), Cipher(SECRET_KEY))
    assert getattr(settings, "signing_secret").get_secret_value() == "new-secret-0042"  # noqa: B009
    assert "new-secret-0042" not in str(await raw(env, "webhook"))

    removed = await ok(
        client, UPDATE, env.api_key, identifier="webhook", input={"credentials": {"signingSecret": None}}
    )
    assert removed["credentialKeys"] == []
    assert (await raw(env, "webhook"))["credentials"] == {}
    assert (await ok(client, GET, env.api_key, identifier="webhook"))["config"]["url"] == "http://x.io/b"


async def test_update_validates_the_merged_settings(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    await create(client, env.api_key, providerId="slack-webhook", credentials={"webhookUrl": SLACK_URL})
    await create_smtp(client, env.api_key)
    cases = [
        ("slack-webhook", {"credentials": {"webhookUrl": None}}, "input.credentials.webhookUrl"),
        ("slack-webhook", {"config": {"webhookUrl": SLACK_URL}}, "input.config.webhookUrl"),
        ("smtp", {"config": {"host": "smtp.example.com"}}, "input.config.fromEmail"),
        ("smtp", {"credentials": {"fromEmail": "a@example.com"}}, "input.credentials.fromEmail"),
        ("smtp", {"name": None}, "input.name"),
        ("smtp", {"name": "n" * 65}, "input.name"),
        ("smtp", {"config": "host=x"}, "input.config"),
    ]
    for identifier, input, field in cases:
        failure = await error(client, UPDATE, env.api_key, identifier=identifier, input=input)
        assert (failure["code"], failure["field"]) == ("VALIDATION", field), (input, failure)
        assert SLACK_URL not in failure["message"]
    # Nothing was changed by the refused updates.
    assert (await ok(client, GET, env.api_key, identifier="slack-webhook"))["credentialKeys"] == ["webhookUrl"]
    assert (await ok(client, GET, env.api_key, identifier="smtp"))["config"]["host"] == "smtp.example.com"


async def test_the_provider_cannot_change(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    await create_smtp(client, env.api_key)
    change = 'mutation { updateIntegration(identifier: "smtp", input: {providerId: "webhook"}) { providerId } }'
    failure = await error(client, change, env.api_key)
    assert failure["code"] == "GRAPHQL_VALIDATION"
    assert "providerId" in failure["message"]
    assert (await ok(client, GET, env.api_key, identifier="smtp"))["providerId"] == "smtp"


async def test_a_secret_that_no_longer_decrypts_must_be_sent_again(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    await create_smtp(client, env.api_key)
    await Integration.get_pymongo_collection().update_one(
        {"environment_id": env.environment.id, "identifier": "smtp"}, {"$set": {"credentials.password": "v1.AAAA"}}
    )
    failure = await error(client, UPDATE, env.api_key, identifier="smtp", input={"config": {**SMTP_CONFIG, "port": 25}})
    assert (failure["code"], failure["field"]) == ("VALIDATION", "input.credentials.password")
    resent = await ok(
        client,
        UPDATE,
        env.api_key,
        identifier="smtp",
        input={"config": {**SMTP_CONFIG, "port": 25}, "credentials": {"password": "fresh-password"}},
    )
    assert resent["config"]["port"] == 25
    settings = decrypted_settings(await stored(env, "smtp"), Cipher(SECRET_KEY))
    assert getattr(settings, "password").get_secret_value() == "fresh-password"  # noqa: B009


# --- primary and active ------------------------------------------------------------------------------------------


async def test_one_primary_per_channel(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    assert (await create_smtp(client, env.api_key))["primary"] is True
    assert (await create_smtp(client, env.api_key))["primary"] is False
    # Another channel gets its own primary.
    assert (await create(client, env.api_key, providerId="in-app"))["primary"] is True
    assert await primaries(env, "email") == ["smtp"]

    taken = await create_smtp(client, env.api_key, primary=True)
    assert (taken["identifier"], taken["primary"]) == ("smtp-3", True)
    assert await primaries(env, "email") == ["smtp-3"]

    moved = await ok(client, UPDATE, env.api_key, identifier="smtp-2", input={"primary": True})
    assert moved["primary"] is True
    assert await primaries(env, "email") == ["smtp-2"]
    assert (await ok(client, GET, env.api_key, identifier="smtp-3"))["primary"] is False
    assert await primaries(env, "in_app") == ["in-app"]

    cleared = await ok(client, UPDATE, env.api_key, identifier="smtp-2", input={"primary": False})
    assert cleared["primary"] is False
    assert await primaries(env, "email") == []
    # With no primary left, the next integration created for the channel takes the role.
    assert (await create_smtp(client, env.api_key))["primary"] is True


async def test_explicitly_not_primary_and_inactive_integrations(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    assert (await create_smtp(client, env.api_key, primary=False))["primary"] is False
    inactive = await create_smtp(client, env.api_key, active=False)
    assert (inactive["active"], inactive["primary"]) == (False, False)
    failure = await error(
        client,
        CREATE,
        env.api_key,
        input={"providerId": "in-app", "active": False, "primary": True},
    )
    assert (failure["code"], failure["field"]) == ("VALIDATION", "input.primary")
    refused = await error(client, UPDATE, env.api_key, identifier="smtp-2", input={"primary": True})
    assert (refused["code"], refused["field"]) == ("VALIDATION", "input.primary")
    assert await primaries(env, "email") == []


async def test_deactivating_or_deleting_the_primary_hands_the_role_on(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    await create_smtp(client, env.api_key)  # smtp: primary
    await create_smtp(client, env.api_key, active=False)  # smtp-2: inactive, never promoted
    await create_smtp(client, env.api_key)  # smtp-3
    await create_smtp(client, env.api_key)  # smtp-4

    deactivated = await ok(client, UPDATE, env.api_key, identifier="smtp", input={"active": False})
    assert (deactivated["active"], deactivated["primary"]) == (False, False)
    assert await primaries(env, "email") == ["smtp-3"]

    assert await ok(client, DELETE, env.api_key, identifier="smtp-3") is True
    assert await primaries(env, "email") == ["smtp-4"]

    assert await ok(client, DELETE, env.api_key, identifier="smtp-4") is True
    assert await primaries(env, "email") == []  # only inactive ones are left
    reactivated = await ok(client, UPDATE, env.api_key, identifier="smtp-2", input={"active": True, "primary": True})
    assert (reactivated["active"], reactivated["primary"]) == (True, True)


async def test_concurrent_creates_and_takeovers_leave_exactly_one_primary(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    created = await asyncio.gather(*(create_smtp(client, env.api_key) for _ in range(6)))
    assert sorted(item["identifier"] for item in created) == ["smtp", *(f"smtp-{n}" for n in range(2, 7))]
    assert sum(item["primary"] for item in created) == 1
    takeovers = await asyncio.gather(
        *(ok(client, UPDATE, env.api_key, identifier=item["identifier"], input={"primary": True}) for item in created)
    )
    assert all(item["primary"] for item in takeovers)
    assert len(await primaries(env, "email")) == 1


async def _invariant(env: IssuedEnvironment, channel: str) -> None:
    """At most one primary in the channel, and every primary is active."""
    cursor = Integration.get_pymongo_collection().find(
        {"environment_id": env.environment.id, "channel": channel, "primary": True}
    )
    rows = [row async for row in cursor]
    assert len(rows) <= 1, rows
    assert all(row["active"] for row in rows), rows


async def test_concurrent_deactivation_and_takeover_keep_a_primary_active(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    await create_smtp(client, env.api_key, identifier="main")  # primary
    await create_smtp(client, env.api_key, identifier="spare")
    for _ in range(20):
        outcomes = await asyncio.gather(
            gql(client, UPDATE, env.api_key, identifier="spare", input={"active": False}),
            gql(client, UPDATE, env.api_key, identifier="spare", input={"primary": True}),
        )
        for body in outcomes:
            # Either order is fine; making an integration primary that was just deactivated is refused.
            for failure in body.get("errors", []):
                extensions = failure["extensions"]
                assert (extensions["code"], extensions["field"]) == ("VALIDATION", "input.primary")
        await _invariant(env, "email")
        spare = await raw(env, "spare")
        assert not (spare["primary"] and not spare["active"]), spare
        await ok(client, UPDATE, env.api_key, identifier="spare", input={"active": True, "primary": False})
        await ok(client, UPDATE, env.api_key, identifier="main", input={"active": True, "primary": True})


async def test_concurrent_takeovers_creates_and_deletes_keep_the_invariant(
    client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    await create_smtp(client, env.api_key, identifier="a")
    await create_smtp(client, env.api_key, identifier="b")
    for round_number in range(10):
        extra = f"extra-{round_number}"
        await asyncio.gather(
            gql(client, UPDATE, env.api_key, identifier="a", input={"primary": True}),
            gql(client, UPDATE, env.api_key, identifier="b", input={"primary": True}),
            gql(client, UPDATE, env.api_key, identifier="a", input={"active": False}),
            gql(client, CREATE, env.api_key, input={"providerId": "in-app", "identifier": "x"}),
            create_smtp(client, env.api_key, identifier=extra, primary=True),
            gql(client, DELETE, env.api_key, identifier=extra),
        )
        await _invariant(env, "email")
        await ok(client, UPDATE, env.api_key, identifier="a", input={"active": True})


async def test_a_refused_create_leaves_the_primary_in_place(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    await create_smtp(client, env.api_key, identifier="main")
    taken = await error(client, CREATE, env.api_key, input={"providerId": "smtp", "identifier": "main", "primary": True,
                                                            "config": SMTP_CONFIG})  # fmt: skip
    assert (taken["code"], taken["field"]) == ("ALREADY_EXISTS", "input.identifier")
    assert await primaries(env, "email") == ["main"]
    invalid = await error(
        client, CREATE, env.api_key, input={"providerId": "smtp", "primary": True, "config": {"host": "h"}}
    )
    assert invalid["code"] == "VALIDATION"
    assert await primaries(env, "email") == ["main"]
    listed = (await ok(client, LIST, env.api_key))["edges"]
    assert [(edge["node"]["identifier"], edge["node"]["primary"]) for edge in listed] == [("main", True)]


async def test_the_database_itself_refuses_a_second_primary(env: IssuedEnvironment) -> None:
    collection = Integration.get_pymongo_collection()
    indexes = {index["name"]: index for index in await (await collection.list_indexes()).to_list()}
    assert indexes[PRIMARY_INDEX]["unique"] is True
    assert indexes[PRIMARY_INDEX]["partialFilterExpression"] == {"primary": True}
    row = {"environment_id": env.environment.id, "channel": "sms", "primary": True}
    await collection.insert_one({**row, "identifier": "a"})
    await collection.insert_one({**row, "identifier": "b", "primary": False})
    with pytest.raises(DuplicateKeyError):
        await collection.insert_one({**row, "identifier": "c"})


# --- delete ------------------------------------------------------------------------------------------------------


async def test_delete_then_not_found(client: httpx.AsyncClient, env: IssuedEnvironment) -> None:
    await create_smtp(client, env.api_key)
    assert await ok(client, DELETE, env.api_key, identifier="smtp") is True
    for query, variables in (
        (GET, {"identifier": "smtp"}),
        (DELETE, {"identifier": "smtp"}),
        (UPDATE, {"identifier": "smtp", "input": {"name": "x"}}),
    ):
        failure = await error(client, query, env.api_key, **variables)
        assert (failure["code"], failure["field"]) == ("NOT_FOUND", "identifier")
    assert await Integration.find({"environment_id": env.environment.id}).count() == 0


# --- bad input ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("input", "field"),
    [
        ({"providerId": "carrier-pigeon"}, "input.providerId"),
        ({"providerId": "in-app", "identifier": "Not_A_Slug"}, "input.identifier"),
        ({"providerId": "in-app", "identifier": "x" * 65}, "input.identifier"),
        ({"providerId": "in-app", "name": "n" * 65}, "input.name"),
        ({"providerId": "smtp", "config": {"fromEmail": "a@example.com"}}, "input.config.host"),
        ({"providerId": "smtp", "config": {"host": "h", "fromEmail": "nope"}}, "input.config.fromEmail"),
        ({"providerId": "smtp", "config": {**SMTP_CONFIG, "port": 70000}}, "input.config.port"),
        ({"providerId": "smtp", "config": {**SMTP_CONFIG, "host": "h" * 300}}, "input.config.host"),
        ({"providerId": "smtp", "config": {**SMTP_CONFIG, "password": PASSWORD}}, "input.config.password"),
        ({"providerId": "smtp", "config": SMTP_CONFIG, "credentials": {"host": "h"}}, "input.credentials.host"),
        ({"providerId": "smtp", "config": SMTP_CONFIG, "credentials": {"password": 1}}, "input.credentials.password"),
        (
            {"providerId": "smtp", "config": SMTP_CONFIG, "credentials": {"password": PASSWORD * 100}},
            "input.credentials.password",
        ),
        ({"providerId": "smtp", "config": {**SMTP_CONFIG, "nope": 1}}, "input.config.nope"),
        ({"providerId": "smtp", "config": [1, 2]}, "input.config"),
        ({"providerId": "webhook", "config": {"url": "javascript:alert(1)"}}, "input.config.url"),
        (
            {"providerId": "slack-webhook", "credentials": {"webhookUrl": SLACK_URL.replace("https", "http")}},
            "input.credentials.webhookUrl",
        ),
        ({"providerId": "slack-webhook"}, "input.credentials.webhookUrl"),
    ],
)
async def test_create_refuses_invalid_input_with_the_field_path(
    client: httpx.AsyncClient, env: IssuedEnvironment, input: dict[str, Any], field: str
) -> None:
    failure = await error(client, CREATE, env.api_key, input=input)
    assert (failure["code"], failure["field"]) == ("VALIDATION", field)
    for secret in (PASSWORD, SLACK_URL.replace("https", "http")):
        assert secret not in failure["message"]
    assert await Integration.find({"environment_id": env.environment.id}).count() == 0


@pytest.mark.parametrize("api_key", [None, "tid_sk_not-a-real-key"])
async def test_every_operation_needs_a_valid_api_key(client: httpx.AsyncClient, api_key: str | None) -> None:
    for query, variables in (
        (GET, {"identifier": "smtp"}),
        (LIST, {}),
        (CREATE, {"input": {"providerId": "in-app"}}),
        (UPDATE, {"identifier": "smtp", "input": {"name": "x"}}),
        (DELETE, {"identifier": "smtp"}),
    ):
        assert (await error(client, query, api_key, **variables))["code"] == "UNAUTHENTICATED"


async def test_another_environment_can_neither_see_nor_change_an_integration(
    client: httpx.AsyncClient, env: IssuedEnvironment, other: IssuedEnvironment
) -> None:
    mine = await create_smtp(client, env.api_key, identifier="mail")
    for query, variables in (
        (GET, {"identifier": "mail"}),
        (UPDATE, {"identifier": "mail", "input": {"name": "stolen", "primary": False, "active": False}}),
        (DELETE, {"identifier": "mail"}),
    ):
        failure = await error(client, query, other.api_key, **variables)
        assert (failure["code"], failure["field"]) == ("NOT_FOUND", "identifier")
        assert "smtp.example.com" not in str(failure)
    assert (await ok(client, LIST, other.api_key))["edges"] == []
    # The other environment's first email integration is its own primary; ours keeps its role.
    assert (await create_smtp(client, other.api_key))["primary"] is True
    assert await ok(client, GET, env.api_key, identifier="mail") == mine


async def test_secrets_never_reach_the_api_log(
    api: tuple[RoleProcess, str], client: httpx.AsyncClient, env: IssuedEnvironment
) -> None:
    await create_smtp(client, env.api_key)
    await error(
        client,
        CREATE,
        env.api_key,
        input={"providerId": "smtp", "config": SMTP_CONFIG, "credentials": {"password": PASSWORD * 300}},
    )
    # Variables of the wrong shape fail in graphql-core, before any of our code, whose messages quote the value.
    for input, field in (
        ({"config": SMTP_CONFIG, "credentials": {"password": PASSWORD}}, "input.providerId"),
        ({"providerId": "smtp", "credentials": {"password": PASSWORD}, "secret": PASSWORD}, "input.secret"),
        ({"providerId": {"password": PASSWORD}}, "input.providerId"),
    ):
        body = await gql(client, CREATE, env.api_key, input=input)
        assert PASSWORD not in str(body)
        assert [(failure["extensions"]["code"], failure["extensions"]["field"]) for failure in body["errors"]] == [
            ("GRAPHQL_VALIDATION", field)
        ]
    failure = await error(client, UPDATE, env.api_key, identifier="smtp", input={"credentials": PASSWORD})
    assert (failure["code"], failure["field"]) == ("VALIDATION", "input.credentials")
    assert PASSWORD not in failure["message"]
    output = api[0].output()
    for secret in (PASSWORD, SIGNING, SLACK_URL, "new-secret-0042", "fresh-password"):
        assert secret not in output
