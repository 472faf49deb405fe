"""The one Jinja2 environment templates are compiled and rendered in: sandboxed, missing variables render empty.

Workflows compile every template at save time with `compile_template`, so a broken template is refused with its
line number before anything is triggered; the engine renders with the same environments later (`tidings.rendering.
render`), which is where `MissingVariable` tells it which variables a template printed without having them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context
from jinja2.sandbox import SandboxedEnvironment
from jinja2.utils import missing

# One expression may not build a number or a sequence larger than this (`{{ "x" * 10**9 }}`, `{{ 9**9**9 }}`).
MAX_NUMBER_BITS = 16_384
MAX_SEQUENCE_LENGTH = 1_000_000
MAX_MISSING = 100  # distinct missing variables remembered per render


class TemplateError(Exception):
    """A template that cannot be compiled (or is too large); `line` is 1-based when the parser knows it."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


class MissingLog:
    """The missing variables one render printed or iterated over, each as the value its path starts from (None for
    the template's own variables) and the names read from there; `tidings.rendering.render` turns them into paths.
    """

    def __init__(self) -> None:
        self.entries: dict[tuple[int, tuple[str, ...]], tuple[object | None, tuple[str, ...]]] = {}

    def add(self, origin: object | None, names: tuple[str, ...]) -> None:
        if len(self.entries) < MAX_MISSING:
            # The origin is kept alive here, so its id stays unique for the render.
            self.entries.setdefault((id(origin), names), (origin, names))


_log: ContextVar[MissingLog | None] = ContextVar("tidings_missing_log", default=None)


@contextmanager
def recording_missing() -> Iterator[MissingLog]:
    """Collect the missing variables of the renders that run inside the block (in this thread or task)."""
    log = MissingLog()
    token = _log.set(log)
    try:
        yield log
    finally:
        _log.reset(token)


class MissingVariable(jinja2.ChainableUndefined):
    """Renders empty however deep the chain (`{{ payload.order.id }}` with no order), and remembers the path it
    stands for so a render can report it. Touching an attribute the sandbox forbids fails at once rather than
    rendering empty: `{{ ''.__class__ }}` is an attack, not a missing value."""

    __slots__ = ("_names", "_origin")
    _origin: object | None
    _names: tuple[str, ...]

    def __init__(
        self,
        hint: str | None = None,
        obj: Any = missing,
        name: Any = None,
        exc: type[jinja2.TemplateRuntimeError] = jinja2.UndefinedError,
    ) -> None:
        if exc is SecurityError:
            raise SecurityError(hint or f"access to {name!r} is unsafe")
        super().__init__(hint, obj, name, exc)
        label = () if name is None else (str(name),)
        if isinstance(obj, MissingVariable):
            self._origin, self._names = obj._origin, obj._names + label
        else:
            self._origin, self._names = (None if obj is missing else obj), label

    def __getattr__(self, name: str) -> MissingVariable:
        if name[:2] == "__" and name[-2:] == "__":
            raise AttributeError(name)
        return MissingVariable(obj=self, name=name)

    def __getitem__(self, key: Any) -> MissingVariable:  # type: ignore[override]
        return MissingVariable(obj=self, name=key)

    def __str__(self) -> str:
        self._record()
        return ""

    def __iter__(self) -> Iterator[Any]:
        self._record()
        return iter(())

    def _record(self) -> None:
        log = _log.get()
        if log is not None and self._names:
            log.add(self._origin, self._names)


class _Sandbox(SandboxedEnvironment):
    # Intercepting also stops the compiler from folding constants: `{{ 10**10**10**10**10**10**10**10 }}` used to be
    # computed at save time, for 24 seconds.
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**" and _is_int(left) and _is_int(right) and right > 0 and abs(left) > 1:
            _check_bits(abs(left).bit_length() * right)
        if operator == "*":
            if _is_int(left) and _is_int(right):
                _check_bits(abs(left).bit_length() + abs(right).bit_length())
            for sequence, count in ((left, right), (right, left)):
                if (
                    isinstance(sequence, str | list | tuple)
                    and _is_int(count)
                    and len(sequence) * count > (MAX_SEQUENCE_LENGTH)
                ):
                    raise SecurityError(f"the result would be longer than {MAX_SEQUENCE_LENGTH}")
        return super().call_binop(context, operator, left, right)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_bits(bits: int) -> None:
    if bits > MAX_NUMBER_BITS:
        raise SecurityError(f"the result would be a number of more than {MAX_NUMBER_BITS} bits")


@cache
def template_environment(*, autoescape: bool) -> SandboxedEnvironment:
    """One shared environment per escaping mode: HTML email bodies escape, plain text (SMS, subjects) must not.

    `MissingVariable` (a `ChainableUndefined`) lets `{{ payload.order.id }}` render empty when `order` is absent
    instead of failing the whole message for one optional value.
    """
    return _Sandbox(autoescape=autoescape, undefined=MissingVariable)


def compile_template(source: str, *, max_bytes: int, autoescape: bool = False) -> jinja2.Template:
    size = len(source.encode())
    if size > max_bytes:
        raise TemplateError(f"template is {size} bytes, more than the limit of {max_bytes}")
    try:
        return template_environment(autoescape=autoescape).from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        # TemplateAssertionError (an unknown filter or test) is a subclass: refused at save time as well.
        raise TemplateError(exc.message or "invalid template", line=exc.lineno) from None
