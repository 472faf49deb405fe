"""What every REST endpoint does around its domain call: authenticate the API key, spend the environment's rate
limit, read the body into a typed request, and answer in Novu's shapes — `{"data": …}` on success, and
`{statusCode, timestamp, path, message, error}` (plus `errors` for validation) on failure."""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from http import HTTPStatus
from typing import Any

import pydantic
from beanie import PydanticObjectId
from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tidings.core.clock import utcnow
from tidings.core.errors import (
    AlreadyExistsError,
    ForbiddenError,
    NotFoundError,
    RateLimitedError,
    TidingsError,
    UnauthenticatedError,
    UnavailableError,
    ValidationError,
)
from tidings.core.idempotency import IDEMPOTENCY_SEED_STATE
from tidings.core.limits import Limits
from tidings.core.pagination import Count, Page, PageRequest
from tidings.core.queue import TaskQueue
from tidings.environments.ratelimits import RateClass, RateLimiter
from tidings.environments.service import authenticate_api_key, parse_api_key

logger = logging.getLogger(__name__)

_STATUS = {
    ValidationError: 422,
    NotFoundError: 404,
    AlreadyExistsError: 409,
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    RateLimitedError: 429,
    UnavailableError: 503,
}

# A list's page: Novu's default and its largest.
DEFAULT_LIMIT = 10
MAX_LIMIT = 100

# Novu (NestJS) names these as HTTP/1.1 did; Python's `http` module uses RFC 9110's newer phrases.
_PHRASES = {413: "Payload Too Large", 422: "Unprocessable Entity"}


@dataclass
class RestOptions:
    """What the endpoints share; the queue and the rate limiter are set once the app's resources are open."""

    limits: Limits
    queue: TaskQueue | None = None
    limiter: RateLimiter | None = None
    redis: Redis | None = None


class RefusedError(Exception):
    """An answer other than success, in Novu's error shape: `extra` adds fields such as `errors` or `type`."""

    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = extra


@dataclass
class Call:
    """One authenticated request to an endpoint."""

    request: Request
    environment_id: PydanticObjectId
    options: RestOptions
    _body: Any = field(default=None, init=False)

    def path(self, name: str) -> str:
        value: str = self.request.path_params[name]  # Starlette decodes %-escapes: an email topic key arrives whole
        return value

    def query(self, name: str) -> str | None:
        return self.request.query_params.get(name)

    def query_int(self, name: str, default: int, *, minimum: int, maximum: int) -> int:
        raw = self.query(name)
        if raw is None:
            return default
        if not raw.isdigit() or not minimum <= int(raw) <= maximum:
            raise _invalid(name, f"{name} must be a whole number from {minimum} to {maximum}", raw)
        return int(raw)

    def query_bool(self, name: str) -> bool | None:
        raw = self.query(name)
        if raw is None:
            return None
        if raw not in ("true", "false"):
            raise _invalid(name, f"{name} must be true or false", raw)
        return raw == "true"

    async def body[M: pydantic.BaseModel](self, model: type[M]) -> M:
        """The JSON body as `model`, or 422 naming every field that is wrong (by the name it was sent with)."""
        raw = await self.request.body()
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            raise RefusedError(400, "the body is not JSON") from None
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            errors: dict[str, dict[str, Any]] = {}
            for error in exc.errors():
                name = _field_name(error["loc"])
                entry = errors.setdefault(name, {"messages": []})
                entry["messages"].append(str(error["msg"]).removeprefix("Value error, "))
                if isinstance(error.get("input"), str | int | float | bool):
                    entry["value"] = error["input"]
            first, entry = next(iter(errors.items()))
            raise RefusedError(422, f"{first}: {entry['messages'][0]}", errors=errors) from None

    @property
    def queue(self) -> TaskQueue:
        if self.options.queue is None:
            raise UnavailableError("the API is starting; retry in a moment")
        return self.options.queue

    @property
    def idempotency_seed(self) -> str | None:
        seed: str | None = self.request.scope.get("state", {}).get(IDEMPOTENCY_SEED_STATE)
        return seed

    @property
    def redis(self) -> Redis:
        if self.options.redis is None:
            raise UnavailableError("the API is starting; retry in a moment")
        return self.options.redis

    async def spend(self, rate_class: RateClass, cost: int = 1) -> None:
        if self.options.limiter is not None:
            await self.options.limiter.take(str(self.environment_id), rate_class, cost)


def _field_name(location: tuple[int | str, ...]) -> str:
    """`("to", 0, "SubscriberPayload", "email")` → `to.0.email`: Pydantic puts the union member it tried (a type or
    model name) in the location; the client only knows the fields it sent."""
    parts = [str(part) for part in location if not (isinstance(part, str) and _UNION_MEMBER.match(part))]
    return ".".join(parts) or "body"


