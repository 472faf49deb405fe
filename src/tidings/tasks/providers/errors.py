"""How provider failures become `DeliveryError`s: HTTP statuses, SMTP replies, Retry-After, refused addresses.

The kinds decide what the engine does next: TRANSIENT is retried with backoff, PERMANENT fails the step,
BAD_ENDPOINT fails it and tells the engine to stop using the subscriber's address.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from tidings.core.net import HostResolutionError, UnsafeUrlError
from tidings.engine.delivery import DeliveryError, FailureKind

# A busy service may ask for more, but a day is past any useful schedule for a notification.
MAX_RETRY_AFTER_SECONDS = 86_400.0
_RETRYABLE_STATUSES = frozenset({408, 425, 429})
_GONE_STATUSES = frozenset({404, 410})
_RECIPIENT_REPLIES = frozenset({550, 551, 553})
_MAX_REPLY_CHARS = 200


def http_failure_kind(status: int, *, subscriber_endpoint: bool) -> FailureKind:
    """The kind of a non-2xx answer; 404/410 condemn only an address the subscriber gave, not the integration's."""
    if status in _RETRYABLE_STATUSES or status >= 500:
        return FailureKind.TRANSIENT
    if status in _GONE_STATUSES and subscriber_endpoint:
        return FailureKind.BAD_ENDPOINT
    return FailureKind.PERMANENT


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), clamped to [0, a day]; None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER_SECONDS)


def smtp_reply(code: int, message: str) -> str:
    """`<code> <first line>` of a server reply, short enough to store."""
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return f"{code} {first_line[:_MAX_REPLY_CHARS]}".strip()


def smtp_failure_kind(code: int, message: str, *, recipient_stage: bool) -> FailureKind:
    """4xx is temporary; 550/551/553 blame the recipient when refused at RCPT or with a 5.1.x status; other 5xx fail.

    A 550 answer to MAIL FROM (our sender refused) or to the content is about us, not the subscriber's address.
    """
    if 400 <= code < 500:
        return FailureKind.TRANSIENT
    if code in _RECIPIENT_REPLIES and (recipient_stage or message.lstrip().startswith("5.1.")):
        return FailureKind.BAD_ENDPOINT
    return FailureKind.PERMANENT


def refused_address(error: UnsafeUrlError | HostResolutionError, detail: Mapping[str, Any]) -> DeliveryError:
    """A guard refusal is configuration (PERMANENT); a name that does not resolve may be a DNS outage (TRANSIENT)."""
    kind = FailureKind.TRANSIENT if isinstance(error, HostResolutionError) else FailureKind.PERMANENT
    return DeliveryError(str(error), kind=kind, detail=detail)
