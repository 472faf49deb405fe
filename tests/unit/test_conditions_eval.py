"""Evaluation of JSON-logic step conditions: the official JsonLogic test table (https://jsonlogic.com/tests.json),
JavaScript's truthiness and coercions, `var` paths and defaults, the work caps, and realistic workflow rules."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tidings.engine.conditions import MAX_ITEMS, MAX_STEPS, ConditionError, evaluate, is_truthy
from tidings.workflows.conditions import MAX_DEPTH, OPERATORS, check_conditions

# (rule, data, expected), transcribed from jsonlogic.com/tests.json; only `log` and custom operations are left out.
OFFICIAL: list[tuple[Any, Any, Any]] = [
    # Non-rules get passed through
    (True, {}, True),
    (False, {}, False),
    (17, {}, 17),
    (3.14, {}, 3.14),
    ("apple", {}, "apple"),
    (None, {}, None),
    (["a", "b"], {}, ["a", "b"]),
    # Single operator tests
    ({"==": [1, 1]}, {}, True),
    ({"==": [1, "1"]}, {}, True),
    ({"==": [1, 2]}, {}, False),
    ({"===": [1, 1]}, {}, True),
    ({"===": [1, "1"]}, {}, False),
    ({"===": [1, 2]}, {}, False),
    ({"!=": [1, 2]}, {}, True),
    ({"!=": [1, 1]}, {}, False),
    ({"!=": [1, "1"]}, {}, False),
    ({"!==": [1, 2]}, {}, True),
    ({"!==": [1, 1]}, {}, False),
    ({"!==": [1, "1"]}, {}, True),
    ({">": [2, 1]}, {}, True),
    ({">": [1, 1]}, {}, False),
    ({">": [1, 2]}, {}, False),
    ({">": ["2", 1]}, {}, True),
    ({">=": [2, 1]}, {}, True),
    ({">=": [1, 1]}, {}, True),
    ({">=": [1, 2]}, {}, False),
    ({">=": ["2", 1]}, {}, True),
    ({"<": [2, 1]}, {}, False),
    ({"<": [1, 1]}, {}, False),
    ({"<": [1, 2]}, {}, True),
    ({"<": ["1", 2]}, {}, True),
    ({"<": [1, 2, 3]}, {}, True),
    ({"<": [1, 1, 3]}, {}, False),
    ({"<": [1, 4, 3]}, {}, False),
    ({"<=": [2, 1]}, {}, False),
    ({"<=": [1, 1]}, {}, True),
    ({"<=": [1, 2]}, {}, True),
    ({"<=": ["1", 2]}, {}, True),
    ({"<=": [1, 2, 3]}, {}, True),
    ({"<=": [1, 4, 3]}, {}, False),
    ({"!": [False]}, {}, True),
    ({"!": False}, {}, True),
    ({"!": [True]}, {}, False),
    ({"!": True}, {}, False),
    ({"!": 0}, {}, True),
    ({"!": 1}, {}, False),
    ({"or": [True, True]}, {}, True),
    ({"or": [False, True]}, {}, True),
    ({"or": [True, False]}, {}, True),
    ({"or": [False, False]}, {}, False),
    ({"or": [False, False, True]}, {}, True),
    ({"or": [False, False, False]}, {}, False),
    ({"or": [False]}, {}, False),
    ({"or": [True]}, {}, True),
    ({"or": [1, 3]}, {}, 1),
    ({"or": [3, False]}, {}, 3),
    ({"or": [False, 3]}, {}, 3),
    ({"and": [True, True]}, {}, True),
    ({"and": [False, True]}, {}, False),
    ({"and": [True, False]}, {}, False),
    ({"and": [False, False]}, {}, False),
    ({"and": [True, True, True]}, {}, True),
    ({"and": [True, True, False]}, {}, False),
    ({"and": [False]}, {}, False),
    ({"and": [True]}, {}, True),
    ({"and": [1, 3]}, {}, 3),
    ({"and": [3, False]}, {}, False),
    ({"and": [False, 3]}, {}, False),
    ({"?:": [True, 1, 2]}, {}, 1),
    ({"?:": [False, 1, 2]}, {}, 2),
    ({"in": ["Bart", ["Bart", "Homer", "Lisa", "Marge", "Maggie"]]}, {}, True),
    ({"in": ["Milhouse", ["Bart", "Homer", "Lisa", "Marge", "Maggie"]]}, {}, False),
    ({"in": ["Spring", "Springfield"]}, {}, True),
    ({"in": ["i", "team"]}, {}, False),
    ({"cat": "ice"}, {}, "ice"),
    ({"cat": ["ice"]}, {}, "ice"),
    ({"cat": ["ice", "cream"]}, {}, "icecream"),
    ({"cat": [1, 2]}, {}, "12"),
    ({"cat": ["Robocop", 2]}, {}, "Robocop2"),
    ({"cat": ["we all scream for ", "ice", "cream"]}, {}, "we all scream for icecream"),
    ({"%": [1, 2]}, {}, 1),
    ({"%": [2, 2]}, {}, 0),
    ({"%": [3, 2]}, {}, 1),
    ({"max": [1, 2, 3]}, {}, 3),
    ({"max": [1, 3, 3]}, {}, 3),
    ({"max": [3, 2, 1]}, {}, 3),
    ({"max": [1]}, {}, 1),
    ({"min": [1, 2, 3]}, {}, 1),
    ({"min": [1, 1, 3]}, {}, 1),
    ({"min": [3, 2, 1]}, {}, 1),
    ({"min": [1]}, {}, 1),
    ({"+": [1, 2]}, {}, 3),
    ({"+": [2, 2, 2]}, {}, 6),
    ({"+": [1]}, {}, 1),
    ({"+": ["1", 1]}, {}, 2),
    ({"*": [3, 2]}, {}, 6),
    ({"*": [2, 2, 2]}, {}, 8),
    ({"*": [1]}, {}, 1),
    ({"*": ["1", 1]}, {}, 1),
    ({"-": [2, 3]}, {}, -1),
    ({"-": [3, 2]}, {}, 1),
    ({"-": [3]}, {}, -3),
    ({"-": ["1", 1]}, {}, 0),
    ({"/": [4, 2]}, {}, 2),
    ({"/": [2, 4]}, {}, 0.5),
    ({"/": ["1", 1]}, {}, 1),
    # Substring
    ({"substr": ["jsonlogic", 4]}, None, "logic"),
    ({"substr": ["jsonlogic", -5]}, None, "logic"),
    ({"substr": ["jsonlogic", 0, 1]}, None, "j"),
    ({"substr": ["jsonlogic", -1, 1]}, None, "c"),
    ({"substr": ["jsonlogic", 4, 5]}, None, "logic"),
    ({"substr": ["jsonlogic", -5, 5]}, None, "logic"),
    ({"substr": ["jsonlogic", -5, -2]}, None, "log"),
    ({"substr": ["jsonlogic", 1, -5]}, None, "son"),
    # Merge arrays
    ({"merge": []}, None, []),
    ({"merge": [[1]]}, None, [1]),
    ({"merge": [[1], []]}, None, [1]),
    ({"merge": [[1], [2]]}, None, [1, 2]),
    ({"merge": [[1], [2], [3]]}, None, [1, 2, 3]),
    ({"merge": [[1, 2], [3]]}, None, [1, 2, 3]),
    ({"merge": [[1], [2, 3]]}, None, [1, 2, 3]),
    ({"merge": 1}, None, [1]),
    ({"merge": [1, 2]}, None, [1, 2]),
    ({"merge": [1, [2]]}, None, [1, 2]),
    # Too few args
    ({"if": []}, None, None),
    ({"if": [True]}, None, True),
    ({"if": [False]}, None, False),
    ({"if": ["apple"]}, None, "apple"),
    # Simple if/then/else cases
    ({"if": [True, "apple"]}, None, "apple"),
    ({"if": [False, "apple"]}, None, None),
    ({"if": [True, "apple", "banana"]}, None, "apple"),
    ({"if": [False, "apple", "banana"]}, None, "banana"),
    # Empty arrays are falsy
    ({"if": [[], "apple", "banana"]}, None, "banana"),
    ({"if": [[1], "apple", "banana"]}, None, "apple"),
    ({"if": [[1, 2, 3, 4], "apple", "banana"]}, None, "apple"),
    # Empty strings are falsy; all other strings are truthy
    ({"if": ["", "apple", "banana"]}, None, "banana"),
    ({"if": ["zucchini", "apple", "banana"]}, None, "apple"),
    ({"if": ["0", "apple", "banana"]}, None, "apple"),
    # You can cast a string to numeric with a unary `+`
    ({"===": [0, "0"]}, None, False),
    ({"===": [0, {"+": "0"}]}, None, True),
    ({"if": [{"+": "0"}, "apple", "banana"]}, None, "banana"),
    ({"if": [{"+": "1"}, "apple", "banana"]}, None, "apple"),
    # Zero is falsy; all other numbers are truthy
    ({"if": [0, "apple", "banana"]}, None, "banana"),
    ({"if": [1, "apple", "banana"]}, None, "apple"),
    ({"if": [3.1416, "apple", "banana"]}, None, "apple"),
    ({"if": [-1, "apple", "banana"]}, None, "apple"),
    # Truthy and falsy definitions matter in Boolean operations
    ({"!": [[]]}, {}, True),
    ({"!!": [[]]}, {}, False),
    ({"and": [[], True]}, {}, []),
    ({"or": [[], True]}, {}, True),
    ({"!": [0]}, {}, True),
    ({"!!": [0]}, {}, False),
    ({"and": [0, True]}, {}, 0),
    ({"or": [0, True]}, {}, True),
    ({"!": [""]}, {}, True),
    ({"!!": [""]}, {}, False),
    ({"and": ["", True]}, {}, ""),
    ({"or": ["", True]}, {}, True),
    ({"!": ["0"]}, {}, False),
    ({"!!": ["0"]}, {}, True),
    ({"and": ["0", True]}, {}, True),
    ({"or": ["0", True]}, {}, "0"),
    # If the conditional is logic, it gets evaluated
    ({"if": [{">": [2, 1]}, "apple", "banana"]}, None, "apple"),
    ({"if": [{">": [1, 2]}, "apple", "banana"]}, None, "banana"),
    # If the consequents are logic, they get evaluated
    ({"if": [True, {"cat": ["ap", "ple"]}, {"cat": ["ba", "na", "na"]}]}, None, "apple"),
    ({"if": [False, {"cat": ["ap", "ple"]}, {"cat": ["ba", "na", "na"]}]}, None, "banana"),
    # If/then/elseif/then cases
    ({"if": [True, "apple", True, "banana"]}, None, "apple"),
    ({"if": [True, "apple", False, "banana"]}, None, "apple"),
    ({"if": [False, "apple", True, "banana"]}, None, "banana"),
    ({"if": [False, "apple", False, "banana"]}, None, None),
    ({"if": [True, "apple", True, "banana", "carrot"]}, None, "apple"),
    ({"if": [True, "apple", False, "banana", "carrot"]}, None, "apple"),
    ({"if": [False, "apple", True, "banana", "carrot"]}, None, "banana"),
    ({"if": [False, "apple", False, "banana", "carrot"]}, None, "carrot"),
    ({"if": [False, "apple", False, "banana", False, "carrot"]}, None, None),
    ({"if": [False, "apple", False, "banana", False, "carrot", "date"]}, None, "date"),
    ({"if": [False, "apple", False, "banana", True, "carrot", "date"]}, None, "carrot"),
    ({"if": [False, "apple", True, "banana", False, "carrot", "date"]}, None, "banana"),
    ({"if": [False, "apple", True, "banana", True, "carrot", "date"]}, None, "banana"),
    ({"if": [True, "apple", False, "banana", False, "carrot", "date"]}, None, "apple"),
    ({"if": [True, "apple", False, "banana", True, "carrot", "date"]}, None, "apple"),
    ({"if": [True, "apple", True, "banana", False, "carrot", "date"]}, None, "apple"),
    ({"if": [True, "apple", True, "banana", True, "carrot", "date"]}, None, "apple"),
    # Arrays with logic
    ([1, {"var": "x"}, 3], {"x": 2}, [1, 2, 3]),
    ({"if": [{"var": "x"}, [{"var": "y"}], 99]}, {"x": True, "y": 42}, [42]),
    # Compound tests
    ({"and": [{">": [3, 1]}, True]}, {}, True),
    ({"and": [{">": [3, 1]}, False]}, {}, False),
    ({"and": [{">": [3, 1]}, {"!": True}]}, {}, False),
    ({"and": [{">": [3, 1]}, {"<": [1, 3]}]}, {}, True),
    ({"?:": [{">": [3, 1]}, "visible", "hidden"]}, {}, "visible"),
    # Data-driven
    ({"var": ["a"]}, {"a": 1}, 1),
    ({"var": ["b"]}, {"a": 1}, None),
    ({"var": ["a"]}, None, None),
    ({"var": "a"}, {"a": 1}, 1),
    ({"var": "b"}, {"a": 1}, None),
    ({"var": "a"}, None, None),
    ({"var": ["a", 1]}, None, 1),
    ({"var": ["b", 2]}, {"a": 1}, 2),
    ({"var": "a.b"}, {"a": {"b": "c"}}, "c"),
    ({"var": "a.q"}, {"a": {"b": "c"}}, None),
    ({"var": ["a.q", 9]}, {"a": {"b": "c"}}, 9),
    ({"var": 1}, ["apple", "banana"], "banana"),
    ({"var": "1"}, ["apple", "banana"], "banana"),
    ({"var": "1.1"}, ["apple", ["banana", "beer"]], "beer"),
    (
        {"and": [{"<": [{"var": "temp"}, 110]}, {"==": [{"var": "pie.filling"}, "apple"]}]},
        {"temp": 100, "pie": {"filling": "apple"}},
        True,
    ),
    (
        {"var": [{"?:": [{"<": [{"var": "temp"}, 110]}, "pie.filling", "pie.eta"]}]},
        {"temp": 100, "pie": {"filling": "apple", "eta": "60s"}},
        "apple",
    ),
    ({"in": [{"var": "filling"}, ["apple", "cherry"]]}, {"filling": "apple"}, True),
    ({"var": "a.b.c"}, None, None),
    ({"var": "a.b.c"}, {"a": None}, None),
    ({"var": "a.b.c"}, {"a": {"b": None}}, None),
    ({"var": ""}, 1, 1),
    ({"var": None}, 1, 1),
    ({"var": []}, 1, 1),
    # Missing
    ({"missing": []}, None, []),
    ({"missing": ["a"]}, None, ["a"]),
    ({"missing": "a"}, None, ["a"]),
    ({"missing": "a"}, {"a": "apple"}, []),
    ({"missing": ["a"]}, {"a": "apple"}, []),
    ({"missing": ["a", "b"]}, {"a": "apple"}, ["b"]),
    ({"missing": ["a", "b"]}, {"b": "banana"}, ["a"]),
    ({"missing": ["a", "b"]}, {"a": "apple", "b": "banana"}, []),
    ({"missing": ["a", "b"]}, {}, ["a", "b"]),
    ({"missing": ["a", "b"]}, None, ["a", "b"]),
    ({"missing": ["a.b"]}, None, ["a.b"]),
    ({"missing": ["a.b"]}, {"a": "apple"}, ["a.b"]),
    ({"missing": ["a.b"]}, {"a": {"c": "apple cake"}}, ["a.b"]),
    ({"missing": ["a.b"]}, {"a": {"b": "apple brownie"}}, []),
    ({"missing": ["a.b", "a.c"]}, {"a": {"b": "apple brownie"}}, ["a.c"]),
    # Missing some
    ({"missing_some": [1, ["a", "b"]]}, {"a": "apple"}, []),
    ({"missing_some": [1, ["a", "b"]]}, {"b": "banana"}, []),
    ({"missing_some": [1, ["a", "b"]]}, {"a": "apple", "b": "banana"}, []),
    ({"missing_some": [1, ["a", "b"]]}, {"c": "carrot"}, ["a", "b"]),
    ({"missing_some": [2, ["a", "b", "c"]]}, {"a": "apple", "b": "banana"}, []),
    ({"missing_some": [2, ["a", "b", "c"]]}, {"a": "apple", "c": "carrot"}, []),
    ({"missing_some": [2, ["a", "b", "c"]]}, {"a": "apple", "b": "banana", "c": "carrot"}, []),
    ({"missing_some": [2, ["a", "b", "c"]]}, {"a": "apple", "d": "durian"}, ["b", "c"]),
    ({"missing_some": [2, ["a", "b", "c"]]}, {"d": "durian", "e": "eggplant"}, ["a", "b", "c"]),
    # Missing and If are friends, because empty arrays are falsy in JsonLogic
    ({"if": [{"missing": "a"}, "missed it", "found it"]}, {"a": "apple"}, "found it"),
    ({"if": [{"missing": "a"}, "missed it", "found it"]}, {"b": "banana"}, "missed it"),
    # Missing, Merge, and If are friends. VIN is always required, APR is only required if financing is true.
    ({"missing": {"merge": ["vin", {"if": [{"var": "financing"}, ["apr"], []]}]}}, {"financing": True}, ["vin", "apr"]),
    ({"missing": {"merge": ["vin", {"if": [{"var": "financing"}, ["apr"], []]}]}}, {"financing": False}, ["vin"]),
    # Filter, map, all, none, and some
    ({"filter": [{"var": "integers"}, True]}, {"integers": [1, 2, 3]}, [1, 2, 3]),
    ({"filter": [{"var": "integers"}, False]}, {"integers": [1, 2, 3]}, []),
    ({"filter": [{"var": "integers"}, {">=": [{"var": ""}, 2]}]}, {"integers": [1, 2, 3]}, [2, 3]),
    ({"filter": [{"var": "integers"}, {"%": [{"var": ""}, 2]}]}, {"integers": [1, 2, 3]}, [1, 3]),
    ({"filter": [{"var": "integers"}, True]}, {"integers": 123}, []),
    ({"map": [{"var": "integers"}, {"*": [{"var": ""}, 2]}]}, {"integers": [1, 2, 3]}, [2, 4, 6]),
    ({"map": [{"var": "integers"}, {"*": [{"var": ""}, 2]}]}, None, []),
    (
        {"map": [{"var": "desserts"}, {"var": "qty"}]},
        {"desserts": [{"name": "apple", "qty": 1}, {"name": "brownie", "qty": 2}, {"name": "cupcake", "qty": 3}]},
        [1, 2, 3],
    ),
    (
        {"reduce": [{"var": "integers"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
        {"integers": [1, 2, 3, 4]},
        10,
    ),
    ({"reduce": [{"var": "integers"}, {"+": [{"var": "current"}, {"var": "accumulator"}]}, 0]}, None, 0),
    (
        {"reduce": [{"var": "integers"}, {"*": [{"var": "current"}, {"var": "accumulator"}]}, 1]},
        {"integers": [1, 2, 3, 4]},
        24,
    ),
    (
        {"reduce": [{"var": "integers"}, {"*": [{"var": "current"}, {"var": "accumulator"}]}, 0]},
        {"integers": [1, 2, 3, 4]},
        0,
    ),
    (
        {"reduce": [{"var": "desserts"}, {"+": [{"var": "accumulator"}, {"var": "current.qty"}]}, 0]},
        {"desserts": [{"name": "apple", "qty": 1}, {"name": "brownie", "qty": 2}, {"name": "cupcake", "qty": 3}]},
        6,
    ),
    ({"all": [{"var": "integers"}, {">=": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, True),
    ({"all": [{"var": "integers"}, {"==": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, False),
    ({"all": [{"var": "integers"}, {"<": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, False),
    ({"all": [{"var": "integers"}, {"<": [{"var": ""}, 1]}]}, {"integers": []}, False),
    ({"all": [{"var": "items"}, {">=": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, True),
    ({"all": [{"var": "items"}, {">": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, False),
    ({"all": [{"var": "items"}, {"<": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, False),
    ({"all": [{"var": "items"}, {">=": [{"var": "qty"}, 1]}]}, {"items": []}, False),
    ({"none": [{"var": "integers"}, {">=": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, False),
    ({"none": [{"var": "integers"}, {"==": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, False),
    ({"none": [{"var": "integers"}, {"<": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, True),
    ({"none": [{"var": "integers"}, {"<": [{"var": ""}, 1]}]}, {"integers": []}, True),
    ({"none": [{"var": "items"}, {">=": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, False),
    ({"none": [{"var": "items"}, {">": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, False),
    ({"none": [{"var": "items"}, {"<": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, True),
    ({"none": [{"var": "items"}, {">=": [{"var": "qty"}, 1]}]}, {"items": []}, True),
    ({"some": [{"var": "integers"}, {">=": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, True),
    ({"some": [{"var": "integers"}, {"==": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, True),
    ({"some": [{"var": "integers"}, {"<": [{"var": ""}, 1]}]}, {"integers": [1, 2, 3]}, False),
    ({"some": [{"var": "integers"}, {"<": [{"var": ""}, 1]}]}, {"integers": []}, False),
    ({"some": [{"var": "items"}, {">=": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, True),
    ({"some": [{"var": "items"}, {">": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, True),
    ({"some": [{"var": "items"}, {"<": [{"var": "qty"}, 1]}]}, {"items": [{"qty": 1}, {"qty": 2}]}, False),
    ({"some": [{"var": "items"}, {">=": [{"var": "qty"}, 1]}]}, {"items": []}, False),
]


def _same(actual: Any, expected: Any) -> bool:
    """Equal and of the same JSON type: True is not 1 and "1" is not 1, as the JavaScript suite's toBe checks."""
    if isinstance(expected, list):
        return isinstance(actual, list) and len(actual) == len(expected) and all(map(_same, actual, expected))
    if isinstance(expected, bool) or expected is None:
        return actual is expected
    if isinstance(expected, int | float):
        return isinstance(actual, int | float) and not isinstance(actual, bool) and actual == expected
    return type(actual) is type(expected) and bool(actual == expected)


