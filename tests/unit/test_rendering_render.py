"""Rendering compiled templates for one notification: variables, missing-variable reporting, escaping, the size and
time caps, sandbox escapes, and the plain-text version of HTML emails."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from tidings.rendering.environment import MAX_MISSING, compile_template
from tidings.rendering.render import Rendered, RenderError, render, render_async, text_from_html

CONTEXT: dict[str, Any] = {
    "payload": {
        "order": {"id": "A-17", "total": 42.5, "lines": [{"sku": "tea", "qty": 2}, {"qty": 1}]},
        "user": {},
        "note": "<script>alert(1)</script>",
    },
    "subscriber": {"subscriberId": "s-1", "firstName": "Ada", "email": "ada@example.com", "data": {"tier": "gold"}},
    "steps": {"welcome": {"messageId": "m-1", "seen": False}},
    "actor": None,
    "tenant": {"id": "acme"},
    "digest": {"count": 2, "events": [{"payload": {"title": "first"}}, {"payload": {"title": "second"}}]},
}


def _render(source: str, context: dict[str, Any] | None = None, *, html: bool = False, **caps: Any) -> Rendered:
    template = compile_template(source, max_bytes=65_536, autoescape=html)
    return render(
        template,
        CONTEXT if context is None else context,
        max_bytes=caps.get("max_bytes", 65_536),
        timeout_seconds=caps.get("timeout_seconds", 5),
    )


def test_variables_of_every_root_render() -> None:
    source = (
        "{{ subscriber.firstName }} ({{ subscriber.data.tier }}): order {{ payload.order.id }} "
        "of {{ '%.2f' % payload.order.total }}; {{ payload.order.lines | length }} lines; "
        "welcome seen: {{ steps.welcome.seen }}; tenant {{ tenant.id }}; "
        "{{ digest.count }} events: {% for event in digest.events %}{{ event.payload.title }}"
        "{% if not loop.last %}, {% endif %}{% endfor %}"
    )
    assert _render(source) == Rendered(
        text="Ada (gold): order A-17 of 42.50; 2 lines; welcome seen: False; tenant acme; 2 events: first, second",
        missing=(),
    )


def test_missing_variables_render_empty_and_are_listed() -> None:
    source = (
        "[{{ payload.user.name }}]"  # attribute of a defined value
        "[{{ payload.coupon.code }}]"  # a chain below an absent value
        "[{{ payload['shipping']['city'] }}]"  # item access
        "[{{ payload.order.lines[5].sku }}]"  # an index past the end
        "[{% for line in payload.order.lines %}{{ line.sku }};{% endfor %}]"  # a loop variable: the second line
        "[{{ nickname }}]"  # a top-level name
        "[{% for event in payload.events %}x{% endfor %}]"  # iterating over nothing
        "[{{ subscriber.firstName }}]"
    )
    rendered = _render(source)
    assert rendered.text == "[][][][][tea;;][][][Ada]"
    assert rendered.missing == (
        "nickname",
        "payload.coupon.code",
        "payload.events",
        "payload.order.lines.1.sku",
        "payload.order.lines.5.sku",
        "payload.shipping.city",
        "payload.user.name",
    )


def test_variables_handled_by_the_template_are_not_missing() -> None:
    source = (
        "{{ payload.coupon | default('none') }}"
        "{% if payload.vip is defined %}vip{% endif %}"
        "{% if payload.discount %}discount{% endif %}"
        "{{ payload.order.id }}"
    )
    assert _render(source) == Rendered(text="noneA-17", missing=())


def test_a_repeated_missing_variable_is_listed_once_and_the_list_is_capped() -> None:
    assert _render("{{ a }}{{ a }}{% for _ in range(3) %}{{ a }}{% endfor %}").missing == ("a",)
    many = "".join(f"{{{{ payload.v{index} }}}}" for index in range(MAX_MISSING + 20))
    assert len(_render(many).missing) == MAX_MISSING


def test_html_escapes_payload_values_and_text_does_not() -> None:
    html = _render("<p>{{ payload.note }} {{ payload.missing }}</p>", html=True)
    assert html.text == "<p>&lt;script&gt;alert(1)&lt;/script&gt; </p>"
    assert html.missing == ("payload.missing",)
    assert _render("{{ payload.note }}").text == "<script>alert(1)</script>"


def test_output_is_capped_in_utf8_bytes() -> None:
    assert _render("{{ 'é' * 50 }}", max_bytes=100).text == "é" * 50
    with pytest.raises(RenderError, match="longer than 100 bytes"):
        _render("{{ 'é' * 50 }}!", max_bytes=100)
    with pytest.raises(RenderError, match="longer than 99 bytes"):
        _render("{{ 'é' * 50 }}", max_bytes=99)


def test_the_size_cap_stops_a_long_loop_early() -> None:
    source = "{% for i in range(100000) %}{% for j in range(100000) %}{{ i }}-{{ j }} {% endfor %}{% endfor %}"
    started = time.perf_counter()
    with pytest.raises(RenderError, match="longer than 10000 bytes"):
        _render(source, max_bytes=10_000, timeout_seconds=30)
    assert time.perf_counter() - started < 1  # stopped at the limit, not after 10**10 iterations


SLOW = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}done"


def _cpu_busy_after(seconds: float) -> float:
    """CPU this process spends during `seconds` of sleep: near zero once no render thread is still looping."""
    started = time.process_time()
    time.sleep(seconds)
    return time.process_time() - started


def test_a_slow_render_times_out_and_its_thread_stops() -> None:
    started = time.perf_counter()
    with pytest.raises(RenderError, match=r"took longer than 0\.2 seconds"):
        _render(SLOW, timeout_seconds=0.2)
    assert time.perf_counter() - started < 1
    assert _cpu_busy_after(0.3) < 0.1
    assert not [thread for thread in threading.enumerate() if thread.name == "tidings-render"]
    # The template is not spoiled by the cancellation: it renders again, and other templates render meanwhile.
    assert _render("{% for i in range(3) %}{{ i }}{% endfor %}").text == "012"
    quick = compile_template("{% for i in range(2) %}{{ i }}{% endfor %}{{ payload.x }}", max_bytes=1000)
    assert render(quick, {"payload": {"x": "!"}}, max_bytes=100, timeout_seconds=5).text == "01!"


async def test_render_async_times_out_and_its_thread_stops() -> None:
    template = compile_template(SLOW, max_bytes=1000)
    started = time.perf_counter()
    with pytest.raises(RenderError, match="took longer than"):
        await render_async(template, {}, max_bytes=100, timeout_seconds=0.2)
    assert time.perf_counter() - started < 1
    assert _cpu_busy_after(0.3) < 0.1


async def test_render_async_renders_and_reports_missing() -> None:
    template = compile_template("Hi {{ subscriber.firstName }}{{ payload.user.name }}", max_bytes=1000)
    rendered = await render_async(template, CONTEXT, max_bytes=100, timeout_seconds=5)
    assert rendered == Rendered(text="Hi Ada", missing=("payload.user.name",))
    with pytest.raises(RenderError, match="longer than 3 bytes"):
        await render_async(template, CONTEXT, max_bytes=3, timeout_seconds=5)


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ payload.__class__.__init__.__globals__ }}",
        "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
        "{{ payload.order.__len__() }}",
        "{{ ''.__class__ | default('x') }}",
        "{% for c in ().__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    ],
)
def test_sandbox_escapes_raise_render_error(source: str) -> None:
    with pytest.raises(RenderError, match="unsafe template at line 1"):
        _render(source)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("{{ 'x' * 10**7 }}", "longer than 1000000"),
        ("{{ [0] * 10**7 }}", "longer than 1000000"),
        ("{{ 10**7 * 'x' }}", "longer than 1000000"),
        ("{{ 2 ** 100000 }}", "more than 16384 bits"),
        ("{% set ns = namespace(n=2) %}{% for _ in range(40) %}{% set ns.n = ns.n * ns.n %}{% endfor %}", "bits"),
    ],
)
def test_oversized_values_are_refused_before_they_are_built(source: str, message: str) -> None:
    with pytest.raises(RenderError, match=message):
        _render(source)


def test_constant_expressions_are_not_computed_at_save_time() -> None:
    started = time.perf_counter()
    template = compile_template("{{ " + "**".join(["10"] * 9) + " }}", max_bytes=1000)
    assert time.perf_counter() - started < 1
    with pytest.raises(RenderError, match="bits"):
        render(template, {}, max_bytes=1000, timeout_seconds=5)
    assert _render("{{ 2 ** 10 }} {{ 3 * 'ab' }} {{ 1 ** 999999 }}").text == "1024 ababab 1"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("line one\n{{ 1 / 0 }}", "template failed at line 2: ZeroDivisionError: division by zero"),
        ("{{ nothing() }}", "UndefinedError: 'nothing' is undefined"),
        ("\n\n{{ payload.order.missing + 1 }}", "at line 3: UndefinedError"),
    ],
)
def test_failing_templates_raise_render_error_with_their_line(source: str, message: str) -> None:
    with pytest.raises(RenderError) as error:
        _render(source)
    assert message in error.value.message


@pytest.mark.parametrize(
    ("html", "text"),
    [
        ("<p>Hello</p><p>World</p>", "Hello\n\nWorld"),
        ("Line one<br>line two<br/>line three", "Line one\nline two\nline three"),
        ("a<br><br>b", "a\n\nb"),
        ("<div>one</div><div>two</div>", "one\ntwo"),
        ("<h1>Title</h1>Body", "Title\n\nBody"),
        ("<ul><li>tea</li><li>cake</li></ul><p>after</p>", "- tea\n- cake\n\nafter"),
        (
            '<a href="https://example.com/o/1?a=1&amp;b=2">your order</a>',
            "your order (https://example.com/o/1?a=1&b=2)",
        ),
        ('<a href="https://example.com">https://example.com</a>', "https://example.com"),
        ('<a href="mailto:help@example.com">help@example.com</a>', "help@example.com"),
        ('<a href="#top">top</a> <a href="javascript:x()">x</a>', "top x"),
        ('<a href="https://example.com/u"><img src="logo.png" alt=""></a>', "https://example.com/u"),
        ('<img src="logo.png" alt="Acme"> news', "Acme news"),
        ("Fish &amp; chips &lt;3 &copy; &#8364;5 &eacute;t&eacute;", "Fish & chips <3 © €5 été"),
        ("a&nbsp;&nbsp;b", "a b"),
        ("<p>\n   spaced    out\n   text\n</p>", "spaced out text"),
        ("<pre>  keep\n    indent</pre>", "keep\n    indent"),
        ("<head><title>Subject</title><style>p { color: red }</style></head><body>Hi</body>", "Hi"),
        ("<p>a</p><script>alert('x')</script><p>b</p>", "a\n\nb"),
        ("<table><tr><td>Item</td><td>Qty</td></tr><tr><td>Tea</td><td>2</td></tr></table>", "Item Qty\nTea 2"),
        ("<b>bold</b> and <i>italic</i>", "bold and italic"),
        ("<p>unclosed <b>tags", "unclosed tags"),
        ("", ""),
    ],
)
def test_text_from_html(html: str, text: str) -> None:
    assert text_from_html(html) == text


def test_text_from_html_of_a_rendered_email() -> None:
    template = compile_template(
        "<html><body><h2>Hi {{ subscriber.firstName }},</h2><p>Your order <b>{{ payload.order.id }}</b> shipped."
        '</p><p><a href="https://shop.example/orders/{{ payload.order.id }}">Track it</a></p>'
        "<p>{{ payload.note }}</p></body></html>",
        max_bytes=10_000,
        autoescape=True,
    )
    html = render(template, CONTEXT, max_bytes=10_000, timeout_seconds=5).text
    assert text_from_html(html) == (
        "Hi Ada,\n\nYour order A-17 shipped.\n\nTrack it (https://shop.example/orders/A-17)\n\n"
        "<script>alert(1)</script>"
    )
