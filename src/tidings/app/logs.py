"""Logging for every role: one JSON object per line (or readable lines for `tidings dev`), secrets kept out.

structlog formats the standard library's records too (its `ProcessorFormatter` sits on the root handler), so our
`logging.getLogger(__name__)` calls, uvicorn, taskiq and every other library come out the same way, with the context
bound by `structlog.contextvars` (a job's `jobId`, `transactionId`, …) on each line logged while it is bound.

Nothing here trusts the caller to have been careful: values under credential or content keys are replaced; URLs
lose their user info, query string and every path segment that is not a short plain word (a Slack webhook's path or
a Telegram bot URL is the credential, a MongoDB URL carries a password); API keys and bearer tokens are blanked inside
any text; and an exception is logged with its type, stack frames and message, except that a pydantic
`ValidationError` loses the rejected input its message would quote.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal, TextIO

import pydantic
import structlog
from structlog.typing import EventDict, Processor, WrappedLogger

LogFormat = Literal["json", "console"]

REDACTED = "[redacted]"
# Keys are compared lower-cased with `_`, `-` and spaces removed, so `api_key`, `apiKey` and `X-Api-Key` all match.
# A key containing one of these holds a credential (`signingSecret`, `authToken`, `vapidPrivateKey`, …).
SECRET_KEY_PARTS = (
    "password",
    "passwd",
    "secret",
    "token",
    "apikey",
    "accesskey",
    "privatekey",
    "signingkey",
    "authorization",
    "credential",
    "cookie",
    "signature",
    "subscriberhash",
    "serviceaccount",
    "webhookurl",
)
# A key equal to one of these holds what a message says, or what a trigger or provider was sent.
CONTENT_KEYS = frozenset({"html", "body", "content", "text", "subject", "title", "payload", "urls", "messagebody"})
# Third-party loggers whose DEBUG (or, for httpx, INFO) lines carry request URLs, frames or database commands:
# they stay at WARNING whatever TIDINGS_LOG_LEVEL says.
QUIET_LOGGERS = ("httpx", "httpcore", "hpack", "h2", "pymongo", "websockets", "apprise", "multipart")

_MAX_DEPTH = 6
_MAX_EXCEPTION_MESSAGE = 1000
# A path segment is kept if it is a short word (`/metrics`, `/v1/events`); anything longer or with digits may be a
# token (Slack's `/services/T…/B…/xyz`, Telegram's `/bot123:abc/`), so it is replaced, as is every query string.
_PLAIN_SEGMENT = re.compile(r"[A-Za-z][A-Za-z_.-]{0,19}|v[0-9]{1,2}")
_URL = re.compile(
    r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]{1,15})://(?P<authority>[^\s/?#'\"<>]*)"
    r"(?P<path>[^\s?#'\"<>]*)(?P<query>[?#][^\s'\"<>]*)?"
)
_TEXT_SECRETS = (
    # An HTTP credential: the word after the scheme (case-sensitive, so prose such as "bearer of" stays).
    (re.compile(r"\b(Bearer|ApiKey|Basic)(\s+)[A-Za-z0-9+/=._~-]{8,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"\b(tid_sk_|whsec_)[A-Za-z0-9_-]+"), rf"\1{REDACTED}"),
    # A JSON Web Token (push providers' OAuth and APNs tokens).
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
)


def _normalised(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "").replace(" ", "")


def is_sensitive_key(key: str) -> bool:
    name = _normalised(key)
    return name in CONTENT_KEYS or any(part in name for part in SECRET_KEY_PARTS)


def _safe_segment(segment: str) -> str:
    return segment if _PLAIN_SEGMENT.fullmatch(segment) else "..."


def _url_origin(match: re.Match[str]) -> str:
    host = match["authority"].rpartition("@")[2]  # drops `user:password@`
    path = "/".join(segment and _safe_segment(segment) for segment in match["path"].split("/"))
    return f"{match['scheme']}://{host}{path}{'?...' if match['query'] else ''}"


def scrub_text(text: str) -> str:
    """`text` without URL user info, query strings or path segments that may be tokens, API keys, webhook secrets
    or bearer tokens."""
    text = _URL.sub(_url_origin, text)
    for pattern, replacement in _TEXT_SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _scrubbed(value: Any, depth: int) -> Any:
    if isinstance(value, str):
        return scrub_text(value)
    if depth >= _MAX_DEPTH:
        return value if isinstance(value, int | float | bool | None) else REDACTED
    if isinstance(value, Mapping):
        return {
            key: REDACTED if isinstance(key, str) and is_sensitive_key(key) else _scrubbed(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [_scrubbed(item, depth + 1) for item in value]
    if isinstance(value, int | float | bool | None):
        return value
    return scrub_text(str(value))  # rendered here, so a secret in an object's repr is scrubbed too


def redact(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """Replace credential and content values, and scrub every string, including the event itself."""
    return {
        key: REDACTED if key != "event" and is_sensitive_key(key) else _scrubbed(value, 0)
        for key, value in event_dict.items()
    }


def safe_exception_message(error: BaseException) -> str:
    """The exception's message, minus what it quotes of its input when that input may be a secret."""
    if isinstance(error, pydantic.ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or '(root)'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False, include_context=False)
        )
        return f"{error.error_count()} validation error(s) for {error.title}: {problems}"
    return str(error)[:_MAX_EXCEPTION_MESSAGE]


