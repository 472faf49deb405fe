"""The GraphQL ASGI endpoint: Strawberry's handler with our typed context."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from tidings.core.crypto import Cipher
from tidings.core.limits import Limits
from tidings.core.queue import TaskQueue
from tidings.graphql.context import Context, parse_api_key

# graphql-ws (the legacy Apollo protocol) is unmaintained; only graphql-transport-ws is served (DESIGN §5).
PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)


class GraphQLApp(GraphQL[Context, None]):
    def __init__(self, schema: BaseSchema, *, limits: Limits, cipher: Cipher, **options: Any) -> None:
        super().__init__(schema, **options)
        self.limits = limits
        self.cipher = cipher
        self.queue: TaskQueue | None = None  # set by the app's lifespan once the broker is open

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        return Context(
            request=request,
            response=response,
            api_key=parse_api_key(request.headers.get("authorization")),
            limits=self.limits,
            cipher=self.cipher,
            queue=self._queue(),
        )

    def _queue(self) -> TaskQueue:
        if self.queue is None:
            raise RuntimeError("the task queue is not open yet")
        return self.queue
