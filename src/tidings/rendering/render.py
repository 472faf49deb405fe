"""Rendering one compiled template for one notification, within a size and a time budget.

The output is built from `template.generate()` chunks and refused as soon as it passes `max_bytes`, so an endless
loop of text never holds more than the limit in memory. The render runs in a worker thread and the caller stops
waiting after `timeout_seconds`. Python cannot kill a thread; instead the timed-out thread is stopped at its next
loop iteration inside the template (see `_Canceller`), and what does not loop in template code is bounded by the
sandbox: `range()` yields at most 100,000 items and `*` / `**` refuse oversized results. A filter applied to a
huge value, or a C-level string operation already under way, still runs to its end in the background.

Variables the template printed or looped over without having them render empty and are reported in
`Rendered.missing` as dotted paths (`payload.user.name`, `payload.lines.0.sku`), for the execution detail.
"""

from __future__ import annotations

import asyncio
import re
import sys
import threading
from collections.abc import Generator, Mapping
from dataclasses import dataclass
from html.parser import HTMLParser
from types import CodeType, TracebackType
from typing import Any

import jinja2
from jinja2.exceptions import SecurityError

from tidings.rendering.environment import MissingLog, recording_missing


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    missing: tuple[str, ...]  # dotted paths of the undefined variables the template printed or iterated, sorted


class RenderError(Exception):
    """A template that could not be rendered for this context: too long, too slow, unsafe or failing."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def render(
    template: jinja2.Template, context: Mapping[str, Any], *, max_bytes: int, timeout_seconds: float
) -> Rendered:
    job = _Job(template, context, max_bytes)
    # A daemon thread: one stuck in a long C-level operation must not keep the process from exiting.
    threading.Thread(target=job.run, name="tidings-render", daemon=True).start()
    if not job.done.wait(timeout_seconds):
        _canceller.cancel(job)
        raise RenderError(f"rendering took longer than {timeout_seconds:g} seconds")
    return job.result()


async def render_async(
    template: jinja2.Template, context: Mapping[str, Any], *, max_bytes: int, timeout_seconds: float
) -> Rendered:
    job = _Job(template, context, max_bytes)
    try:
        await asyncio.wait_for(asyncio.to_thread(job.run), timeout_seconds)
    except TimeoutError:
        _canceller.cancel(job)
        raise RenderError(f"rendering took longer than {timeout_seconds:g} seconds") from None
    return job.result()


class _Cancelled(BaseException):
    """Raised inside a timed-out render's thread; a BaseException so no `except Exception` in Jinja stops it."""


class _Job:
    def __init__(self, template: jinja2.Template, context: Mapping[str, Any], max_bytes: int) -> None:
        self.template = template
        self.context = context
        self.max_bytes = max_bytes
        self.done = threading.Event()
        # Guarded by the canceller's lock:
        self.thread_id: int | None = None
        self.cancelled = False
        self.finished = False
        # Set by the worker before `done`:
        self.rendered: Rendered | None = None
        self.error: RenderError | None = None

    def run(self) -> None:
        if not _canceller.started(self):
            return
        try:
            with recording_missing() as log:
                text = self.generate()
            self.rendered = Rendered(text=text, missing=_missing_paths(log, self.context))
        except _Cancelled:
            pass
        except RenderError as exc:
            self.error = exc
        except SecurityError as exc:
            self.error = RenderError(f"unsafe template{_line(exc.__traceback__)}: {exc}")
        except Exception as exc:
            self.error = RenderError(f"template failed{_line(exc.__traceback__)}: {type(exc).__name__}: {exc}")
        finally:
            _canceller.finished(self)
            self.done.set()

    def generate(self) -> str:
        chunks: list[str] = []
        size = 0
        stream = self.template.generate(dict(self.context))
        assert isinstance(stream, Generator)  # typed as an Iterator, closed early below
        try:
            for chunk in stream:
                if self.cancelled:
                    raise _Cancelled
                # Characters never outnumber UTF-8 bytes: an oversized chunk is refused before it is encoded.
                size += len(chunk) if chunk.isascii() or size + len(chunk) > self.max_bytes else _utf8_size(chunk)
                if size > self.max_bytes:
                    raise RenderError(f"the rendered text is longer than {self.max_bytes} bytes")
                chunks.append(chunk)
        finally:
            stream.close()
        return "".join(chunks)

    def result(self) -> Rendered:
        if self.error is not None:
            raise self.error
        assert self.rendered is not None
        return self.rendered