def describe_exception(error: BaseException) -> str:
    """A traceback like Python's (causes first), each exception's message made safe by `safe_exception_message`."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    blocks = [
        "Traceback (most recent call last):\n"
        + "".join(traceback.format_tb(one.__traceback__))
        + f"{type(one).__module__}.{type(one).__qualname__}: {safe_exception_message(one)}"
        for one in reversed(chain)
    ]
    return "\n\nwhich led to:\n\n".join(blocks)


def _exception_of(exc_info: Any) -> BaseException | None:
    if isinstance(exc_info, BaseException):
        return exc_info
    if isinstance(exc_info, tuple):
        return exc_info[1] if len(exc_info) > 1 and isinstance(exc_info[1], BaseException) else None
    return sys.exc_info()[1] if exc_info else None


def format_exception(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """`exc_info` (from `logger.exception` or `exc_info=True`) becomes a safe `exception` string."""
    error = _exception_of(event_dict.pop("exc_info", None))
    if error is not None:
        event_dict["exception"] = describe_exception(error)
    return event_dict


def _uvicorn_fields(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """uvicorn's access line as fields, the query string left out (it is the client's to fill); no ANSI copy."""
    event_dict.pop("color_message", None)
    args = event_dict.pop("positional_args", None)  # the formatter empties the record's args before we run
    record = event_dict.get("_record")
    if record is not None and record.name == "uvicorn.access" and isinstance(args, tuple) and len(args) == 5:
        client, method, path, _version, status = args
        path = str(path).partition("?")[0]
        event_dict.update(event=f"{method} {path} {status}", client=client, method=method, path=path, status=status)
    return event_dict


_LEADING = (
    "timestamp",
    "level",
    "logger",
    "event",
    "role",
    "environmentId",
    "transactionId",
    "triggerId",
    "notificationId",
    "jobId",
    "workflowId",
    "step",
    "webhookDeliveryId",
)


def _leading_fields_first(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """The same fields open every line in the same order, where a reader's eye looks first."""
    ordered = {key: event_dict[key] for key in _LEADING if key in event_dict}
    ordered.update(event_dict)
    return ordered


def _role(role: str) -> Processor:
    def add_role(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("role", role)
        return event_dict

    return add_role


def _log_uncaught(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """A crash is a log line too (made safe like any other), not a bare traceback on stderr."""
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, trace)
        return
    logging.getLogger("tidings").critical(
        "uncaught %s, the process stops", kind.__name__, exc_info=(kind, error, trace)
    )


OWN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "taskiq")


def configure_logging(level: str, log_format: LogFormat, *, role: str, stream: TextIO | None = None) -> None:
    """Route every logger of this process through structlog to `stream` (stderr), as JSON or console lines."""
    timestamper = structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp")
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        timestamper,
        _role(role),
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer(default=str)
        if log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=(stream or sys.stderr).isatty())
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        pass_foreign_args=True,
        foreign_pre_chain=[
            *shared,
            structlog.stdlib.ExtraAdder(),
            _uvicorn_fields,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            format_exception,
            redact,
            _leading_fields_first,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Libraries that configure their own loggers (uvicorn does, when it starts) log through the root handler here,
    # at the root's level, whatever an earlier configuration in this process left on them.
    for name in OWN_LOGGERS:
        library = logging.getLogger(name)
        for old in list(library.handlers):
            library.removeHandler(old)
        library.setLevel(logging.NOTSET)
        library.propagate = True
        library.disabled = False
    floor = max(logging.getLevelName(level), logging.WARNING)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(floor)
    logging.captureWarnings(True)  # `warnings.warn` output becomes log lines too, not bare stderr text
    sys.excepthook = _log_uncaught
    structlog.configure(
        processors=[
            *shared,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
