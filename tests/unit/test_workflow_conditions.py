"""Structural checks of JSON-logic step conditions."""

from __future__ import annotations

from typing import Any

import pytest

from tidings.workflows.conditions import MAX_DEPTH, ConditionError, check_conditions


@pytest.mark.parametrize(
    "rule",
    [
        {"==": [{"var": "payload.plan"}, "pro"]},
        {"and": [{">=": [{"var": "subscriber.data.age"}, 18]}, {"!": {"var": "steps.in-app.seen"}}]},
        {"in": ["admin", {"var": ["actor.roles", []]}]},
        {"if": [{"var": "tenant.id"}, True, False]},
        {"missing": ["payload.a", "payload.b"]},
        {"missing_some": [1, ["payload.email", "subscriber.phone"]]},
        # Inside an iterating operator `var` reads the current element, so any relative path is fine.
        {"some": [{"var": "payload.items"}, {">": [{"var": "price"}, 10]}]},
        {"reduce": [{"var": "payload.n"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
        {"filter": [{"var": "payload.list"}, {"==": [{"var": 0}, 1]}]},
        {"!!": [{"cat": ["a", {"substr": [{"var": "payload.s"}, 1]}]}]},
    ],
)
def test_valid_rules_pass(rule: dict[str, Any]) -> None:
    check_conditions(rule)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ([{"==": [1, 1]}], "must be a JSON-logic object"),
        ("payload.x", "must be a JSON-logic object"),
        ({"===": [1, 1], "and": []}, "exactly one operator key, got 2"),
        ({}, "exactly one operator key, got 0"),
        ({"regex": ["a", "b"]}, "unknown JSON-logic operator 'regex'"),
        ({"and": [{"==": [1, 1]}, {"$where": "x"}]}, "unknown JSON-logic operator '$where' at conditions.and[1]"),
        ({"==": [{"var": "secrets.key"}, 1]}, "path 'secrets.key'"),
        ({"==": [{"var": ""}, 1]}, "path ''"),
        ({"==": [{"var": ["environment.apiKey", 1]}, 1]}, "path 'environment.apiKey'"),
        ({"var": {"cat": ["pay", "load.x"]}}, "literal path"),
        ({"var": 3}, "literal path"),
        ({"missing": ["password"]}, "path 'password'"),
        ({"missing_some": [1, ["payload.a", "env.b"]]}, "path 'env.b'"),
        # The first argument of an iterating operator is still read from the root.
        ({"all": [{"var": "items"}, {"var": "x"}]}, "path 'items'"),
        # reduce's initial value (its third argument) is read from the root too.
        ({"reduce": [{"var": "payload.n"}, {"var": "current"}, {"var": "start"}]}, "path 'start'"),
    ],
)
def test_invalid_rules_are_refused(rule: Any, message: str) -> None:
    with pytest.raises(ConditionError) as error:
        check_conditions(rule)
    assert message in str(error.value)


def _nested(levels: int) -> dict[str, Any]:
    rule: Any = {"var": "payload.x"}
    for _ in range(levels - 1):
        rule = {"!": rule}
    return rule  # type: ignore[no-any-return]


def test_depth_is_capped() -> None:
    check_conditions(_nested(MAX_DEPTH))
    with pytest.raises(ConditionError, match="deeper than 20"):
        check_conditions(_nested(MAX_DEPTH + 1))


def test_node_count_is_capped() -> None:
    with pytest.raises(ConditionError, match="more than 1000 values"):
        check_conditions({"and": list(range(1000))})
