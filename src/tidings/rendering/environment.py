"""The one Jinja2 environment templates are compiled and rendered in: sandboxed, missing variables render empty.

Workflows compile every template at save time with `compile_template`, so a broken template is refused with its
line number before anything is triggered; the engine renders with the same environments later.
"""

from __future__ import annotations

from functools import cache

import jinja2
from jinja2.sandbox import SandboxedEnvironment


class TemplateError(Exception):
    """A template that cannot be compiled (or is too large); `line` is 1-based when the parser knows it."""

    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(f"line {line}: {message}" if line is not None else message)
        self.message = message
        self.line = line


@cache
def template_environment(*, autoescape: bool) -> SandboxedEnvironment:
    """One shared environment per escaping mode: HTML email bodies escape, plain text (SMS, subjects) must not.

    `ChainableUndefined` lets `{{ payload.order.id }}` render empty when `order` is absent instead of failing the
    whole message for one optional value.
    """
    return SandboxedEnvironment(autoescape=autoescape, undefined=jinja2.ChainableUndefined)


def compile_template(source: str, *, max_bytes: int, autoescape: bool = False) -> jinja2.Template:
    size = len(source.encode())
    if size > max_bytes:
        raise TemplateError(f"template is {size} bytes, more than the limit of {max_bytes}")
    try:
        return template_environment(autoescape=autoescape).from_string(source)
    except jinja2.TemplateSyntaxError as exc:
        # TemplateAssertionError (an unknown filter or test) is a subclass: refused at save time as well.
        raise TemplateError(exc.message or "invalid template", line=exc.lineno) from None
