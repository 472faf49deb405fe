"""Subscriber sessions under attack: tampered HMACs, forged, expired and edited tokens, and each credential used where
the other kind belongs. Every attempt is refused with its code (never INTERNAL) and hands out no token."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from beanie import PydanticObjectId

from tests.inbox_client import Socket
from tests.security.conftest import SESSION, Caller, Guarded, admin, session_token, subscriber_hash
from tests.servers import SECRET_KEY
from tidings.core.crypto import Cipher
from tidings.core.tokens import Signer
from tidings.environments.service import IssuedEnvironment, create_environment
from tidings.inbox.sessions import SESSION_SIGNING_CONTEXT

USER = "hmac-user"
FEED = "{ inboxNotifications { edges { node { id } } } }"


@pytest.fixture(scope="module")
async def gamma(guarded: Guarded) -> IssuedEnvironment:
    """An environment that requires the HMAC, as production ones should."""
    issued = await create_environment(f"gamma-{uuid.uuid4().hex[:6]}", cipher=Cipher(SECRET_KEY))
    await admin(guarded.client, issued.api_key).data(
        "mutation { setInboxHmacRequired(required: true) { inboxHmacRequired } }"
    )
    return issued


def _flip(digest: str, index: int = 7) -> str:
    return digest[:index] + ("0" if digest[index] != "0" else "1") + digest[index + 1 :]


def _hashes(gamma: IssuedEnvironment, guarded: Guarded) -> dict[str, str]:
    good = subscriber_hash(gamma.api_key, USER)
    return {
        "flipped-digit": _flip(good),
        "flipped-last-digit": _flip(good, 63),
        "other-subscriber": subscriber_hash(gamma.api_key, "someone-else"),
        "other-environment-key": subscriber_hash(guarded.alpha.api_key, USER),
        "empty": "",
        "non-hex": "zz" * 32,
        "truncated": good[:32],
        "good-plus-more": good + "00",
        "very-long": "ab" * 200_000,
        "non-ascii": "é" * 64,
        "nul": "\x00" * 64,
    }


HASH_CASES = [
    "flipped-digit",
    "flipped-last-digit",
    "other-subscriber",
    "other-environment-key",
    "empty",
    "non-hex",
    "truncated",
    "good-plus-more",
    "very-long",
    "non-ascii",
    "nul",
]


@pytest.mark.parametrize("case", HASH_CASES)
async def test_a_tampered_subscriber_hash_is_forbidden(guarded: Guarded, gamma: IssuedEnvironment, case: str) -> None:
    subscriber_hash_value = _hashes(gamma, guarded)[case]
    response = await Caller(guarded.client, None).post(
        SESSION, {"app": gamma.environment.application_identifier, "id": USER, "hash": subscriber_hash_value}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert (error["extensions"]["code"], error["extensions"].get("field")) == ("FORBIDDEN", "subscriberHash")
    assert subscriber_hash_value[:64] not in error["message"] or not subscriber_hash_value


async def test_the_right_hash_opens_and_a_missing_one_is_unauthenticated(
    guarded: Guarded, gamma: IssuedEnvironment
) -> None:
    anonymous = Caller(guarded.client, None)
    app = gamma.environment.application_identifier
    assert await anonymous.codes(SESSION, app=app, id=USER) == ["UNAUTHENTICATED"]
    good = subscriber_hash(gamma.api_key, USER)
    assert (await anonymous.data(SESSION, app=app, id=USER, hash=good))["inboxSession"]["token"]
    assert await anonymous.codes(SESSION, app="not-" + app, id=USER, hash=good) == ["UNAUTHENTICATED"]


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def _with_claims(token: str, claims: dict[str, Any]) -> str:
    """The same signature over an edited payload."""
    version, _, mac = token.split(".")
    payload = base64.urlsafe_b64encode(json.dumps(claims, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{version}.{payload}.{mac}"


def _bad_tokens(real: str, gamma: IssuedEnvironment) -> dict[str, tuple[str, str]]:
    """name → (token, what the refusal message says)."""
    claims = _claims(real)
    now = int(datetime.now(UTC).timestamp())
    signer = Signer(SECRET_KEY, purpose=SESSION_SIGNING_CONTEXT)
    return {
        "expired": (signer.sign({**claims, "x": now - 1}), "expired"),
        "long-expired": (signer.sign({**claims, "x": 1}), "expired"),
        "other-subscriber-in-payload": (_with_claims(real, {**claims, "s": "someone-else"}), "invalid"),
        "other-environment-in-payload": (_with_claims(real, {**claims, "e": str(PydanticObjectId())}), "invalid"),
        "later-expiry-in-payload": (_with_claims(real, {**claims, "x": now + 10**8}), "invalid"),
        "other-secret": (
            Signer("another-secret-key-0123456789abcdef0123", purpose=SESSION_SIGNING_CONTEXT).sign(claims),
            "invalid",
        ),
        "other-purpose": (Signer(SECRET_KEY, purpose="something-else").sign(claims), "invalid"),
        "no-signature": (real.rsplit(".", 1)[0] + ".", "invalid"),
        "other-version": ("v2" + real[2:], "invalid"),
        "garbage": ("v1.garbage.sig", "invalid"),
        "non-ascii": ("v1.é.é", "invalid"),
        "very-long": ("v1." + "a" * 300_000 + ".b", "invalid"),
        "subscriber-id-not-a-string": (signer.sign({**claims, "s": ["x"]}), "invalid"),
        "no-expiry": (signer.sign({"e": claims["e"], "s": claims["s"]}), "invalid"),
        "api-key-as-token": (gamma.api_key, "invalid"),
    }


TOKEN_CASES = [
    "expired",
    "long-expired",
    "other-subscriber-in-payload",
    "other-environment-in-payload",
    "later-expiry-in-payload",
    "other-secret",
    "other-purpose",
    "no-signature",
    "other-version",
    "garbage",
    "non-ascii",
    "very-long",
    "subscriber-id-not-a-string",
    "no-expiry",
    "api-key-as-token",
]


@pytest.mark.parametrize("case", TOKEN_CASES)
async def test_a_bad_subscriber_token_is_unauthenticated(guarded: Guarded, gamma: IssuedEnvironment, case: str) -> None:
    real = await session_token(guarded.client, gamma, USER)
    token, says = _bad_tokens(real, gamma)[case]
    response = await Caller(guarded.client, f"Bearer {token}").post(FEED)
    assert response.status_code == 200, response.text
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED", response.text
    assert says in error["message"]


async def test_a_subscriber_token_is_no_api_key(guarded: Guarded, gamma: IssuedEnvironment) -> None:
    token = await session_token(guarded.client, gamma, USER)
    as_key = Caller(guarded.client, f"ApiKey {token}")
    assert await as_key.codes("{ currentEnvironment { name } }") == ["UNAUTHENTICATED"]
    assert await as_key.codes('{ subscriber(subscriberId: "hmac-user") { email } }') == ["UNAUTHENTICATED"]
    # And the admin key is no subscriber token, even for its own environment's subscriber.
    assert await Caller(guarded.client, f"Bearer {gamma.api_key}").codes(FEED) == ["UNAUTHENTICATED"]
    assert await admin(guarded.client, gamma.api_key).codes(FEED) == ["UNAUTHENTICATED"]


@pytest.mark.parametrize(
    ("case", "close_code"),
    [("expired", 4401), ("other-subscriber-in-payload", 4403), ("other-secret", 4403), ("api-key-as-token", 4403)],
)
async def test_the_websocket_refuses_the_same_tokens(
    guarded: Guarded, gamma: IssuedEnvironment, case: str, close_code: int
) -> None:
    real = await session_token(guarded.client, gamma, USER)
    token, _ = _bad_tokens(real, gamma)[case]
    socket = await Socket.open(guarded.base, {"token": token})
    with pytest.raises(websockets.ConnectionClosed) as closed:
        await socket.connection.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == close_code
