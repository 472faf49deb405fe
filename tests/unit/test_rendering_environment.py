"""The sandboxed template environment: compile errors carry their line, size cap, sandbox, escaping, undefined."""

from __future__ import annotations

import pytest
from jinja2.exceptions import SecurityError

from tidings.rendering.environment import TemplateError, compile_template, template_environment


def test_syntax_error_names_its_line() -> None:
    with pytest.raises(TemplateError) as error:
        compile_template("Hello\n\n{{ name }}}\n{% if %}", max_bytes=1000)
    assert error.value.line == 4
    assert str(error.value).startswith("line 4: ")


def test_unclosed_expression_is_refused_with_line() -> None:
    with pytest.raises(TemplateError) as error:
        compile_template("one\ntwo {{ 1 + }}", max_bytes=1000)
    assert error.value.line == 2
    assert "unexpected" in str(error.value)


def test_unknown_filter_is_refused_at_compile_time() -> None:
    with pytest.raises(TemplateError) as error:
        compile_template("a\n{{ name | no_such_filter }}", max_bytes=1000)
    assert error.value.line == 2
    assert "no_such_filter" in error.value.message


def test_size_is_counted_in_utf8_bytes() -> None:
    compile_template("é" * 50, max_bytes=100)
    with pytest.raises(TemplateError) as error:
        compile_template("é" * 51, max_bytes=100)
    assert error.value.line is None
    assert "102 bytes" in str(error.value)


def test_missing_variables_render_empty_even_when_chained() -> None:
    template = compile_template("[{{ payload.order.id }}][{{ subscriber.firstName }}]", max_bytes=1000)
    assert template.render(payload={}) == "[][]"
    assert template.render(payload={"order": {"id": 7}}, subscriber={"firstName": "Ada"}) == "[7][Ada]"


def test_sandbox_blocks_reaching_python_internals() -> None:
    template = compile_template("{{ ''.__class__.__mro__[1].__subclasses__() }}", max_bytes=1000)
    with pytest.raises(SecurityError):
        template.render()


def test_escaping_is_a_parameter() -> None:
    assert compile_template("<p>{{ v }}</p>", max_bytes=100, autoescape=True).render(v="<script>") == (
        "<p>&lt;script&gt;</p>"
    )
    assert compile_template("{{ v }}", max_bytes=100).render(v="<b>&") == "<b>&"


def test_one_environment_per_escaping_mode() -> None:
    assert template_environment(autoescape=True) is template_environment(autoescape=True)
    assert template_environment(autoescape=True) is not template_environment(autoescape=False)
    assert template_environment(autoescape=True).is_safe_attribute("", "__class__", None) is False