def _utf8_size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _line(traceback: TracebackType | None) -> str:
    """` at line N` of the template, which Jinja puts in the traceback's template frames."""
    line = None
    while traceback is not None:
        if traceback.tb_frame.f_code.co_filename == "<template>":
            line = traceback.tb_lineno
        traceback = traceback.tb_next
    return f" at line {line}" if line is not None else ""


class _Canceller:
    """Stops the thread of a render that timed out, at its next loop iteration in template code.

    Nothing is instrumented while renders finish in time. When one times out, the code objects of its template get
    `sys.monitoring` JUMP events (each loop iteration jumps back) whose callback raises `_Cancelled` in the timed-out
    thread only; other threads rendering the same template meanwhile pay for a callback and carry on. The events
    are removed when the thread ends. If the tool id is taken by another tool, timed-out threads run to their end.
    """

    TOOL = 4  # sys.monitoring reserves 0 (debugger), 1 (coverage), 2 (profiler) and 5 (optimizer)

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.threads: dict[int, tuple[CodeType, ...]] = {}
        self.watchers: dict[CodeType, int] = {}
        self.available: bool | None = None

    def started(self, job: _Job) -> bool:
        """Whether the job should still run: it may have timed out while waiting for a thread."""
        with self.lock:
            job.thread_id = threading.get_ident()
            return not job.cancelled

    def cancel(self, job: _Job) -> None:
        with self.lock:
            job.cancelled = True
            if job.thread_id is None or job.finished or not self.claim():
                return
            codes = _template_code(job.template)
            self.threads[job.thread_id] = codes
            for code in codes:
                self.watchers[code] = self.watchers.get(code, 0) + 1
                sys.monitoring.set_local_events(self.TOOL, code, sys.monitoring.events.JUMP)

    def finished(self, job: _Job) -> None:
        with self.lock:
            job.finished = True
            for code in self.threads.pop(job.thread_id, ()) if job.thread_id is not None else ():
                self.watchers[code] -= 1
                if not self.watchers[code]:
                    del self.watchers[code]
                    sys.monitoring.set_local_events(self.TOOL, code, 0)

    def claim(self) -> bool:
        if self.available is None:
            try:
                sys.monitoring.use_tool_id(self.TOOL, "tidings-render-timeout")
            except ValueError:
                self.available = False
            else:
                sys.monitoring.register_callback(self.TOOL, sys.monitoring.events.JUMP, self.on_jump)
                self.available = True
        return self.available

    def on_jump(self, code: CodeType, offset: int, destination: int) -> None:
        if threading.get_ident() in self.threads:
            raise _Cancelled


_canceller = _Canceller()


def _template_code(template: jinja2.Template) -> tuple[CodeType, ...]:
    """The code of the template's root, its blocks and everything defined inside them (macros, loop bodies)."""
    pending = [template.root_render_func.__code__, *(block.__code__ for block in template.blocks.values())]
    found: dict[CodeType, None] = {}
    while pending:
        code = pending.pop()
        if code not in found:
            found[code] = None
            pending.extend(const for const in code.co_consts if isinstance(const, CodeType))
    return tuple(found)


def _missing_paths(log: MissingLog, context: Mapping[str, Any]) -> tuple[str, ...]:
    """Dotted paths of the logged missing variables; a path that starts at a defined value (`payload.user` of
    `payload.user.name`, or a loop variable) is found by looking that value up in the context."""
    origins = {id(origin) for origin, _names in log.entries.values() if origin is not None}
    places = _places(context, origins) if origins else {}
    paths = set()
    for origin, names in log.entries.values():
        place = places.get(id(origin)) if origin is not None else None
        paths.add(".".join((place, *names) if place else names))
    return tuple(sorted(paths))


