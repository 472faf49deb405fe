"""`testIntegration` against a real API process and real provider stand-ins: one send through the integration,
the provider's answer (or its classified failure) returned as data."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import GraphQL
from tests.servers import SECRET_KEY, api_process, beanie_database, isolated_settings
from tests.sinks import HttpSink, SmtpSink, http_sink, parts, smtp_sink
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

CREATE = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
TEST = """mutation($identifier: String!, $subscriberId: String, $email: String) {
    testIntegration(identifier: $identifier, subscriberId: $subscriberId, email: $email) {
        success durationMs providerMessageId failureKind message detail } }"""


@dataclass
class Stack:
    gql: GraphQL
    smtp: SmtpSink
    http: HttpSink


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[SmtpSink, int, HttpSink, str]]:
    with smtp_sink() as (smtp, smtp_port), http_sink() as (http, base):
        yield smtp, smtp_port, http, base


@pytest.fixture(scope="module")
async def stack(
    mongodb_url: str,
    redis_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    sinks: tuple[SmtpSink, int, HttpSink, str],
) -> AsyncIterator[Stack]:
    tmp: Path = tmp_path_factory.mktemp("test-send")
    settings = isolated_settings(mongodb_url, redis_url, tmp).model_copy(update={"allow_private_network_urls": True})
    smtp, smtp_port, http, base = sinks
    async with beanie_database(settings):
        issued = await create_environment("trial", cipher=Cipher(SECRET_KEY))
        api, api_base = api_process(settings, tmp / "api.log")
        try:
            async with httpx.AsyncClient(base_url=api_base, timeout=30) as client:
                gql = GraphQL(client, issued.api_key)
                smtp_config = {"host": "127.0.0.1", "port": smtp_port, "security": "none", "fromEmail": "t@example.com"}
                await gql.data(CREATE, input={"providerId": "smtp", "name": "Mail", "config": smtp_config})
                await gql.data(
                    CREATE, input={"providerId": "webhook", "name": "Hook", "config": {"url": f"{base}/hook"}}
                )
                await gql.data(CREATE, input={"providerId": "in-app", "name": "Inbox"})
                yield Stack(gql, smtp, http)
        finally:
            api.stop()


async def test_a_test_email_reaches_the_given_address(stack: Stack) -> None:
    result = (await stack.gql.data(TEST, identifier="smtp", email="ada@example.com"))["testIntegration"]
    assert result["success"] is True
    assert result["providerMessageId"]
    assert result["failureKind"] is None
    mail = stack.smtp.wait_for(1)[-1]
    assert mail["To"] == "ada@example.com"
    assert mail["Subject"] == "Tidings test message"
    assert "the integration works" in parts(mail)["text"]


async def test_a_test_chat_message_and_classified_failures(stack: Stack) -> None:
    before = len(stack.http.requests)
    ok = (await stack.gql.data(TEST, identifier="webhook"))["testIntegration"]
    assert ok["success"] is True
    request = stack.http.wait_for(before + 1)[-1]
    assert (request.method, request.path) == ("POST", "/hook")
    assert "the integration works" in json.dumps(json.loads(request.body))

    stack.http.statuses.extend([503])
    transient = (await stack.gql.data(TEST, identifier="webhook"))["testIntegration"]
    assert (transient["success"], transient["failureKind"]) == (False, "TRANSIENT")
    assert transient["detail"]["status"] == 503
    assert "503" in transient["message"]
    stack.http.statuses.extend([400])
    permanent = (await stack.gql.data(TEST, identifier="webhook"))["testIntegration"]
    assert (permanent["success"], permanent["failureKind"]) == (False, "PERMANENT")


async def test_bad_requests(stack: Stack) -> None:
    unknown = await stack.gql.error(TEST, identifier="nope")
    assert (unknown["code"], unknown["field"]) == ("NOT_FOUND", "identifier")
    inbox = await stack.gql.error(TEST, identifier="in-app")
    assert (inbox["code"], inbox["field"]) == ("VALIDATION", "identifier")
    no_subscriber = await stack.gql.error(TEST, identifier="smtp", subscriberId="ghost")
    assert (no_subscriber["code"], no_subscriber["field"]) == ("NOT_FOUND", "subscriberId")
    no_address = (await stack.gql.data(TEST, identifier="smtp"))["testIntegration"]
    assert (no_address["success"], no_address["failureKind"]) == (False, "BAD_ENDPOINT")  # no email address
