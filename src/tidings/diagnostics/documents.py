"""Persistence of worker probes."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import ClassVar

from beanie import Document, PydanticObjectId
from pydantic import BaseModel, Field
from pymongo import ASCENDING, IndexModel

from tidings.core.clock import utcnow


class ProbeStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"


class ProbeAttempt(BaseModel):
    pid: int
    host: str
    started_at: datetime = Field(default_factory=utcnow)


class Probe(Document):
    """One round trip through the queue: who picked it up (every attempt) and who finished it."""

    # The environment whose API key started it: only that key reads it back (None for probes made in-process).
    environment_id: PydanticObjectId | None = None
    status: ProbeStatus = ProbeStatus.QUEUED
    hold_seconds: float = 0.0
    attempts: list[ProbeAttempt] = Field(default_factory=list)
    completed_by: ProbeAttempt | None = None
    created_at: datetime = Field(default_factory=utcnow)

    class Settings:
        name = "diagnostic_probes"
        # Probes are diagnostics, not records: MongoDB deletes them a day after they were made.
        indexes: ClassVar[list[IndexModel]] = [IndexModel([("created_at", ASCENDING)], expireAfterSeconds=86_400)]
