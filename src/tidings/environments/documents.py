"""Persistence of environments and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

from beanie import Document
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from tidings.core.clock import utcnow


class ApiKey(BaseModel):
    """A secret API key, kept only as its SHA-256; `hint` is the last characters, to tell keys apart."""

    hash: str
    hint: str
    # The key itself, encrypted (bound to its hash): subscriber HMACs are computed with the plain key, as in Novu,
    # so the server must be able to recompute them. Keys issued before this field existed have none.
    sealed: str | None = None
    created_at: datetime = Field(default_factory=utcnow)
    # Set when the key was rotated out: it keeps working until then, so deployments can switch over.
    expires_at: datetime | None = None

    def is_valid(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class RetentionOverrides(BaseModel):
    """Days an environment keeps records (environments.retention); None keeps the server's default
    (TIDINGS_RETENTION_*), even when that changes."""

    messages_days: int | None = None
    jobs_days: int | None = None
    execution_details_days: int | None = None


class Environment(Document):
    name: str
    application_identifier: str
    api_keys: list[ApiKey] = Field(default_factory=list)
    # Bumped by every change of `api_keys`: a rotation writes only if no other change came between its read and
    # its write (documents stored before this field existed read as 0).
    keys_version: int = 0
    # When on, `inboxSession` needs `subscriberHash` = HMAC-SHA256(secret API key, subscriberId) (docs/inbox.md).
    inbox_hmac_required: bool = False
    retention: RetentionOverrides | None = None
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "environments"
        indexes: ClassVar[list[IndexModel]] = [
            IndexModel([("name", ASCENDING)], unique=True),
            IndexModel([("application_identifier", ASCENDING)], unique=True),
            IndexModel([("api_keys.hash", ASCENDING)], unique=True, sparse=True),
        ]
