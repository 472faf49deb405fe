"""Who may call what: admin operations need an environment's secret API key."""

from __future__ import annotations

from beanie import PydanticObjectId

from tidings.core.errors import UnauthenticatedError
from tidings.environments.documents import Environment
from tidings.environments.service import authenticate_api_key
from tidings.graphql.context import Info


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