_UNION_MEMBER = re.compile(r"^([A-Z]\w*|str|int|float|bool|(list|dict|union)\[.*\])$")


type Handler = Callable[[Call], Awaitable[Response]]


def endpoint(
    handler: Handler, options: RestOptions, *, rate: RateClass | None = RateClass.CONFIG
) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint around `handler`. `rate` is spent before it runs; None leaves spending to the handler
    (a trigger costs one per event, known only once the body is read)."""

    async def run(request: Request) -> Response:
        try:
            api_key = parse_api_key(request.headers.get("authorization"))
            if api_key is None:
                raise UnauthenticatedError("send the header `Authorization: ApiKey <secret key>`")
            environment = await authenticate_api_key(api_key)
            assert environment.id is not None
            call = Call(request, environment.id, options)
            if rate is not None:
                await call.spend(rate)
            return await handler(call)
        except RefusedError as exc:
            return error_response(request, exc.status, exc.message, **exc.extra)
        except TidingsError as exc:
            return _domain_error(request, exc)
        except Exception:
            error_id = str(uuid.uuid4())
            logger.exception("REST %s %s failed", request.method, request.url.path, extra={"errorId": error_id})
            message = "Internal server error, contact support and provide them with the errorId"
            return error_response(request, 500, message, errorId=error_id)

    return run


def refused(exc: TidingsError, *, status: int | None = None, field: str | None = None, **extra: Any) -> RefusedError:
    """A domain error as a REST answer, its field (`field` renames it) named in `errors` when it has one."""
    status = status or next((_STATUS[kind] for kind in type(exc).__mro__ if kind in _STATUS), 400)
    # The domain names fields as GraphQL's `input` has them; a REST body is that input.
    field = (field or exc.field or "").removeprefix("input.") or None
    if field and status in (400, 422) and "errors" not in extra:
        extra["errors"] = {field: {"messages": [exc.message]}}
    elif status == 422 and "errors" not in extra:
        extra["errors"] = {}  # Novu's SDK reads a 422 as a validation error only with its `errors` map
    return RefusedError(status, exc.message, **extra)


def _domain_error(request: Request, exc: TidingsError) -> Response:
    answer = refused(exc)
    response = error_response(request, answer.status, answer.message, **answer.extra)
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _invalid(name: str, message: str, value: str) -> RefusedError:
    return RefusedError(422, message, errors={name: {"messages": [message], "value": value}})


def error_response(request: Request, status: int, message: str, **extra: Any) -> JSONResponse:
    body = {
        "statusCode": status,
        "timestamp": iso(utcnow()),
        "path": request.url.path,
        "message": message,
        "error": _PHRASES.get(status) or HTTPStatus(status).phrase,
        **extra,
    }
    return JSONResponse(body, status_code=status)


def ok(data: Any, status: int = 200) -> JSONResponse:
    """Novu's envelope: the answer under `data`."""
    return JSONResponse({"data": data}, status_code=status)


def listing(body: dict[str, Any], status: int = 200) -> JSONResponse:
    """A page is sent as it is: it has its own `data` beside `next`, `previous` and the counts."""
    return JSONResponse(body, status_code=status)


def page_request(call: Call) -> PageRequest:
    """`limit` (1 to `MAX_LIMIT`, `DEFAULT_LIMIT` if absent) and `after` (the `next` of the page before). Lists run
    forward in creation order: asking for another order, or for `before`, is refused rather than ignored."""
    if call.query("before") is not None:
        raise _invalid("before", "before is not supported: lists page forward with after", call.query("before") or "")
    for name, served in (("orderDirection", ("ASC",)), ("orderBy", ("_id", "createdAt"))):
        value = call.query(name)
        if value is not None and value not in served:
            raise _invalid(name, f"{name} must be {' or '.join(served)}: lists run in creation order", value)
    limit = call.query_int("limit", DEFAULT_LIMIT, minimum=1, maximum=MAX_LIMIT)
    try:
        return PageRequest.parse(limit, call.query("after"), default=DEFAULT_LIMIT, maximum=MAX_LIMIT)
    except ValidationError as exc:
        raise refused(exc) from None


def page_listing(data: list[dict[str, Any]], page: Page[Any], total: Count) -> JSONResponse:
    """Novu's list answer: forward paging only, so `previous` is always null."""
    return listing(
        {
            "data": data,
            "next": page.end_cursor if page.has_next_page else None,
            "previous": None,
            "totalCount": total.count,
            "totalCountCapped": total.capped,
        }
    )


def iso(moment: datetime) -> str:
    """A time as Novu writes it: ISO 8601 in UTC with a `Z`."""
    return moment.isoformat().replace("+00:00", "Z")
