"""A subscriber's push and chat credentials by Novu provider id (`/v1/subscribers/{id}/credentials`), stored as the
subscriber's endpoint for the environment's integration of that provider."""

from __future__ import annotations

from starlette.responses import Response

from tidings.core.channels import Channel
from tidings.integrations import service as integrations
from tidings.rest.bodies import ChannelSettings
from tidings.rest.http import Call, ok, refused
from tidings.rest.providers import MissingIntegrationError, novu_endpoint, provider
from tidings.rest.subscribers import subscriber_answer
from tidings.subscribers.endpoints import EndpointKind, put_endpoint, remove_endpoints


async def _put(call: Call, *, add_tokens: bool) -> Response:
    body = await call.body(ChannelSettings)
    try:
        endpoint = await novu_endpoint(call.environment_id, body)
    except MissingIntegrationError as exc:
        raise refused(exc, status=400) from None
    subscriber = await put_endpoint(call.environment_id, call.path("subscriberId"), endpoint, add_tokens=add_tokens)
    return ok(await subscriber_answer(call, subscriber))


async def update(call: Call) -> Response:
    """`PUT`: the subscriber's credentials for that provider's integration, replaced."""
    return await _put(call, add_tokens=False)


async def append(call: Call) -> Response:
    """`PATCH`: device tokens added to the ones the subscriber has for that integration."""
    return await _put(call, add_tokens=True)


async def delete(call: Call) -> Response:
    """`DELETE …/credentials/{providerId}`: the subscriber's endpoints of every integration of that provider."""
    channel, ours = provider(call.path("providerId"))
    identifiers = [one.identifier for one in await integrations.integrations_of_providers(call.environment_id, ours)]
    kind: EndpointKind = "push" if channel is Channel.PUSH else "chat"
    await remove_endpoints(call.environment_id, call.path("subscriberId"), kind, identifiers)
    return Response(status_code=204)
