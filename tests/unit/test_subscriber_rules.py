"""Subscriber rules that need no database: search prefixes as index ranges, and subscriber ids."""

from __future__ import annotations

import pytest

from tidings.subscribers.commands import is_subscriber_id
from tidings.subscribers.service import prefix_range

TOP = "\U0010ffff"


@pytest.mark.parametrize(
    ("prefix", "expected"),
    [
        ("ada", {"$gte": "ada", "$lt": "adb"}),
        ("a@", {"$gte": "a@", "$lt": "aA"}),
        (f"ab{TOP}", {"$gte": f"ab{TOP}", "$lt": "ac"}),
        (f"a{TOP}{TOP}", {"$gte": f"a{TOP}{TOP}", "$lt": "b"}),
        (TOP, {"$gte": TOP}),
        ("x\ud7ff", {"$gte": "x\ud7ff", "$lt": "x\ue000"}),
    ],
)
def test_prefix_range_covers_exactly_the_strings_with_the_prefix(prefix: str, expected: dict[str, str]) -> None:
    assert prefix_range(prefix) == expected
    bound = prefix_range(prefix).get("$lt")
    assert bound is None or bound.encode()  # always a string BSON can hold


@pytest.mark.parametrize(
    ("value", "valid"),
    [("ada", True), ("x" * 128, True), ("", False), ("x" * 129, False), ("tab\there", False), ("nul\x00", False)],
)
def test_is_subscriber_id(value: str, valid: bool) -> None:
    assert is_subscriber_id(value) is valid
