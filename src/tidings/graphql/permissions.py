"""Who may call what: admin operations need an environment's secret API key; inbox operations a subscriber token."""

from __future__ import annotations

from beanie import PydanticObjectId

from tidings.core.errors import UnauthenticatedError
from tidings.environments.documents import Environment
from tidings.environments.service import authenticate_api_key
from tidings.graphql.context import Info
from tidings.inbox.sessions import verify_session
from tidings.inbox.state import Owner


async def require_environment(info: Info) -> Environment:
    context = info.context
    if context.environment is None:
        if context.api_key is None:
            raise UnauthenticatedError("send the header `Authorization: ApiKey <secret key>`")
        context.environment = await authenticate_api_key(context.api_key)
    return context.environment


async def require_environment_id(info: Info) -> PydanticObjectId:
    """The id of the request's environment: what every admin query is scoped by."""
    environment = await require_environment(info)
    assert environment.id is not None  # loaded from the database, so it has one
    return environment.id


def require_subscriber(info: Info) -> Owner:
    """The subscriber an inbox operation acts for; its messages and preferences are all the token reaches."""
    context = info.context
    if context.owner is None:
        if context.subscriber_token is None:
            raise UnauthenticatedError("send the header `Authorization: Bearer <token from inboxSession>`")
        context.owner = verify_session(context.subscriber_token, context.inbox.signer)
    return context.owner
