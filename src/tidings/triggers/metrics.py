"""Triggers accepted and refused, counted where they are decided (the domain), so every API that triggers — GraphQL
today, a REST API later — counts the same way: one per event, a bulk call counting each of its events."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import Counter

from tidings.core.errors import TidingsError

TRIGGERS = Counter(
    "tidings_triggers_total",
    "Trigger events by outcome (accepted, duplicate: a repeated transactionId, rejected) and reason (the error "
    "code of a rejection, else none)",
    ["outcome", "reason"],
)


class _Result(Protocol):
    @property
    def duplicate(self) -> bool: ...


def count_accepted(results: Iterable[_Result]) -> None:
    for result in results:
        TRIGGERS.labels("duplicate" if result.duplicate else "accepted", "none").inc()


def count_rejected(events: int, error: BaseException) -> None:
    """`events` refused for `error`: its code (a class constant of the exception tree), INTERNAL for anything else."""
    TRIGGERS.labels("rejected", error.code if isinstance(error, TidingsError) else "INTERNAL").inc(events)
