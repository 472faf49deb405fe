"""Time in one place, always timezone-aware UTC."""

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Now, truncated to the millisecond that MongoDB stores, so a value compares equal after a round trip."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)
