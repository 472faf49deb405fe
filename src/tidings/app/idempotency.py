"""`Idempotency-Key` on mutating HTTP requests: a retried POST gets the first answer instead of running again.

Applies to POST /graphql carrying a mutation and to every POST and PATCH of the REST API (/v1/, /v2/); queries pass
through untouched (running them twice changes nothing). A key is scoped to the caller (a hash of the `Authorization`
header), so two API keys never share one. The first request claims the key in Redis (SET NX, for `lock_seconds` at
most) with the SHA-256 of its body, runs, and its answer (status, content type, body) is kept for `ttl_seconds`. Then
the same key with: the same body → the kept answer with `Idempotency-Replayed: true`, not run again; a request still
running → 409; another body → 422. Answers that may be different on a retry are not kept, and the key is released:
5xx, 408, 409, 425, 429 (a rate limit), a GraphQL answer with an INTERNAL, UNAVAILABLE or RATE_LIMITED error, and
answers larger than `max_body_bytes`. Other GraphQL errors (VALIDATION, NOT_FOUND…) are answers like any other and are
kept.

When Redis is unavailable a request with a key is refused with 503 (retry later with the same key), since running
it unguarded could run it twice — the one thing the client asked us not to do.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import logging
import secrets
from typing import Any

from graphql import GraphQLError, OperationType, get_operation_ast, parse
from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tidings.core.idempotency import IDEMPOTENCY_SEED_STATE

logger = logging.getLogger(__name__)

HEADER = b"idempotency-key"
REPLAYED_HEADER = b"idempotency-replayed"
MAX_KEY_LENGTH = 255
KEY_PREFIX = "tidings:idempotency"
_GUARDED_METHODS = frozenset({"POST", "PATCH"})  # PATCH only reaches the REST API
_KEPT_HEADERS = frozenset({b"content-type", b"retry-after", b"location"})
_TRANSIENT_STATUSES = frozenset({408, 409, 425, 429})
_TRANSIENT_CODES = frozenset({"INTERNAL", "UNAVAILABLE", "RATE_LIMITED"})
# A key whose record vanished between our SET NX and GET (it just expired) is claimed again, this often at most.
_CLAIM_ATTEMPTS = 3

# KEYS[1] the record; ARGV: owner, the final record ('' = release), its TTL. Acts only while the claim is ours.
_FINISH = """
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current)['owner'] ~= ARGV[1] then return 0 end
if ARGV[2] == '' then return redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[2], 'EX', tonumber(ARGV[3]))
return 1
"""
# KEYS[1] the record; ARGV: owner, seconds. Extends a running claim that is still ours.
_RENEW = """
local current = redis.call('GET', KEYS[1])
if not current or cjson.decode(current)['owner'] ~= ARGV[1] then return 0 end
return redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
"""


class IdempotencyMiddleware:
    def __init__(
        self, app: ASGIApp, *, ttl_seconds: int, lock_seconds: int, max_body_bytes: int, max_tokens: int
    ) -> None:
        self.app = app
        self.ttl_seconds = ttl_seconds
        self.lock_seconds = min(lock_seconds, ttl_seconds)
        self.max_body_bytes = max_body_bytes
        self.max_tokens = max_tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _GUARDED_METHODS or not _guarded_path(scope["path"]):
            await self.app(scope, receive, send)
            return
        key = _header(scope, HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _valid_key(key):
            await _answer(send, 400, f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
            return
        body, complete = await _read_body(receive)
        if not complete:
            return  # the client left mid-upload: nothing to run, and the key stays free for its retry
        replay = _replaying_receive(body, receive)
        if scope["path"] == "/graphql" and not _is_mutation(body, self.max_tokens):
            await self.app(scope, replay, send)
        else:
            await self._guarded(scope, replay, send, key, body)

    async def _guarded(self, scope: Scope, replay: Receive, send: Send, key: bytes, body: bytes) -> None:
        """Runs the request once per key: claims the key, or answers from (or about) the claim already there."""
        redis = _redis(scope)
        caller = hashlib.sha256(_header(scope, b"authorization") or b"").hexdigest()
        record_key = f"{KEY_PREFIX}:{caller}:{hashlib.sha256(key).hexdigest()}"
        digest = hashlib.sha256(body).hexdigest()
        owner = secrets.token_hex(16)
        try:
            existing = await self._claim(redis, record_key, digest, owner)
        except RedisError as error:
            logger.warning("Idempotency-Key refused: Redis unavailable (%s)", type(error).__name__)
            await _answer(send, 503, "the idempotency store is unavailable; retry later with the same key")
            return
        if existing is not None:
            await self._answer_existing(send, existing, digest)
            return
        # Seeds the transactionId a trigger without one gets, so a retry of a trigger whose answer was not kept
        # (the queue was down, the client never saw it) finds the trigger recorded the first time.
        scope.setdefault("state", {})[IDEMPOTENCY_SEED_STATE] = record_key
        await self._run(scope, replay, send, redis=redis, record_key=record_key, digest=digest, owner=owner)

    async def _claim(self, redis: Redis, record_key: str, digest: str, owner: str) -> dict[str, Any] | None:
        """None when this request claimed the key, else the record already there."""
        running = json.dumps({"state": "running", "request": digest, "owner": owner})
        for _ in range(_CLAIM_ATTEMPTS):
            if await redis.set(record_key, running, nx=True, ex=self.lock_seconds):
                return None
            stored = await redis.get(record_key)
            if stored is not None:
                record: dict[str, Any] = json.loads(stored)
                return record
        raise RedisError("the idempotency record keeps vanishing")

    async def _answer_existing(self, send: Send, record: dict[str, Any], digest: str) -> None:
        if record.get("request") != digest:
            await _answer(send, 422, "this Idempotency-Key was used with a different request body")
        elif record.get("state") != "done":
            await _answer(send, 409, "a request with this Idempotency-Key is still in progress; retry later")
        else:
            body = base64.b64decode(record["body"])
            headers = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in record["headers"]]
            headers += [(b"content-length", str(len(body)).encode()), (REPLAYED_HEADER, b"true")]
            await send({"type": "http.response.start", "status": record["status"], "headers": headers})
            await send({"type": "http.response.body", "body": body})

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, *, redis: Redis, record_key: str, digest: str, owner: str
    ) -> None:
        status = 0
        headers: list[tuple[str, str]] = []
        chunks: list[bytes] = []
        size = 0

        async def capturing_send(message: Message) -> None:
            nonlocal status, size
            if message["type"] == "http.response.start":
                status = message["status"]
                headers.extend(
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in message.get("headers", [])
                    if name.lower() in _KEPT_HEADERS
                )
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= self.max_body_bytes:
                    chunks.append(chunk)
            await send(message)

        kept = False
        # Only the request that claimed the key writes or releases it; the claim is renewed while it runs, so a
        # slow request is not run a second time by a retry that finds the claim expired.
        renewing = asyncio.create_task(self._renew(redis, record_key, owner))
        try:
            await self.app(scope, receive, capturing_send)
            body = b"".join(chunks)
            if status and size <= self.max_body_bytes and _final(status, scope["path"], body):
                record = {"state": "done", "request": digest, "status": status, "headers": headers}
                record["body"] = base64.b64encode(body).decode()
                kept = bool(await redis.eval(_FINISH, 1, record_key, owner, json.dumps(record), self.ttl_seconds))
        except RedisError as error:
            # The answer went out already; the key is released below so a retry runs again.
            logger.warning("Idempotency-Key answer not kept: Redis unavailable (%s)", type(error).__name__)
        finally:
            renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewing
            if not kept:
                try:
                    await redis.eval(_FINISH, 1, record_key, owner, "", 0)
                except RedisError as error:
                    logger.warning("Idempotency-Key not released: Redis unavailable (%s)", type(error).__name__)

    async def _renew(self, redis: Redis, record_key: str, owner: str) -> None:
        while True:
            await asyncio.sleep(self.lock_seconds / 3)
            try:
                if not await redis.eval(_RENEW, 1, record_key, owner, self.lock_seconds):
                    return  # no longer ours (it expired while Redis was unreachable): nothing to keep alive
            except RedisError:
                continue  # the claim may still be there when Redis is back


def _guarded_path(path: str) -> bool:
    return path == "/graphql" or path.startswith(("/v1/", "/v2/"))


def _valid_key(key: bytes) -> bool:
    return 0 < len(key) <= MAX_KEY_LENGTH and all(0x20 <= byte <= 0x7E for byte in key)


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == wanted:
            return bytes(value)
    return None


def _redis(scope: Scope) -> Redis:
    """The API's Redis client, from the state its lifespan yields (`asgi.State`)."""
    redis: Redis = scope["state"]["resources"].redis
    return redis


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    """The request body, and whether all of it arrived; BodyLimitMiddleware, outside this one, bounds it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks), False
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), True


def _replaying_receive(body: bytes, receive: Receive) -> Receive:
    """Hands the body already read to the application, then the client's later messages (a disconnect)."""
    delivered = False

    async def replay() -> Message:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def _is_mutation(body: bytes, max_tokens: int) -> bool:
    """Whether a GraphQL request body runs a mutation; one that cannot be read is treated as one (guarded)."""
    try:
        request = json.loads(body)
    except ValueError:
        return True
    requests = request if isinstance(request, list) else [request]
    for one in requests:
        if not isinstance(one, dict) or not isinstance(one.get("query"), str):
            return True
        try:
            document = parse(one["query"], no_location=True, max_tokens=max_tokens)
        except GraphQLError:
            continue  # answered with a syntax error; nothing runs
        name = one.get("operationName")
        operation = get_operation_ast(document, name if isinstance(name, str) else None)
        if operation is None or operation.operation is OperationType.MUTATION:
            return True
    return False


def _final(status: int, path: str, body: bytes) -> bool:
    """Whether an answer would be the same on a retry, and so is kept for replays."""
    if status >= 500 or status in _TRANSIENT_STATUSES:
        return False
    if path != "/graphql":
        return True
    try:
        answer = json.loads(body)
    except ValueError:
        return True
    errors = answer.get("errors") if isinstance(answer, dict) else None
    for error in errors if isinstance(errors, list) else []:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        if isinstance(extensions, dict) and extensions.get("code") in _TRANSIENT_CODES:
            return False
    return True


async def _answer(send: Send, status: int, reason: str) -> None:
    body = json.dumps({"error": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
