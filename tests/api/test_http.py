"""The API process over real HTTP: health, readiness, metrics, and GraphQL with API-key auth and error codes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.servers import RoleProcess
from tidings.app.settings import Settings
from tidings.environments.service import IssuedEnvironment


@pytest.fixture(scope="module")
def issued(environments: tuple[IssuedEnvironment, IssuedEnvironment]) -> IssuedEnvironment:
    """The API process, client and environments come from tests/api/conftest.py."""
    return environments[0]


async def _graphql(client: httpx.AsyncClient, query: str, api_key: str | None = None) -> dict[str, Any]:
    headers = {"Authorization": f"ApiKey {api_key}"} if api_key else {}
    response = await client.post("/graphql", json={"query": query}, headers=headers)
    body: dict[str, Any] = response.json()
    return body


async def test_healthz_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_pings_mongodb_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


async def test_current_environment_with_api_key(client: httpx.AsyncClient, issued: IssuedEnvironment) -> None:
    body = await _graphql(
        client, "{ currentEnvironment { id name applicationIdentifier apiKeys { hint } } }", issued.api_key
    )
    assert "errors" not in body
    environment = body["data"]["currentEnvironment"]
    assert environment["id"] == str(issued.environment.id)
    assert environment["name"] == "alpha"
    assert environment["applicationIdentifier"] == issued.environment.application_identifier
    assert environment["apiKeys"] == [{"hint": issued.api_key[-4:]}]


@pytest.mark.parametrize("api_key", [None, "tid_sk_not-a-real-key"])
async def test_admin_query_without_valid_key_is_unauthenticated(
    client: httpx.AsyncClient, issued: IssuedEnvironment, api_key: str | None
) -> None:
    body = await _graphql(client, "{ currentEnvironment { name } }", api_key)
    assert body["data"] is None
    assert [error["extensions"]["code"] for error in body["errors"]] == ["UNAUTHENTICATED"]
    assert body["errors"][0]["path"] == ["currentEnvironment"]


async def test_wrong_authorization_scheme_is_not_an_api_key(
    client: httpx.AsyncClient, issued: IssuedEnvironment
) -> None:
    response = await client.post(
        "/graphql",
        json={"query": "{ currentEnvironment { name } }"},
        headers={"Authorization": f"Bearer {issued.api_key}"},
    )
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_alias_limit_rejects_the_operation(client: httpx.AsyncClient, issued: IssuedEnvironment) -> None:
    aliases = " ".join(f"a{i}: currentEnvironment {{ name }}" for i in range(31))
    body = await _graphql(client, "{ " + aliases + " }", issued.api_key)
    assert body.get("data") is None
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"
    assert "aliases" in body["errors"][0]["message"]


async def test_unknown_field_is_a_validation_error(client: httpx.AsyncClient) -> None:
    body = await _graphql(client, "{ nope }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION"


async def test_graphiql_is_off_unless_enabled(client: httpx.AsyncClient) -> None:
    response = await client.get("/graphql", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "graphiql" not in response.text.lower()


async def test_metrics_count_requests_by_path_and_status(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    await client.get("/no-such-page")
    text = (await client.get("/metrics")).text
    assert 'tidings_http_requests_total{method="GET",path="/healthz",status="200"}' in text
    assert 'tidings_http_requests_total{method="GET",path="other",status="404"}' in text
    assert "tidings_http_request_duration_seconds_bucket" in text
    assert "process_resident_memory_bytes" in text


async def test_a_variable_of_the_wrong_shape_is_a_validation_error(
    client: httpx.AsyncClient, issued: IssuedEnvironment
) -> None:
    response = await client.post(
        "/graphql",
        json={
            "query": "mutation($o: Int!) { rotateApiKey(overlapSeconds: $o) { apiKey } }",
            "variables": {"o": {"password": "hunter2"}},
        },
        headers={"Authorization": f"ApiKey {issued.api_key}"},
    )
    error = response.json()["errors"][0]
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION", "field": "o"}
    assert error["message"] == "Variable '$o' got an invalid value: expected a value of type 'Int'."


SECRET = "SUPERSECRET-123"
BODY = "MESSAGE-BODY-TEXT-4711"
CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
CREATE_WORKFLOW = "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }"


type VariableCase = tuple[str, dict[str, Any], str, str]


@pytest.mark.parametrize(
    "case",
    [
        (
            CREATE_INTEGRATION,
            {"input": {"credentials": {"password": SECRET}}},
            "input.providerId",
            "Variable '$input' got an invalid value: field 'providerId' of required type 'String!' was not provided.",
        ),
        (
            CREATE_INTEGRATION,
            {"input": {"providerId": {"password": SECRET}}},
            "input.providerId",
            "Variable '$input' got an invalid value at input.providerId: expected a value of type 'String'.",
        ),
        (
            CREATE_INTEGRATION,
            {"input": {"providerId": "smtp", "passwd": SECRET}},
            "input.passwd",
            "Variable '$input' got an invalid value: type 'CreateIntegrationInput' has no field 'passwd'.",
        ),
        (
            CREATE_INTEGRATION,
            {"input": SECRET},
            "input",
            "Variable '$input' got an invalid value: expected an object of type 'CreateIntegrationInput'.",
        ),
        (
            CREATE_WORKFLOW,
            {"input": {"workflowId": "w", "name": "n", "steps": [{"email": {"subject": "s", "body": {"x": BODY}}}]}},
            "input.steps.0.email.body",
            "Variable '$input' got an invalid value at input.steps.0.email.body: expected a value of type 'String'.",
        ),
        (
            'mutation($c: [ChannelChoiceInput!]!) { setSubscriberPreferences(subscriberId: "a", channels: $c) '
            "{ workflowId } }",
            {"c": [{"channel": SECRET, "enabled": True}]},
            "c.0.channel",
            "Variable '$c' got an invalid value at c.0.channel: expected a value of the enum 'Channel'.",
        ),
    ],
)
async def test_variable_errors_name_the_path_but_never_echo_the_value(
    api: tuple[RoleProcess, str],
    client: httpx.AsyncClient,
    issued: IssuedEnvironment,
    case: VariableCase,
) -> None:
    query, variables, field, message = case
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"ApiKey {issued.api_key}"},
    )
    assert SECRET not in response.text
    assert BODY not in response.text
    [error] = response.json()["errors"]
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION", "field": field}
    assert error["message"] == message
    output = api[0].output()
    assert SECRET not in output
    assert BODY not in output


async def test_expected_errors_are_not_logged(
    api: tuple[RoleProcess, str], client: httpx.AsyncClient, issued: IssuedEnvironment
) -> None:
    missing = 'query { subscriber(subscriberId: "ghost-5d1c9e") { subscriberId } }'
    not_found = await _graphql(client, missing, issued.api_key)
    assert not_found["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    unauthenticated = await _graphql(client, missing, "tid_sk_wrong-key-8e2f")
    assert unauthenticated["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    output = api[0].output()
    assert "ghost-5d1c9e" not in output
    assert "unknown or expired API key" not in output
    assert "send the header" not in output
    assert "Traceback" not in output


async def test_a_body_over_the_limit_is_refused_before_it_is_parsed(
    api_settings: Settings, client: httpx.AsyncClient
) -> None:
    limit = api_settings.http_max_body_bytes
    query = {"query": "{ __typename }", "variables": {"pad": "x" * limit}}
    declared = await client.post("/graphql", json=query)
    assert declared.status_code == 413
    assert declared.json() == {"error": f"request body exceeds {limit} bytes"}

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams in
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}}'

    streamed = await client.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413
    assert streamed.json() == {"error": f"request body exceeds {limit} bytes"}
    metrics = (await client.get("/metrics")).text
    assert 'tidings_http_requests_total{method="POST",path="/graphql",status="413"}' in metrics


async def test_a_body_under_the_limit_is_served(api_settings: Settings, client: httpx.AsyncClient) -> None:
    padding = "x" * (api_settings.http_max_body_bytes - 200)
    response = await client.post("/graphql", json={"query": "{ __typename }", "variables": {"pad": padding}})
    assert response.status_code == 200
    assert response.json() == {"data": {"__typename": "Query"}}

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ __typename }", "variables": {"pad": "'
        yield padding.encode()
        yield b'"}}'

    streamed = await client.post("/graphql", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.json() == {"data": {"__typename": "Query"}}
