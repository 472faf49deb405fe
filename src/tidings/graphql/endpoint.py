"""The GraphQL ASGI endpoint: Strawberry's handler with our typed context."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from tidings.graphql.context import Context, parse_api_key

# graphql-ws (the legacy Apollo protocol) is unmaintained; only graphql-transport-ws is served (DESIGN §5).
PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)


class GraphQLApp(GraphQL[Context, None]):
    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        return Context(request=request, response=response, api_key=parse_api_key(request.headers.get("authorization")))
