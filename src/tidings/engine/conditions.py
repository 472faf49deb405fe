"""Evaluation of JSON-logic step conditions (https://jsonlogic.com) against one notification's data.

`tidings.workflows.conditions` checked the rule's structure at save time; this runs it over `payload`, `subscriber`,
`steps`, `actor` and `tenant`. JsonLogic is defined by its JavaScript reference implementation, so truthiness,
`==`, the comparisons, `in`, `cat` and `var` follow JavaScript: `[]` is false and `"0"` true, `"1" == 1`, `"10" < "9"`
between two strings but `"10" > 9`. Arithmetic is stricter where JavaScript would quietly produce NaN or Infinity
(a missing value, a non-numeric string, a division by zero): evaluation stops with `ConditionError`, which the
engine records before skipping the step.

The work is bounded whatever the rule and the data: recursion follows the rule (no deeper than the validator's
`MAX_DEPTH`), an iterating operator walks at most `MAX_ITEMS` elements, and one evaluation may spend at most
`MAX_STEPS` units, one per operation and per element or character it builds, so a `reduce` that doubles its
accumulator stops early instead of exhausting memory.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from tidings.workflows.conditions import MAX_DEPTH

MAX_ITEMS = 10_000
MAX_STEPS = 100_000
_MAX_NESTING = 32  # of arrays turned into strings, as JavaScript does for "1,2" == [1, 2]
_SAFE_INTEGER = 2**53  # beyond it JavaScript numbers are not exact integers any more

_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_RADIX = re.compile(r"0(?:[xX][0-9a-fA-F]+|[oO][0-7]+|[bB][01]+)")
_JS_SPACE = " \t\n\v\f\r\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"  # noqa: E501


class ConditionError(Exception):
    """A rule that cannot be evaluated on this data: wrong types, division by zero, too much work."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def evaluate(rule: Mapping[str, Any], data: Mapping[str, Any]) -> Any:
    """The value of `rule` over `data`, as JsonLogic computes it; test it with `is_truthy`."""
    return _Evaluation().apply(rule, data, 1)


def is_truthy(value: Any) -> bool:
    """JsonLogic's truth: JavaScript's, except that an empty array is false too. `{}` and `"0"` are true."""
    if value is None or isinstance(value, bool):
        return bool(value)
    if isinstance(value, int | float):
        return value != 0 and not math.isnan(value)
    if isinstance(value, str | list | tuple):
        return len(value) > 0
    return True


