"""The GraphQL ASGI endpoint: Strawberry's handler with our typed context and subscriber websocket sessions."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.schema.base import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import ConnectionInitMessage

from tidings.core.crypto import Cipher
from tidings.core.errors import UnauthenticatedError
from tidings.core.idempotency import IDEMPOTENCY_SEED_STATE
from tidings.core.limits import Limits
from tidings.core.queue import TaskQueue
from tidings.engine.delivery import Sender
from tidings.environments.ratelimits import RateLimiter
from tidings.environments.service import parse_api_key
from tidings.graphql.context import (
    Context,
    InboxOptions,
    parse_subscriber_token,
)
from tidings.inbox.hub import InboxHub
from tidings.inbox.sessions import ExpiredTokenError, verify_session

# graphql-ws (the legacy Apollo protocol) is unmaintained; only graphql-transport-ws is served (DESIGN §5).
PROTOCOLS = (GRAPHQL_TRANSPORT_WS_PROTOCOL,)
# Closing codes of refused websockets: 4401 means "get a (new) token and come back", 4403 "this token won't do".
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403
# RFC 6455 "Service Restart": this instance is stopping; reconnect at once (to another) and resume with `after`.
CLOSE_SERVICE_RESTART = 1012
RESTART_REASON = "server restarting: reconnect now with after=<last cursor>"


class SubscriberSocketHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """Authenticates the subscriber from `connection_init` before acknowledging it, and keeps its presence."""

    connection_id: str | None = None

    async def handle(self) -> None:
        sockets = self.view.open_sockets if isinstance(self.view, GraphQLApp) else set()
        sockets.add(self)
        try:
            await super().handle()
        finally:
            sockets.discard(self)

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # already closed by the client or by us
            await self.websocket.close(code=code, reason=reason)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        payload = message.get("payload") or {}
        if self.connection_init_received or self.connection_timed_out or not isinstance(payload, dict):
            await super().handle_connection_init(message)  # Strawberry's own refusals (4429, 4400)
            return
        token = payload.get("token")
        authorization = payload.get("authorization")
        if not isinstance(token, str) and isinstance(authorization, str):
            token = parse_subscriber_token(authorization)
        code, reason = CLOSE_UNAUTHORIZED, "send {token} from inboxSession in connection_init"
        owner = None
        if isinstance(token, str):
            try:
                owner = verify_session(token, self.context.inbox.signer)
            except ExpiredTokenError:
                code, reason = CLOSE_UNAUTHORIZED, "subscriber token expired"
            except UnauthenticatedError:
                code, reason = CLOSE_FORBIDDEN, "invalid subscriber token"
        if owner is None:
            if self.connection_init_timeout_task:
                self.connection_init_timeout_task.cancel()
            self.connection_init_received = True
            await self.websocket.close(code=code, reason=reason)
            return
        self.context.owner = owner
        self.connection_id = await self.context.hub.connection_opened(owner.environment_id, owner.subscriber_id)
        await super().handle_connection_init(message)

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            if self.connection_id is not None:
                await self.context.hub.connection_closed(self.connection_id)
                self.connection_id = None


class GraphQLApp(GraphQL[Context, None]):
    graphql_transport_ws_handler_class = SubscriberSocketHandler

    def __init__(
        self,
        schema: BaseSchema,
        *,
        limits: Limits,
        cipher: Cipher,
        inbox: InboxOptions,
        sender: Sender,
        allow_private_networks: bool = False,
        **options: Any,
    ) -> None:
        super().__init__(schema, **options)
        self.limits = limits
        self.cipher = cipher
        self.inbox = inbox
        self.sender = sender
        self.allow_private_networks = allow_private_networks
        # Set by the app's lifespan once the broker and Redis are open.
        self.queue: TaskQueue | None = None
        self.hub: InboxHub | None = None
        # Every open websocket, so that a stopping server can close them all (see app/draining.py).
        self.open_sockets: set[SubscriberSocketHandler] = set()
        self.limiter: RateLimiter | None = None

    async def close_websockets_for_restart(self) -> None:
        await asyncio.gather(*(s.close(CLOSE_SERVICE_RESTART, RESTART_REASON) for s in list(self.open_sockets)))

    def decode_json(self, data: str | bytes) -> object:
        # Strawberry answers malformed JSON with 400 but JSON nested past Python's recursion limit would be a 500:
        # report it as the malformed JSON it is.
        try:
            return super().decode_json(data)
        except RecursionError as error:
            text = data.decode(errors="replace") if isinstance(data, bytes) else data
            raise json.JSONDecodeError("nested too deeply", text[:100], 0) from error

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket | None) -> Context:
        if self.queue is None or self.hub is None:
            raise RuntimeError("the task queue and inbox hub are not open yet")
        authorization = request.headers.get("authorization")
        return Context(
            request=request,
            response=response,
            api_key=parse_api_key(authorization),
            limits=self.limits,
            cipher=self.cipher,
            queue=self.queue,
            inbox=self.inbox,
            hub=self.hub,
            sender=self.sender,
            allow_private_networks=self.allow_private_networks,
            subscriber_token=parse_subscriber_token(authorization),
            limiter=self.limiter,
            idempotency_seed=request.scope.get("state", {}).get(IDEMPOTENCY_SEED_STATE),
        )