@pytest.mark.parametrize(("rule", "data", "expected"), OFFICIAL, ids=[repr(row[0])[:60] for row in OFFICIAL])
def test_official_jsonlogic_table(rule: Any, data: Any, expected: Any) -> None:
    assert _same(evaluate(rule, data), expected), evaluate(rule, data)


def test_the_table_covers_every_operator_the_validator_accepts() -> None:
    used: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                collect(item)
        elif isinstance(node, dict):
            for operator, argument in node.items():
                used.add(operator)
                collect(argument)

    for rule, _data, _expected in OFFICIAL:
        collect(rule)
    assert used >= OPERATORS
    assert len(OFFICIAL) > 250


@pytest.mark.parametrize(
    ("value", "truthy"),
    [
        (0, False),
        (0.0, False),
        (-0.0, False),
        (float("nan"), False),
        (1, True),
        (-1, True),
        (0.001, True),
        ([], False),
        ((), False),
        ([0], True),
        ([[]], True),
        ("", False),
        ("0", True),
        ("false", True),
        (" ", True),
        (None, False),
        (False, False),
        (True, True),
        ({}, True),  # an object is true in JavaScript, even an empty one
        ({"a": 1}, True),
    ],
)
def test_truthiness(value: Any, truthy: bool) -> None:
    assert is_truthy(value) is truthy
    assert evaluate({"!!": [{"var": "v"}]}, {"v": value}) is truthy
    assert evaluate({"!": {"var": "v"}}, {"v": value}) is not truthy
    assert evaluate({"if": [{"var": "v"}, "yes", "no"]}, {"v": value}) == ("yes" if truthy else "no")


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        # Loose equality converts like JavaScript's ==.
        ({"==": [0, False]}, True),
        ({"==": [1, True]}, True),
        ({"==": ["1", True]}, True),
        ({"==": ["", 0]}, True),
        ({"==": [" 2 ", 2]}, True),
        ({"==": ["0x10", 16]}, True),
        ({"==": [None, None]}, True),
        ({"==": [None, 0]}, False),
        ({"==": [None, False]}, False),
        ({"==": [None, ""]}, False),
        ({"==": ["abc", "abc"]}, True),
        ({"==": ["a", "b"]}, False),
        ({"==": [1.0, 1]}, True),
        ({"==": [{"var": "list"}, "1,2"]}, True),  # [1, 2] == "1,2"
        ({"==": [{"var": "one"}, 1]}, True),  # [1] == 1
        ({"==": [{"var": "list"}, {"var": "list"}]}, True),  # the same array
        ({"==": [{"var": "list"}, [1, 2]]}, False),  # two arrays are never equal, as in JavaScript
        ({"===": [True, 1]}, False),
        ({"===": [1, 1.0]}, True),
        ({"===": [None, None]}, True),
        ({"!==": [None, False]}, True),
        ({"!=": ["1", 1]}, False),
        # Relational: two strings compare as text, anything else as numbers; NaN compares false.
        ({"<": ["10", "9"]}, True),
        ({"<": ["10", 9]}, False),
        ({">": ["b", "a"]}, True),
        ({"<": ["a", 1]}, False),
        ({">=": ["a", 1]}, False),
        ({"<": [None, 1]}, True),  # null is 0
        ({"<=": [False, 0]}, True),
        ({">": [{"var": "one"}, 0]}, True),  # [1] > 0
        ({"<": [1, "2", "3"]}, True),
        ({"<=": [1, 1, 1]}, True),
        ({"<": [1, 1, 1]}, False),
        # in: substring of a string (the needle becomes text), strict membership in an array.
        ({"in": [1, "a1b"]}, True),
        ({"in": ["1", [1, 2]]}, False),
        ({"in": [1, [1, 2]]}, True),
        ({"in": ["a", None]}, False),
        ({"in": ["a", 12]}, False),
        # cat: null is empty, numbers print as JavaScript prints them, arrays join with commas.
        ({"cat": ["a", None, "b"]}, "ab"),
        ({"cat": [1.5, "/", 2.0, "/", True]}, "1.5/2/true"),
        ({"cat": [0.0000001, " ", 1e21, " ", 123.456]}, "1e-7 1e+21 123.456"),
        ({"cat": [{"var": "list"}, "|", {"var": "nested"}]}, "1,2|1,,2,3"),
        # substr on non-strings works on their text; numeric strings are accepted as indexes.
        ({"substr": [12345, 1, 2]}, "23"),
        ({"substr": ["abc", "1"]}, "bc"),
        ({"substr": ["abc", 10]}, ""),
        ({"substr": ["abc", -10, 2]}, "ab"),
        ({"substr": ["abc", 1, -5]}, ""),
        ({"substr": ["héllo", 1, 3]}, "éll"),
        # Arithmetic: numeric strings are numbers, whole results are integers, remainders keep the dividend's sign.
        ({"+": []}, 0),
        ({"+": ["3.14"]}, 3.14),
        ({"+": [" 2 ", "1e2"]}, 102),
        ({"+": [0.1, 0.2]}, 0.30000000000000004),
        ({"*": ["1.5", 2]}, 3),
        ({"-": ["-2"]}, 2),
        ({"/": [1, 3]}, 1 / 3),
        ({"%": [-7, 2]}, -1),
        ({"%": [7.5, 2]}, 1.5),
        ({"min": []}, None),
        ({"max": ["3", 10, -1]}, 10),
        ({"min": [2.5, "1.5"]}, 1.5),
    ],
)
def test_coercions_follow_javascript(rule: dict[str, Any], expected: Any) -> None:
    data = {"list": [1, 2], "one": [1], "nested": [1, [None, 2, [3]]]}
    assert _same(evaluate(rule, data), expected)


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"/": [1, 0]}, "division by zero"),
        ({"/": [1, "0"]}, "division by zero"),
        ({"%": [1, 0]}, "modulo by zero"),
        ({"+": [1, "abc"]}, "+ needs numbers, got 'abc'"),
        ({"+": [1, None]}, "+ needs numbers, got None"),
        ({"+": [1, ""]}, "+ needs numbers"),
        ({"*": [2, True]}, "* needs numbers, got True"),
        ({"-": [{"var": "payload.items"}, 1]}, "- needs numbers, got [1, 2]"),
        ({"max": [1, {"var": "payload"}]}, "max needs numbers, got {'items': [1, 2]"),
        ({"*": []}, "* takes at least one argument"),
        ({"-": []}, "- takes one or two arguments"),
        ({"/": [1]}, "/ takes two arguments, got 1"),
        ({"==": [1]}, "== takes two arguments, got 1"),
        ({"substr": ["abc", "x"]}, "substr needs numbers, got 'x'"),
        ({"*": [1e300, 1e300]}, "* does not give a finite number"),
        ({"missing_some": [1, "payload.a"]}, "missing_some takes a minimum and an array of paths"),
        ({"regex": ["a", "b"]}, "unknown operator 'regex'"),
        ({"and": [True, {"nope": []}]}, "unknown operator 'nope'"),
        ({"+": ["1,5", 1]}, "+ needs numbers, got '1,5'"),
    ],
)
def test_errors_are_typed(rule: dict[str, Any], message: str) -> None:
    with pytest.raises(ConditionError) as error:
        evaluate(rule, {"payload": {"items": [1, 2]}})
    assert message in error.value.message
    assert str(error.value) == error.value.message


