"""A subscriber's push and chat credentials by Novu provider id (`/v1/subscribers/{id}/credentials`), stored as the
subscriber's endpoint for the environment's integration of that provider."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from tidings.core.channels import Channel
from tidings.core.validation import validated
from tidings.integrations import service as integrations
from tidings.integrations.documents import Integration
from tidings.rest.bodies import NovuBody
from tidings.rest.http import Call, RefusedError, ok
from tidings.rest.providers import PROVIDERS
from tidings.rest.subscribers import subscriber_answer
from tidings.subscribers.commands import ChatEndpointInput, PushEndpointInput
from tidings.subscribers.endpoints import EndpointKind, put_endpoint, remove_endpoints


class Credentials(NovuBody):
    webhook_url: str | None = None
    channel: str | None = None
    device_tokens: list[str] | None = None
    # Novu's fields for providers without a counterpart here: accepted, not stored.
    alert_uid: str | None = None
    title: str | None = None
    image_url: str | None = None
    state: str | None = None
    external_url: str | None = None


class CredentialsBody(NovuBody):
    provider_id: str
    integration_identifier: str | None = None
    credentials: Credentials


def _kind(channel: Channel) -> EndpointKind:
    return "push" if channel is Channel.PUSH else "chat"


def _provider(provider_id: str) -> tuple[Channel, tuple[str, ...]]:
    if provider_id not in PROVIDERS:
        message = f"providerId must be one of {', '.join(sorted(PROVIDERS))}"
        raise RefusedError(422, message, errors={"providerId": {"messages": [message], "value": provider_id}})
    return PROVIDERS[provider_id]


async def _integration(call: Call, body: CredentialsBody, ours: tuple[str, ...]) -> Integration:
    """The integration named by `integrationIdentifier`, else the one of the provider a send would use first."""
    if body.integration_identifier is not None:
        found = await integrations.integrations_by_identifier(call.environment_id, [body.integration_identifier])
        integration = found.get(body.integration_identifier)
    else:
        integration = await integrations.first_active_integration(call.environment_id, ours)
    if integration is None or integration.provider_id not in ours:
        message = f"this environment has no active {body.provider_id} integration"
        raise RefusedError(400, message, errors={"providerId": {"messages": [message], "value": body.provider_id}})
    return integration


async def _put(call: Call, *, add_tokens: bool) -> Response:
    body = await call.body(CredentialsBody)
    channel, ours = _provider(body.provider_id)
    integration = await _integration(call, body, ours)
    sent = body.credentials
    endpoint: PushEndpointInput | ChatEndpointInput
    if channel is Channel.PUSH:
        data: dict[str, Any] = {
            "integration_identifier": integration.identifier,
            "device_tokens": sent.device_tokens or [],
        }
        endpoint = validated(PushEndpointInput, data, prefix="credentials")
    else:
        data = {
            "integration_identifier": integration.identifier,
            "webhook_url": sent.webhook_url,
            "channel_id": sent.channel,
        }
        endpoint = validated(ChatEndpointInput, data, prefix="credentials")
    subscriber = await put_endpoint(call.environment_id, call.path("subscriberId"), endpoint, add_tokens=add_tokens)
    return ok(await subscriber_answer(call.environment_id, subscriber))


async def update(call: Call) -> Response:
    """`PUT`: the subscriber's credentials for that provider's integration, replaced."""
    return await _put(call, add_tokens=False)


async def append(call: Call) -> Response:
    """`PATCH`: device tokens added to the ones the subscriber has for that integration."""
    return await _put(call, add_tokens=True)


async def delete(call: Call) -> Response:
    """`DELETE …/credentials/{providerId}`: the subscriber's endpoints of every integration of that provider."""
    channel, ours = _provider(call.path("providerId"))
    identifiers = [one.identifier for one in await integrations.integrations_of_providers(call.environment_id, ours)]
    await remove_endpoints(call.environment_id, call.path("subscriberId"), _kind(channel), identifiers)
    return Response(status_code=204)
