"""The typed request context every resolver receives."""

from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import HTTPConnection
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.types import Info as StrawberryInfo

from tidings.core.crypto import Cipher
from tidings.core.limits import Limits
from tidings.core.queue import TaskQueue
from tidings.core.tokens import Signer
from tidings.engine.delivery import Sender
from tidings.environments.documents import Environment
from tidings.environments.ratelimits import RateLimiter
from tidings.inbox.hub import InboxHub
from tidings.inbox.state import Owner


@dataclass(frozen=True, slots=True)
class InboxOptions:
    """Settings of the inbox area (TIDINGS_INBOX_*), handed to its resolvers."""

    signer: Signer
    session_ttl_seconds: int
    replay_page: int
    client_max_lag: int


@dataclass(slots=True)
class Context:
    request: HTTPConnection
    response: Response | WebSocket | None
    api_key: str | None
    limits: Limits
    cipher: Cipher
    queue: TaskQueue
    inbox: InboxOptions
    hub: InboxHub
    sender: Sender  # for `testIntegration`: the same providers the workers send with
    allow_private_networks: bool = False  # TIDINGS_ALLOW_PRIVATE_NETWORK_URLS, for URLs the API checks itself
    subscriber_token: str | None = None
    # Filled once per request (or websocket) by `permissions.require_subscriber`.
    owner: Owner | None = None
    # Filled once per request by `permissions.require_environment`, so a query with many fields authenticates once.
    environment: Environment | None = field(default=None)
    # Per-environment token buckets, taken by the `RateLimits` extension before a mutation runs; None = unlimited.
    limiter: RateLimiter | None = None
    # Set when the request carries an Idempotency-Key (app.idempotency): triggers sent without a transactionId get
    # one derived from it, so the retry of a trigger whose answer was lost finds the trigger already recorded.
    idempotency_seed: str | None = None


type Info = StrawberryInfo[Context, None]


def parse_subscriber_token(authorization: str | None) -> str | None:
    """`Authorization: Bearer <token from inboxSession>`; a subscriber token never passes for an admin key."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        return None
    return credentials.strip()