def test_short_circuit_skips_errors_in_branches_not_taken() -> None:
    boom = {"/": [1, 0]}
    assert evaluate({"and": [False, boom]}, {}) is False
    assert evaluate({"or": [True, boom]}, {}) is True
    assert evaluate({"if": [False, boom, "safe"]}, {}) == "safe"
    assert evaluate({"if": [True, "safe", boom]}, {}) == "safe"
    with pytest.raises(ConditionError):
        evaluate({"and": [True, boom]}, {})


DATA: dict[str, Any] = {
    "payload": {
        "plan": "pro",
        "amount": 150,
        "user": {"name": "Ada", "tags": ["beta", "vip"], "address": None},
        "orders": [{"id": "o1", "total": 30}, {"id": "o2", "total": 120}],
        "zero": 0,
        "empty": "",
    },
    "subscriber": {"subscriberId": "s-1", "email": "ada@example.com", "phone": None, "data": {"age": 36}},
    "steps": {"in-app": {"seen": False, "read": True}},
    "actor": None,
    "tenant": {"id": "acme"},
}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"var": "payload.user.name"}, "Ada"),
        ({"var": "payload.user.tags.1"}, "vip"),
        ({"var": "payload.orders.1.total"}, 120),
        ({"var": "payload.orders.2.total"}, None),
        ({"var": "payload.orders.01"}, None),  # not an index: JavaScript's arrays have no "01" either
        ({"var": "payload.orders.-1"}, None),
        ({"var": ["payload.orders.9", "none"]}, "none"),
        ({"var": "payload.user.name.first"}, None),  # past a string
        ({"var": ["payload.user.address", "x"]}, None),  # present null stays null
        ({"var": ["payload.user.address.city", "x"]}, "x"),  # absent below null takes the default
        ({"var": ["payload.zero", 5]}, 0),
        ({"var": ["payload.empty", 5]}, ""),
        ({"var": ["payload.nothing", {"cat": ["de", "fault"]}]}, "default"),  # the default is evaluated
        ({"var": "steps.in-app.read"}, True),
        ({"var": "actor"}, None),
        ({"var": "actor.id"}, None),
        ({"var": "subscriber.data.age"}, 36),
        ({"missing": ["payload.plan", "payload.coupon", "subscriber.phone", "payload.zero", "payload.empty"]}, None),
    ],
)
def test_var_paths_and_defaults(rule: dict[str, Any], expected: Any) -> None:
    if "missing" in rule:
        # missing counts null and "" as absent, but 0 is an answer.
        assert evaluate(rule, DATA) == ["payload.coupon", "subscriber.phone", "payload.empty"]
    else:
        assert _same(evaluate(rule, DATA), expected)