def _places(context: Mapping[str, Any], wanted: set[int], limit: int = 10_000) -> dict[int, str]:
    """Breadth-first, so the shortest path to a value shared by two places wins; stops after `limit` values."""
    places: dict[int, str] = {}
    queue: list[tuple[str, Any]] = [(str(key), value) for key, value in context.items()]
    for path, value in queue:
        if len(places) == len(wanted) or len(queue) > limit:
            break
        if id(value) in wanted and id(value) not in places:
            places[id(value)] = path
        if isinstance(value, Mapping):
            queue.extend((f"{path}.{key}", item) for key, item in value.items())
        elif isinstance(value, list | tuple):
            queue.extend((f"{path}.{index}", item) for index, item in enumerate(value))
    return places


# Plain text from HTML


_BLOCKS = frozenset(
    {
        "address", "article", "aside", "blockquote", "center", "dd", "details", "dialog", "div", "dl", "dt",
        "fieldset", "figcaption", "figure", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
        "li", "main", "nav", "ol", "p", "pre", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
    }
)  # fmt: skip
_PARAGRAPHS = frozenset({"blockquote", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "ol", "p", "pre", "table", "ul"})
_HIDDEN = frozenset({"head", "script", "style", "template", "title"})
_SPACE = re.compile(r"\s+")
_BLANK_LINES = re.compile(r"\n{3,}")


def text_from_html(html: str) -> str:
    """A readable plain-text alternative of an HTML email: block elements and `<br>` break lines, paragraphs are
    separated by a blank line, list items start with "- ", links read "text (url)", entities are decoded."""
    parser = _TextParser()
    parser.feed(html)
    parser.close()
    lines = (line.rstrip() for line in "".join(parser.out).split("\n"))
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.hidden = 0
        self.pre = 0
        self.links: list[tuple[str, int]] = []  # href, and where its text starts in `out`
        self.newlines = 0  # at the end of `out`

    def emit(self, text: str) -> None:
        if text:
            self.out.append(text)
            stripped = text.rstrip("\n")
            self.newlines = self.newlines + len(text) if not stripped else len(text) - len(stripped)

    def break_lines(self, count: int) -> None:
        """End the current line (1) or paragraph (2); block edges that meet don't add up, unlike `<br>`s."""
        self.emit("\n" * max(count - self.newlines, 0))

    def at_line_start(self) -> bool:
        return not self.out or self.newlines > 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HIDDEN:
            self.hidden += 1
        if self.hidden:
            return
        if tag == "br":
            self.emit("\n")
        elif tag in _BLOCKS:
            self.break_lines(2 if tag in _PARAGRAPHS else 1)
        if tag == "li":
            self.emit("- ")
        elif tag == "pre":
            self.pre += 1
        elif tag in ("td", "th") and not self.at_line_start():
            self.emit(" ")
        elif tag == "a":
            self.links.append((dict(attrs).get("href") or "", len(self.out)))
        elif tag == "img":
            self.handle_data(dict(attrs).get("alt") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HIDDEN:
            self.hidden = max(self.hidden - 1, 0)
            return
        if self.hidden:
            return
        if tag == "a" and self.links:
            href, start = self.links.pop()
            label = "".join(self.out[start:]).strip()
            if _shows_target(href, label):
                self.emit(f" ({href})" if label else href)
        elif tag == "pre":
            self.pre = max(self.pre - 1, 0)
        if tag in _BLOCKS:
            self.break_lines(2 if tag in _PARAGRAPHS else 1)

    def handle_data(self, data: str) -> None:
        if self.hidden:
            return
        if not self.pre:
            data = _SPACE.sub(" ", data)
            if self.at_line_start():
                data = data.lstrip()
        self.emit(data)


def _shows_target(href: str, label: str) -> bool:
    """Worth printing after the link text: not an anchor or script, and not just the text again."""
    target = href.strip()
    if not target or target.startswith("#") or target.lower().startswith("javascript:"):
        return False
    return target not in (label, f"mailto:{label}", f"tel:{label}")