class _Evaluation:
    def __init__(self) -> None:
        self.steps = 0

    def charge(self, units: int) -> None:
        self.steps += units
        if self.steps > MAX_STEPS:
            raise ConditionError(f"conditions take more than {MAX_STEPS} steps to evaluate")

    def apply(self, rule: Any, data: Any, depth: int) -> Any:
        if isinstance(rule, list):
            self.enter(depth)
            return [self.apply(item, data, depth + 1) for item in rule]
        # Like the reference implementation, an object that is not exactly one operator is a literal value.
        if not isinstance(rule, Mapping) or len(rule) != 1:
            return rule
        self.enter(depth)
        ((operator, argument),) = rule.items()
        arguments = argument if isinstance(argument, list) else [argument]
        control = _CONTROL.get(operator)
        if control is not None:
            return control(self, arguments, data, depth + 1)
        operation = _OPERATIONS.get(operator)
        if operation is None:
            raise ConditionError(f"unknown operator {operator!r}")
        values = [self.apply(item, data, depth + 1) for item in arguments]
        return operation(self, values, data)

    def enter(self, depth: int) -> None:
        if depth > MAX_DEPTH:
            raise ConditionError(f"conditions nest deeper than {MAX_DEPTH} levels")
        self.charge(1)

    # Operators that decide which of their arguments to evaluate.

    def if_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        index = 0
        while index + 1 < len(arguments):
            if is_truthy(self.apply(arguments[index], data, depth)):
                return self.apply(arguments[index + 1], data, depth)
            index += 2
        return self.apply(arguments[index], data, depth) if index < len(arguments) else None

    def and_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        value = None
        for argument in arguments:
            value = self.apply(argument, data, depth)
            if not is_truthy(value):
                return value
        return value

    def or_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        value = None
        for argument in arguments:
            value = self.apply(argument, data, depth)
            if is_truthy(value):
                return value
        return value

    def elements(self, operator: str, arguments: list[Any], data: Any, depth: int) -> list[Any] | None:
        """The array an iterating operator walks, or None when its first argument is not one."""
        items = self.apply(arguments[0], data, depth) if arguments else None
        if not isinstance(items, list | tuple):
            return None
        if len(items) > MAX_ITEMS:
            raise ConditionError(f"{operator} can walk at most {MAX_ITEMS} elements, got {len(items)}")
        self.charge(len(items))
        return list(items)

    def map_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        body = arguments[1] if len(arguments) > 1 else None
        return [self.apply(body, item, depth) for item in self.elements("map", arguments, data, depth) or []]

    def filter_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        body = arguments[1] if len(arguments) > 1 else None
        items = self.elements("filter", arguments, data, depth) or []
        return [item for item in items if is_truthy(self.apply(body, item, depth))]

    def all_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        body = arguments[1] if len(arguments) > 1 else None
        items = self.elements("all", arguments, data, depth)
        # JsonLogic's `all` of nothing is false, unlike mathematics' (and Python's).
        return bool(items) and all(is_truthy(self.apply(body, item, depth)) for item in items or [])

    def some_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        return self.any_match("some", arguments, data, depth)

    def none_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        return not self.any_match("none", arguments, data, depth)

    def any_match(self, operator: str, arguments: list[Any], data: Any, depth: int) -> bool:
        body = arguments[1] if len(arguments) > 1 else None
        items = self.elements(operator, arguments, data, depth) or []
        return any(is_truthy(self.apply(body, item, depth)) for item in items)

    def reduce_(self, arguments: list[Any], data: Any, depth: int) -> Any:
        body = arguments[1] if len(arguments) > 1 else None
        accumulator = self.apply(arguments[2], data, depth) if len(arguments) > 2 else None
        for item in self.elements("reduce", arguments, data, depth) or []:
            accumulator = self.apply(body, {"current": item, "accumulator": accumulator}, depth)
        return accumulator

    # Operators that need the data or the step budget, after their arguments were evaluated.

    def var(self, values: list[Any], data: Any) -> Any:
        path = values[0] if values else None
        default = values[1] if len(values) > 1 else None
        if path is None or path == "":
            return data
        value = data
        for part in _js_string(path).split("."):
            if isinstance(value, Mapping) and part in value:
                value = value[part]
            elif isinstance(value, list | tuple) and _is_index(part) and int(part) < len(value):
                value = value[int(part)]
            else:
                return default
        # A value that is present but null stays null: the default is only for what is absent (as in JsonLogic).
        return value

    def missing(self, values: list[Any], data: Any) -> list[Any]:
        paths = values[0] if values and isinstance(values[0], list | tuple) else values
        self.charge(len(paths))
        # Only null and "" count as missing (0 and false are answers), as in JsonLogic.
        return [path for path in paths if (value := self.var([path], data)) is None or value == ""]

    def missing_some(self, values: list[Any], data: Any) -> list[Any]:
        if len(values) < 2 or not isinstance(values[1], list | tuple):
            raise ConditionError("missing_some takes a minimum and an array of paths")
        needed = _number(values[0], "missing_some")
        absent = self.missing([values[1]], data)
        return [] if len(values[1]) - len(absent) >= needed else absent

    def in_(self, values: list[Any], data: Any) -> bool:
        needle, haystack = _pair(values, "in")
        if isinstance(haystack, str):
            self.charge(len(haystack) // 64)
            return _js_string(needle) in haystack
        if isinstance(haystack, list | tuple):
            self.charge(len(haystack))
            return any(_strict_equal(needle, item) for item in haystack)
        return False

    def cat(self, values: list[Any], data: Any) -> str:
        text = "".join("" if value is None else _js_string(value) for value in values)
        self.charge(len(text))
        return text

    def merge(self, values: list[Any], data: Any) -> list[Any]:
        merged: list[Any] = []
        for value in values:
            if isinstance(value, list | tuple):
                merged.extend(value)
            else:
                merged.append(value)
        self.charge(len(merged))
        return merged


def _is_index(part: str) -> bool:
    return part.isascii() and part.isdigit() and (part == "0" or not part.startswith("0"))


def _pair(values: list[Any], operator: str) -> tuple[Any, Any]:
    if len(values) < 2:
        raise ConditionError(f"{operator} takes two arguments, got {len(values)}")
    return values[0], values[1]


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else f"{text[:37]}..."


# JavaScript's conversions, for the JSON values a rule can meet.


def _js_string(value: Any, nesting: int = 0) -> str:
    """JavaScript's `String(value)`; arrays join their elements with "," and show null as nothing."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    if isinstance(value, float):
        return _js_number_string(value)
    if isinstance(value, list | tuple):
        if nesting >= _MAX_NESTING:
            raise ConditionError(f"arrays nest deeper than {_MAX_NESTING} levels")
        return ",".join("" if item is None else _js_string(item, nesting + 1) for item in value)
    if isinstance(value, Mapping):
        return "[object Object]"
    return value if isinstance(value, str) else str(value)


def _js_number_string(number: float) -> str:
    """JavaScript's shortest round-trip form: 0.5, 1e-7, 1e+21, 123456789012345680000."""
    if not math.isfinite(number):
        return "NaN" if math.isnan(number) else "Infinity" if number > 0 else "-Infinity"
    sign, digit_tuple, exponent = Decimal(repr(number + 0.0)).normalize().as_tuple()  # + 0.0: -0 prints as 0
    digits = "".join(map(str, digit_tuple))
    assert isinstance(exponent, int)
    k, n = len(digits), len(digits) + exponent  # k digits, the decimal point after n of them
    prefix = "-" if sign else ""
    if k <= n <= 21:
        return prefix + digits + "0" * (n - k)
    if 0 < n <= 21:
        return f"{prefix}{digits[:n]}.{digits[n:]}"
    if -6 < n <= 0:
        return f"{prefix}0.{'0' * -n}{digits}"
    mantissa = digits if k == 1 else f"{digits[0]}.{digits[1:]}"
    return f"{prefix}{mantissa}e{'+' if n - 1 >= 0 else '-'}{abs(n - 1)}"


def _js_number(value: Any) -> float:
    """JavaScript's `Number(value)`: NaN for what is not a number, which then compares false to everything."""
    if value is None:
        return 0.0
    if isinstance(value, bool | int | float):
        return _float(value)
    if isinstance(value, list | tuple | Mapping):
        value = _js_string(value)
    return _parse_js_number(value) if isinstance(value, str) else math.nan


def _parse_js_number(text: str) -> float:
    text = text.strip(_JS_SPACE)
    if not text:
        return 0.0
    if _DECIMAL.fullmatch(text):
        return float(text)
    if _RADIX.fullmatch(text):
        return _float(int(text, 0))
    return {"Infinity": math.inf, "+Infinity": math.inf, "-Infinity": -math.inf}.get(text, math.nan)


def _float(value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "object"  # arrays and objects alike: compared by identity


def _strict_equal(a: Any, b: Any) -> bool:
    kind = _kind(a)
    if kind != _kind(b):
        return False
    if kind == "object":
        return a is b
    return bool(a == b)


def _loose_equal(a: Any, b: Any) -> bool:
    """JavaScript's `==` (the abstract equality algorithm) for JSON values."""
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a == kind_b:
        return _strict_equal(a, b)
    if "null" in (kind_a, kind_b):
        return False
    # Booleans become numbers, then arrays and objects strings, until both sides are of one kind.
    if kind_a == "boolean":
        a = _js_number(a)
    elif kind_b == "boolean":
        b = _js_number(b)
    elif kind_a == "object":
        a = _js_string(a)
    elif kind_b == "object":
        b = _js_string(b)
    else:  # a number and a string
        return _js_number(a) == _js_number(b)
    return _loose_equal(a, b)


def _less(a: Any, b: Any, *, or_equal: bool) -> bool:
    """JavaScript's `<` / `<=`: two strings compare by UTF-16 code units, anything else as numbers."""
    a = _js_string(a) if isinstance(a, list | tuple | Mapping) else a
    b = _js_string(b) if isinstance(b, list | tuple | Mapping) else b
    if isinstance(a, str) and isinstance(b, str):
        left, right = a.encode("utf-16-be", "surrogatepass"), b.encode("utf-16-be", "surrogatepass")
        return left <= right if or_equal else left < right
    x, y = _js_number(a), _js_number(b)
    return x <= y if or_equal else x < y


# Arithmetic: numbers and numeric strings only.


def _number(value: Any, operator: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _float(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value.strip(_JS_SPACE)):
        return float(value.strip(_JS_SPACE))
    raise ConditionError(f"{operator} needs numbers, got {_describe(value)}")


def _result(value: float, operator: str) -> int | float:
    if not math.isfinite(value):
        raise ConditionError(f"{operator} does not give a finite number")
    # Whole results read as integers, as they would print in JavaScript: {"+": [1, 2]} is 3, not 3.0.
    return int(value) if value.is_integer() and abs(value) <= _SAFE_INTEGER else value


def _add(values: list[Any]) -> int | float:
    return _result(math.fsum(_number(value, "+") for value in values) if values else 0.0, "+")


def _multiply(values: list[Any]) -> int | float:
    if not values:
        raise ConditionError("* takes at least one argument")
    return _result(math.prod(_number(value, "*") for value in values), "*")


def _subtract(values: list[Any]) -> int | float:
    if not values:
        raise ConditionError("- takes one or two arguments")
    if len(values) == 1:
        return _result(-_number(values[0], "-"), "-")
    return _result(_number(values[0], "-") - _number(values[1], "-"), "-")


def _divide(values: list[Any]) -> int | float:
    a, b = (_number(value, "/") for value in _pair(values, "/"))
    if b == 0:
        raise ConditionError("division by zero")
    return _result(a / b, "/")


def _modulo(values: list[Any]) -> int | float:
    a, b = (_number(value, "%") for value in _pair(values, "%"))
    if b == 0:
        raise ConditionError("modulo by zero")
    return _result(math.fmod(a, b), "%")  # JavaScript's remainder takes the dividend's sign: -7 % 2 is -1


def _extreme(pick: Callable[[list[float]], float], operator: str) -> Callable[[list[Any]], int | float | None]:
    def operation(values: list[Any]) -> int | float | None:
        # JavaScript's Math.min() is Infinity, which JSON cannot hold: null says "no values".
        return _result(pick([_number(value, operator) for value in values]), operator) if values else None

    return operation


def _substr(values: list[Any]) -> str:
    text = _js_string(values[0]) if values else ""
    start = int(_number(values[1], "substr")) if len(values) > 1 else 0
    length = int(_number(values[2], "substr")) if len(values) > 2 and values[2] is not None else None
    if length is not None and length < 0:
        rest = _js_substr(text, start, None)
        return _js_substr(rest, 0, len(rest) + length)
    return _js_substr(text, start, length)


def _js_substr(text: str, start: int, length: int | None) -> str:
    """String.prototype.substr, counting code points rather than UTF-16 units."""
    start = max(len(text) + start, 0) if start < 0 else min(start, len(text))
    end = len(text) if length is None else min(start + max(length, 0), len(text))
    return text[start:end]


def _compare(test: Callable[[Any, Any], bool], operator: str) -> Callable[[list[Any]], bool]:
    def operation(values: list[Any]) -> bool:
        return test(*_pair(values, operator))

    return operation


def _less_than(or_equal: bool, operator: str) -> Callable[[list[Any]], bool]:
    def operation(values: list[Any]) -> bool:
        a, b = _pair(values, operator)
        if len(values) > 2:  # {"<": [1, x, 10]}: x strictly between; "<=" includes the ends
            return _less(a, b, or_equal=or_equal) and _less(b, values[2], or_equal=or_equal)
        return _less(a, b, or_equal=or_equal)

    return operation


_PURE: dict[str, Callable[[list[Any]], Any]] = {
    "==": _compare(_loose_equal, "=="),
    "===": _compare(_strict_equal, "==="),
    "!=": _compare(lambda a, b: not _loose_equal(a, b), "!="),
    "!==": _compare(lambda a, b: not _strict_equal(a, b), "!=="),
    ">": _compare(lambda a, b: _less(b, a, or_equal=False), ">"),
    ">=": _compare(lambda a, b: _less(b, a, or_equal=True), ">="),
    "<": _less_than(False, "<"),
    "<=": _less_than(True, "<="),
    "!": lambda values: not is_truthy(values[0] if values else None),
    "!!": lambda values: is_truthy(values[0] if values else None),
    "substr": _substr,
    "+": _add,
    "-": _subtract,
    "*": _multiply,
    "/": _divide,
    "%": _modulo,
    "min": _extreme(min, "min"),
    "max": _extreme(max, "max"),
}


def _pure(operation: Callable[[list[Any]], Any]) -> Callable[[_Evaluation, list[Any], Any], Any]:
    return lambda _evaluation, values, _data: operation(values)


_OPERATIONS: dict[str, Callable[[_Evaluation, list[Any], Any], Any]] = {
    **{operator: _pure(operation) for operator, operation in _PURE.items()},
    "var": _Evaluation.var,
    "missing": _Evaluation.missing,
    "missing_some": _Evaluation.missing_some,
    "in": _Evaluation.in_,
    "cat": _Evaluation.cat,
    "merge": _Evaluation.merge,
}
_CONTROL: dict[str, Callable[[_Evaluation, list[Any], Any, int], Any]] = {
    "if": _Evaluation.if_,
    "?:": _Evaluation.if_,
    "and": _Evaluation.and_,
    "or": _Evaluation.or_,
    "map": _Evaluation.map_,
    "filter": _Evaluation.filter_,
    "all": _Evaluation.all_,
    "some": _Evaluation.some_,
    "none": _Evaluation.none_,
    "reduce": _Evaluation.reduce_,
}
