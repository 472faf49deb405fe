"""Subscriber sessions: what lets a browser read one subscriber's inbox without the environment's secret key.

`inboxSession` checks the subscriber's HMAC (when the environment requires it) and hands out a short-lived token
signed by the server; every inbox request and websocket carries it, and it reaches that subscriber only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from beanie import PydanticObjectId

from tidings.core.clock import utcnow
from tidings.core.crypto import Cipher
from tidings.core.errors import ForbiddenError, UnauthenticatedError
from tidings.core.limits import Limits
from tidings.core.tokens import InvalidTokenError, Signer
from tidings.core.validation import validated
from tidings.environments.ratelimits import RateClass, RateLimiter
from tidings.environments.service import environment_by_application_identifier, subscriber_hash_matches
from tidings.inbox.feed import InboxCounts, inbox_counts
from tidings.inbox.log import last_seq
from tidings.inbox.state import Owner
from tidings.subscribers.commands import UpsertSubscriber
from tidings.subscribers.service import upsert_subscriber

SESSION_SIGNING_CONTEXT = "inbox-session-v1"
# A hex HMAC-SHA256. Checked before comparing: `hmac.compare_digest` raises on non-ASCII text, which a client sends.
_HASH = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class Grant:
    token: str
    expires_at: datetime
    owner: Owner
    seq: int  # the newest event's: where a client that just loaded the feed subscribes from
    counts: InboxCounts


class ExpiredTokenError(UnauthenticatedError):
    pass


def session_signer(secret_key: str) -> Signer:
    return Signer(secret_key, purpose=SESSION_SIGNING_CONTEXT)


async def open_session(
    application_identifier: str,
    subscriber_id: str,
    subscriber_hash: str | None,
    *,
    cipher: Cipher,
    signer: Signer,
    ttl: timedelta,
    limits: Limits,
    limiter: RateLimiter | None = None,
) -> Grant:
    environment = await environment_by_application_identifier(application_identifier)
    if environment is None or environment.id is None:
        raise UnauthenticatedError("unknown applicationIdentifier", field="applicationIdentifier")
    if subscriber_hash is None:
        if environment.inbox_hmac_required:
            raise UnauthenticatedError("this environment requires subscriberHash", field="subscriberHash")
    elif not _HASH.fullmatch(subscriber_hash) or not subscriber_hash_matches(
        environment, subscriber_id, subscriber_hash, cipher
    ):
        raise ForbiddenError("subscriberHash does not match subscriberId", field="subscriberHash")
    if limiter is not None:
        # Charged only now: the applicationIdentifier is public, and calls with a wrong hash must not be able to
        # spend the environment's sessions and lock its real users out.
        await limiter.take(str(environment.id), RateClass.INBOX_SESSION)
    # As in Novu: a subscriber the backend has not created yet gets a record (with nothing but its id) on first use.
    command = validated(UpsertSubscriber, {"subscriber_id": subscriber_id}, prefix="")
    await upsert_subscriber(environment.id, command, limits)
    expires_at = utcnow() + ttl
    token = signer.sign({"e": str(environment.id), "s": subscriber_id, "x": int(expires_at.timestamp())})
    seq = await last_seq(environment.id, subscriber_id)
    counts = await inbox_counts(environment.id, subscriber_id)
    return Grant(token=token, expires_at=expires_at, owner=Owner(environment.id, subscriber_id), seq=seq, counts=counts)


def verify_session(token: str, signer: Signer) -> Owner:
    """The subscriber a token stands for; ExpiredTokenError when it ran out, UnauthenticatedError when forged."""
    try:
        claims = signer.verify(token)
        environment_id = PydanticObjectId(claims["e"])
        subscriber_id = claims["s"]
        expires = float(claims["x"])
    except (InvalidTokenError, KeyError, TypeError, ValueError):
        raise UnauthenticatedError("invalid subscriber token") from None
    if not isinstance(subscriber_id, str):
        raise UnauthenticatedError("invalid subscriber token")
    if expires <= utcnow().timestamp():
        raise ExpiredTokenError("subscriber token expired; open a new inboxSession")
    return Owner(environment_id, subscriber_id)
