"""SSRF: every address a tenant gives (outbound webhook endpoints, provider URLs, subscribers' chat webhooks) is
refused when it reaches loopback, link-local, private or unspecified addresses, however it is spelled, at save
where the address is a literal and at send otherwise; and a redirect is never followed. A real HTTP server listens
on loopback behind every target and must never receive a request.

Offline only: names that need public DNS to resolve to loopback (`127.0.0.1.nip.io`, `localtest.me`) are not
tried here; `localhost` and the numeric spellings the resolver itself expands (`2130706433`, `0x7f000001`,
`017700000001`, `127.1`) cover the same path (a name, checked after resolution).
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from tests.security.conftest import Caller, Guarded, admin, eventually, start_api
from tests.servers import SECRET_KEY
from tests.sinks import HttpSink, http_sink, serve_app
from tidings.core.crypto import Cipher
from tidings.environments.service import IssuedEnvironment, create_environment

CREATE_HOOK = """mutation($url: String!) { createWebhookEndpoint(input: {url: $url, eventTypes: ["message.sent"]}) {
    endpoint { id } } }"""
CREATE_INTEGRATION = "mutation($input: CreateIntegrationInput!) { createIntegration(input: $input) { identifier } }"
TEST_INTEGRATION = """mutation($i: String!, $s: String, $phone: String) {
    testIntegration(identifier: $i, subscriberId: $s, phone: $phone) { success failureKind message detail } }"""


@pytest.fixture(scope="module")
def sink() -> Iterator[tuple[HttpSink, int]]:
    with http_sink() as (server, base):
        yield server, int(base.rsplit(":", 1)[1])


@pytest.fixture(scope="module")
async def tenant(guarded: Guarded) -> IssuedEnvironment:
    return await create_environment(f"ssrf-{uuid.uuid4().hex[:6]}", cipher=Cipher(SECRET_KEY))


def _hosts(port: int) -> dict[str, str]:
    """Spellings of non-public addresses, as `host[:port]` for a URL (the loopback ones reach the sink)."""
    return {
        "loopback": f"127.0.0.1:{port}",
        "loopback-other": f"127.0.0.2:{port}",
        "localhost": f"localhost:{port}",
        "ipv6-loopback": f"[::1]:{port}",
        "metadata": "169.254.169.254",
        "private-10": "10.0.0.1",
        "private-192": "192.168.1.1",
        "private-172": "172.16.0.1",
        "unspecified": f"0.0.0.0:{port}",
        "decimal": f"2130706433:{port}",
        "hex": f"0x7f000001:{port}",
        "octal": f"017700000001:{port}",
        "short": f"127.1:{port}",
        "ipv4-mapped-ipv6": f"[::ffff:127.0.0.1]:{port}",
        "nat64": f"[64:ff9b::7f00:1]:{port}",
        "ipv6-link-local": "[fe80::1]",
        "ipv6-unique-local": "[fd00::1]",
    }


LITERALS = frozenset(
    {
        "loopback",
        "loopback-other",
        "ipv6-loopback",
        "metadata",
        "private-10",
        "private-192",
        "private-172",
        "unspecified",
        "ipv4-mapped-ipv6",
        "nat64",
        "ipv6-link-local",
        "ipv6-unique-local",
    }
)
HOSTS = sorted(_hosts(1))


@pytest.mark.parametrize("name", HOSTS)
async def test_webhook_endpoints_to_private_addresses_are_refused(
    guarded: Guarded, tenant: IssuedEnvironment, sink: tuple[HttpSink, int], name: str
) -> None:
    """An IP literal is refused when saved; a name (or a spelling only the resolver understands) when sent."""
    server, port = sink
    caller = admin(guarded.client, tenant.api_key)
    url = f"https://{_hosts(port)[name]}/hook"
    response = (await caller.post(CREATE_HOOK, {"url": url})).json()
    if name in LITERALS:
        [error] = response["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("VALIDATION", "input.url")
        return
    if "errors" in response:  # refusing a name at save is fine too
        assert response["errors"][0]["extensions"]["code"] == "VALIDATION"
        return
    endpoint = response["data"]["createWebhookEndpoint"]["endpoint"]["id"]
    await caller.data("mutation($i: ID!) { sendTestWebhook(endpointId: $i) { id } }", i=endpoint)

    async def attempt() -> dict[str, Any] | None:
        data = await caller.data(
            "query($i: ID!) { webhookDeliveries(endpointId: $i) { edges { node { status attempts { error } } } } }",
            i=endpoint,
        )
        [edge] = data["webhookDeliveries"]["edges"]
        attempts: list[dict[str, Any]] = edge["node"]["attempts"]
        return attempts[0] if attempts else None

    first = await eventually(attempt, f"a delivery attempt to {url}")
    assert first["error"].startswith("refused: "), first
    assert not [request for request in server.requests if request.path == "/hook"]
    await caller.data("mutation($i: ID!) { deleteWebhookEndpoint(id: $i) }", i=endpoint)


async def test_a_plain_http_webhook_endpoint_is_refused(guarded: Guarded, tenant: IssuedEnvironment) -> None:
    codes = await admin(guarded.client, tenant.api_key).codes(CREATE_HOOK, url="http://example.com/hook")
    assert codes == ["VALIDATION"]


PROVIDERS: dict[str, tuple[str, str]] = {
    # provider id → (where the URL goes, the scheme the provider accepts)
    "webhook": ("config.url", "http"),
    "sms-webhook": ("config.url", "http"),
    "slack-webhook": ("credentials.webhookUrl", "https"),
    "teams": ("credentials.webhookUrl", "https"),
    "discord": ("credentials.webhookUrl", "https"),
}


# Every spelling through one provider; a few through each of the others (they share the guard in `providers/base`).
PROVIDER_CASES = [("webhook", name) for name in HOSTS] + [
    (provider, name)
    for provider in sorted(PROVIDERS)
    if provider != "webhook"
    for name in ("loopback", "localhost", "decimal", "metadata", "ipv4-mapped-ipv6")
]


@pytest.mark.parametrize(("provider", "name"), PROVIDER_CASES)
async def test_provider_urls_to_private_addresses_are_refused_at_send(
    guarded: Guarded, tenant: IssuedEnvironment, sink: tuple[HttpSink, int], provider: str, name: str
) -> None:
    """`testIntegration` sends from the API process itself, through the same guard the workers use."""
    server, port = sink
    caller = admin(guarded.client, tenant.api_key)
    where, scheme = PROVIDERS[provider]
    section, key = where.split(".")
    identifier = f"{provider}-{name}"
    path = f"/{identifier}"
    url = f"{scheme}://{_hosts(port)[name]}{path}"
    created = (
        await caller.post(
            CREATE_INTEGRATION,
            {"input": {"providerId": provider, "identifier": identifier, section: {key: url}, "active": True}},
        )
    ).json()
    if "errors" in created:  # refused at save: as good
        assert created["errors"][0]["extensions"]["code"] == "VALIDATION", created
        return
    result = (await caller.data(TEST_INTEGRATION, i=identifier, phone="+14155550123"))["testIntegration"]
    assert result["success"] is False
    assert result["failureKind"] == "PERMANENT", result
    assert "not allowed" in result["message"], result
    assert not [request for request in server.requests if request.path == path]


async def test_a_subscribers_chat_webhook_to_loopback_is_refused_at_send(
    guarded: Guarded, tenant: IssuedEnvironment, sink: tuple[HttpSink, int]
) -> None:
    server, port = sink
    caller = admin(guarded.client, tenant.api_key)
    await caller.data(
        CREATE_INTEGRATION,
        input={
            "providerId": "slack-webhook",
            "identifier": "slack-default",
            "credentials": {"webhookUrl": "https://hooks.slack.example.com/services/default"},
        },
    )
    for name in ("loopback", "localhost", "decimal", "metadata"):
        subscriber = f"chatty-{name}"
        path = f"/chat-{name}"
        await caller.data(
            "mutation($input: SubscriberInput!) { upsertSubscriber(input: $input) { created } }",
            input={
                "subscriberId": subscriber,
                "chat": [
                    {"integrationIdentifier": "slack-default", "webhookUrl": f"https://{_hosts(port)[name]}{path}"}
                ],
            },
        )
        result = (await caller.data(TEST_INTEGRATION, i="slack-default", s=subscriber))["testIntegration"]
        assert result["success"] is False, result
        assert "not allowed" in result["message"], result
        assert not [request for request in server.requests if request.path == path]


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(document.cookie)",
        "JavaScript:alert(1)",
        " javascript:alert(1)",
        "data:text/html,<script>",
        "vbscript:msgbox(1)",
        "//evil.example.com/x",
    ],
)
async def test_action_and_redirect_urls_are_http_only(guarded: Guarded, tenant: IssuedEnvironment, url: str) -> None:
    caller = admin(guarded.client, tenant.api_key)
    for step in ({"redirectUrl": url}, {"primaryAction": {"label": "Go", "url": url}}, {"avatar": url}):
        body = (
            await caller.post(
                "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) { workflowId } }",
                {
                    "input": {
                        "workflowId": f"links-{uuid.uuid4().hex[:8]}",
                        "name": "links",
                        "steps": [{"inApp": {"body": "hi", **step}}],
                    }
                },
            )
        ).json()
        assert [error["extensions"]["code"] for error in body["errors"]] == ["VALIDATION"], (step, body)


# Redirects, with private targets allowed (so that only the no-redirect rule stands between the two servers) ------


@pytest.fixture(scope="module")
def redirector(sink: tuple[HttpSink, int]) -> Iterator[str]:
    """Answers every POST with 302 to the sink's /after-redirect on loopback."""
    _, port = sink

    async def redirect(request: Request) -> RedirectResponse:
        return RedirectResponse(f"http://127.0.0.1:{port}/after-redirect", status_code=302)

    app = Starlette(routes=[Route("/{path:path}", redirect, methods=["POST", "GET"])])
    with serve_app(app, "the redirecting server") as base:
        yield base


@pytest.fixture(scope="module")
async def permissive(guarded: Guarded, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Caller]:
    """A second api, on the guarded stack's database, that allows private addresses."""
    tmp = tmp_path_factory.mktemp("permissive")
    settings = guarded.settings.model_copy(
        update={"allow_private_network_urls": True, "queue_name": f"{guarded.settings.queue_name}:permissive"}
    )
    issued = await create_environment("permissive", cipher=Cipher(SECRET_KEY))
    api, base = start_api(settings, tmp / "api.log")
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            yield admin(client, issued.api_key)
    finally:
        api.stop()


async def test_a_redirect_is_never_followed(permissive: Caller, redirector: str, sink: tuple[HttpSink, int]) -> None:
    server, _ = sink
    for provider in ("webhook", "sms-webhook"):
        await permissive.data(
            CREATE_INTEGRATION,
            input={"providerId": provider, "identifier": f"redirected-{provider}", "config": {"url": redirector}},
        )
        result = (await permissive.data(TEST_INTEGRATION, i=f"redirected-{provider}", phone="+14155550123"))[
            "testIntegration"
        ]
        assert result["success"] is False
        assert "redirect, which is not followed" in result["message"], result
    assert not [request for request in server.requests if request.path == "/after-redirect"]
