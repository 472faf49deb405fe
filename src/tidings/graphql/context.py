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
from tidings.environments.documents import Environment


@dataclass(slots=True)
class Context:
    request: HTTPConnection
    response: Response | WebSocket | None
    api_key: str | None
    limits: Limits
    cipher: Cipher
    queue: TaskQueue
    # Filled once per request by `permissions.require_environment`, so a query with many fields authenticates once.
    environment: Environment | None = field(default=None)


type Info = StrawberryInfo[Context, None]


def parse_api_key(authorization: str | None) -> str | None:
    """`Authorization: ApiKey <key>`; anything else is no admin key at all."""
    if not authorization:
        return None
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() != "apikey" or not credentials.strip():
        return None
    return credentials.strip()