def test_var_without_a_path_is_the_whole_data() -> None:
    assert evaluate({"var": ""}, DATA) is DATA
    assert evaluate({"var": []}, DATA) is DATA
    assert evaluate({"map": [{"var": "payload.user.tags"}, {"cat": [{"var": ""}, "!"]}]}, DATA) == ["beta!", "vip!"]


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        ({"and": [{"==": [{"var": "payload.plan"}, "pro"]}, {">": [{"var": "payload.amount"}, 100]}]}, True),
        ({"and": [{"==": [{"var": "payload.plan"}, "free"]}, {">": [{"var": "payload.amount"}, 100]}]}, False),
        ({"!": {"var": "steps.in-app.seen"}}, True),
        ({"in": ["vip", {"var": "payload.user.tags"}]}, True),
        ({"in": ["admin", {"var": ["actor.roles", []]}]}, False),
        ({"some": [{"var": "payload.orders"}, {">": [{"var": "total"}, 100]}]}, True),
        ({"all": [{"var": "payload.orders"}, {">": [{"var": "total"}, 100]}]}, False),
        (
            {
                ">=": [
                    {
                        "reduce": [
                            {"var": "payload.orders"},
                            {"+": [{"var": "accumulator"}, {"var": "current.total"}]},
                            0,
                        ]
                    },
                    150,
                ]
            },
            True,
        ),
        ({"<=": [18, {"var": "subscriber.data.age"}, 65]}, True),
        ({"<": [18, {"var": "subscriber.data.age"}, 30]}, False),
        ({"if": [{"var": "tenant.id"}, {"==": [{"var": "tenant.id"}, "acme"]}, False]}, True),
        ({"missing_some": [1, ["subscriber.email", "subscriber.phone"]]}, []),
        ({"==": [{"substr": [{"var": "subscriber.email"}, -12]}, "@example.com"]}, True),
        ({"==": [{"var": "payload.missing"}, None]}, True),
        ({">": [{"var": "payload.missing"}, 100]}, False),  # null is 0: a missing amount is not above 100
    ],
)
def test_realistic_workflow_conditions(rule: dict[str, Any], expected: Any) -> None:
    check_conditions(rule)  # each is a rule a workflow could save
    assert evaluate(rule, DATA) == expected
    assert is_truthy(evaluate(rule, DATA)) is is_truthy(expected)


