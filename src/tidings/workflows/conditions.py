"""Structural validation of step conditions written in JSON-logic (https://jsonlogic.com); the engine evaluates them.

Checked at save time: every object is one standard operator, nesting stays shallow, and `var` reads only what the
engine provides (`payload`, `subscriber`, `steps`, `actor`, `tenant`), so a typo fails now rather than silently
evaluating to null on every trigger.
"""

from __future__ import annotations

from typing import Any

OPERATORS = frozenset(
    {
        "==", "===", "!=", "!==", ">", ">=", "<", "<=", "!", "!!", "and", "or", "if", "?:", "in", "cat", "substr",
        "var", "missing", "missing_some", "+", "-", "*", "/", "%", "min", "max", "merge",
        "all", "none", "some", "map", "filter", "reduce",
    }
)  # fmt: skip
# The second argument of these runs once per element, with `var` reading that element (or reduce's accumulator).
ITERATING = frozenset({"all", "none", "some", "map", "filter", "reduce"})
ROOTS = frozenset({"payload", "subscriber", "steps", "actor", "tenant"})
MAX_DEPTH = 20
MAX_NODES = 1000


class ConditionError(ValueError):
    pass


def check_conditions(rule: Any) -> None:
    """Raise `ConditionError` unless `rule` is one JSON-logic operation whose structure the engine can evaluate."""
    if not isinstance(rule, dict):
        raise ConditionError('conditions must be a JSON-logic object such as {"==": [{"var": "payload.x"}, 1]}')
    _Checker().check(rule, depth=1, scoped=False, where="conditions")


class _Checker:
    def __init__(self) -> None:
        self.nodes = 0

    def check(self, rule: Any, *, depth: int, scoped: bool, where: str) -> None:
        """`depth` counts operations (and arrays nested in arrays); `scoped` is true inside an iterating operator's
        body, where `var` paths are relative to the element."""
        self.nodes += 1
        if self.nodes > MAX_NODES:
            raise ConditionError(f"conditions have more than {MAX_NODES} values")
        if isinstance(rule, list | dict) and depth > MAX_DEPTH:
            raise ConditionError(f"conditions nest deeper than {MAX_DEPTH} levels at {where}")
        if isinstance(rule, list):
            for index, item in enumerate(rule):
                self.check(item, depth=depth + 1, scoped=scoped, where=f"{where}[{index}]")
        elif isinstance(rule, dict):
            self.operation(rule, depth=depth, scoped=scoped, where=where)

    def operation(self, rule: dict[str, Any], *, depth: int, scoped: bool, where: str) -> None:
        if len(rule) != 1:
            raise ConditionError(f"an operation must have exactly one operator key, got {len(rule)} at {where}")
        ((operator, argument),) = rule.items()
        if operator not in OPERATORS:
            raise ConditionError(f"unknown JSON-logic operator {operator!r} at {where}")
        where = f"{where}.{operator}"
        if operator == "var":
            self.var(argument, scoped=scoped, where=where)
        elif operator in ("missing", "missing_some") and not scoped:
            self.paths(operator, argument, where=where)
        if not isinstance(argument, list):
            self.check(argument, depth=depth + 1, scoped=scoped, where=where)
            return
        for index, item in enumerate(argument):
            inner = scoped or (operator in ITERATING and index == 1)
            self.check(item, depth=depth + 1, scoped=inner, where=f"{where}[{index}]")

    def var(self, argument: Any, *, scoped: bool, where: str) -> None:
        path = argument[0] if isinstance(argument, list) and argument else argument
        if scoped and isinstance(path, str | int):
            return
        if not isinstance(path, str):
            raise ConditionError(f'var takes a literal path such as "payload.name" at {where}')
        _check_root(path, where)

    def paths(self, operator: str, argument: Any, *, where: str) -> None:
        # missing_some is [minimum, [paths]]; missing is [paths] or one path.
        names = (
            argument[1] if operator == "missing_some" and isinstance(argument, list) and len(argument) > 1 else argument
        )
        for name in names if isinstance(names, list) else [names]:
            if isinstance(name, str):
                _check_root(name, where)


def _check_root(path: str, where: str) -> None:
    if path.split(".", 1)[0] not in ROOTS:
        roots = ", ".join(sorted(ROOTS))
        raise ConditionError(f"path {path!r} at {where} must start with one of {roots}")