@pytest.mark.parametrize("operator", ["map", "filter", "reduce", "all", "some", "none"])
def test_iterating_operators_walk_at_most_max_items(operator: str) -> None:
    body: Any = {"var": "current"} if operator == "reduce" else True
    at_cap = {"payload": {"items": list(range(MAX_ITEMS))}}
    evaluate({operator: [{"var": "payload.items"}, body]}, at_cap)
    over = {"payload": {"items": list(range(MAX_ITEMS + 1))}}
    with pytest.raises(ConditionError, match=f"{operator} can walk at most {MAX_ITEMS} elements, got {MAX_ITEMS + 1}"):
        evaluate({operator: [{"var": "payload.items"}, body]}, over)


def test_nested_iteration_is_stopped_by_the_step_budget_quickly() -> None:
    row = list(range(MAX_ITEMS))
    grid = {"payload": {"rows": [row] * MAX_ITEMS}}
    # 10,000 x 10,000 comparisons would take minutes; the budget stops it after MAX_STEPS.
    rule = {"some": [{"var": "payload.rows"}, {"some": [{"var": ""}, {"<": [{"var": ""}, -1]}]}]}
    started = time.perf_counter()
    with pytest.raises(ConditionError, match=f"more than {MAX_STEPS} steps"):
        evaluate(rule, grid)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize("builder", ["cat", "merge"])
def test_a_reduce_that_doubles_its_accumulator_stops_early(builder: str) -> None:
    doubled = {builder: [{"var": "accumulator"}, {"var": "accumulator"}]}
    rule = {"reduce": [{"var": "payload.items"}, doubled, "ab" if builder == "cat" else ["ab"]]}
    # 2**60 characters or elements if nothing stopped it.
    with pytest.raises(ConditionError, match="steps"):
        evaluate(rule, {"payload": {"items": list(range(60))}})


def test_depth_beyond_the_validated_cap_is_refused() -> None:
    rule: Any = True
    for _ in range(MAX_DEPTH):
        rule = {"!": [rule]}
    assert evaluate(rule, {}) is True
    with pytest.raises(ConditionError, match=f"deeper than {MAX_DEPTH}"):
        evaluate({"!": [rule]}, {})


def test_deeply_nested_data_is_refused_when_turned_into_text() -> None:
    deep: Any = 1
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ConditionError, match="arrays nest deeper"):
        evaluate({"cat": [{"var": "payload.deep"}]}, {"payload": {"deep": deep}})


def test_a_large_but_legitimate_rule_is_fast() -> None:
    orders = [{"id": f"o{i}", "total": i % 200, "tags": ["a", "b"]} for i in range(MAX_ITEMS)]
    rule = {
        ">": [
            {"reduce": [
                {"filter": [{"var": "payload.orders"}, {"and": [{">": [{"var": "total"}, 100]}, {"in": ["a", {"var": "tags"}]}]}]},  # noqa: E501
                {"+": [{"var": "accumulator"}, 1]},
                0,
            ]},
            1000,
        ]
    }  # fmt: skip
    check_conditions(rule)
    started = time.perf_counter()
    assert evaluate(rule, {"payload": {"orders": orders}}) is True
    assert time.perf_counter() - started < 1
