"""The logging setup of every role: JSON lines through the standard library, bound context, nothing secret."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import pydantic
import pytest
import structlog
import uvicorn

from tidings.app.logs import REDACTED, configure_logging

type Lines = Callable[[], list[dict[str, Any]]]

SECRET = "s3cr3t-value-7f1e"


@pytest.fixture
def lines() -> Iterator[Lines]:
    """`configure_logging` onto a buffer; the root logger and structlog are put back afterwards."""
    stream = io.StringIO()
    with _restored_logging():
        configure_logging("DEBUG", "json", role="worker", stream=stream)
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]


@contextmanager
def _restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    saved_handlers, saved_level, saved_hook = list(root.handlers), root.level, sys.excepthook
    try:
        yield
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        sys.excepthook = saved_hook
        logging.captureWarnings(False)
        structlog.reset_defaults()


def test_library_loggers_configured_earlier_in_the_process_still_log_through_it() -> None:
    """uvicorn sets its own loggers' levels when a server starts (an in-thread test server at "warning", say)."""
    uvicorn.Config(lambda *_: None, log_level="warning").configure_logging()
    logging.getLogger("uvicorn.error").addHandler(logging.NullHandler())
    stream = io.StringIO()
    with _restored_logging():
        configure_logging("DEBUG", "json", role="api", stream=stream)
        logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/healthz", "1.1", 200)
        logging.getLogger("uvicorn.error").info("Started server process")
    events = [json.loads(line)["event"] for line in stream.getvalue().splitlines()]
    assert events == ["GET /healthz 200", "Started server process"]
    assert not logging.getLogger("uvicorn.error").handlers  # one handler (the root's) writes each line once


# Each must stay redacted: removing one from tidings.app.logs fails its case.
SENSITIVE_KEYS = [
    "password",
    "smtpPassword",
    "secret",
    "signing_secret",
    "signingSecret",
    "token",
    "authToken",
    "access_token",
    "api_key",
    "apiKey",
    "X-Api-Key",
    "accessKey",
    "privateKey",
    "vapid_private_key",
    "webhook_signing_key",
    "authorization",
    "Authorization",
    "credentials",
    "cookie",
    "signature",
    "subscriberHash",
    "service_account",
    "webhookUrl",
    "html",
    "body",
    "content",
    "text",
    "subject",
    "title",
    "payload",
    "urls",
]


@pytest.mark.parametrize("key", SENSITIVE_KEYS)
def test_a_sensitive_key_is_redacted_from_stdlib_and_structlog_lines(lines: Lines, key: str) -> None:
    logging.getLogger("tidings.test").warning("stdlib", extra={key: SECRET})
    structlog.stdlib.get_logger("tidings.test").warning("native", **{key: SECRET})
    structlog.stdlib.get_logger("tidings.test").warning("nested", detail={"outer": [{key: SECRET}]})
    stdlib, native, nested = lines()
    assert stdlib[key] == native[key] == REDACTED
    assert nested["detail"] == {"outer": [{key: REDACTED}]}
    assert SECRET not in json.dumps(lines())


def test_ordinary_fields_are_kept(lines: Lines) -> None:
    kept = {"transactionId": "tx-1", "jobId": "j-1", "status": "failed", "reason": "smtp answered 550", "count": 3}
    logging.getLogger("tidings.test").info("kept", extra=kept)
    [line] = lines()
    assert {key: line[key] for key in kept} == kept


def test_every_line_is_one_json_object_with_the_standard_fields(lines: Lines) -> None:
    logging.getLogger("taskiq.receiver").info("Executing task %s with ID: %s", "tidings.engine.run", "abc")
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "1.2.3.4:5", "GET", "/healthz?x=1", "1.1", 200)
    warnings.warn("deprecated thing", DeprecationWarning, stacklevel=1)
    task, access, warned = lines()
    for line in (task, access, warned):
        assert datetime.fromisoformat(line["timestamp"]).utcoffset() is not None
        assert line["timestamp"].endswith("Z")
        assert line["role"] == "worker"
    assert (task["level"], task["logger"], task["event"]) == (
        "info",
        "taskiq.receiver",
        "Executing task tidings.engine.run with ID: abc",
    )
    assert (access["method"], access["path"], access["status"], access["event"]) == (
        "GET",
        "/healthz",
        200,
        "GET /healthz 200",
    )
    assert (warned["level"], warned["logger"]) == ("warning", "py.warnings")


@pytest.mark.parametrize(
    ("text", "leak", "kept"),
    [
        (
            "posting to https://hooks.slack.com/services/T0/B0/" + SECRET,
            SECRET,
            "https://hooks.slack.com/services/.../.../...",
        ),
        (
            "GET https://api.telegram.org/bot123:" + SECRET + "/sendMessage",
            SECRET,
            "https://api.telegram.org/.../sendMessage",
        ),
        ("waiting for mongodb://admin:" + SECRET + "@db:27017/tidings", SECRET, "mongodb://db:27017/tidings"),
        ("sent with https://example.com/hook?token=" + SECRET + " now", SECRET, "https://example.com/hook?... "),
        ("metrics on http://127.0.0.1:9464/metrics", "[redacted]", "http://127.0.0.1:9464/metrics"),
        ("header Authorization: ApiKey tid_sk_" + SECRET, SECRET, "ApiKey [redacted]"),
        ("a key tid_sk_" + SECRET + " in text", SECRET, "tid_sk_[redacted] in text"),
        ("signed with whsec_" + SECRET, SECRET, "whsec_[redacted]"),
        ("Bearer " + SECRET, SECRET, "Bearer [redacted]"),
        ("Authorization: Basic dXNlcjpwYXNz", "dXNlcjpwYXNz", "Basic [redacted]"),
        ("jwt eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJ4In0." + SECRET, SECRET, "jwt [redacted]"),
    ],
)
def test_secrets_inside_text_are_scrubbed(lines: Lines, text: str, leak: str, kept: str) -> None:
    logging.getLogger("httpx").warning("%s", text)
    logging.getLogger("tidings.test").info("failed", extra={"error": text})
    message, field = lines()
    assert leak not in message["event"]
    assert leak not in field["error"]
    assert kept in message["event"]
    assert kept in field["error"]


class _Credentials(pydantic.BaseModel):
    port: int
    password: pydantic.SecretStr


def test_a_validation_error_is_logged_without_the_input_it_rejected(lines: Lines) -> None:
    try:
        try:
            _Credentials.model_validate({"port": SECRET, "password": 5})
        except pydantic.ValidationError as exc:
            raise RuntimeError("could not load the integration") from exc
    except RuntimeError:
        logging.getLogger("tidings.test").exception("send failed")
    [line] = lines()
    assert SECRET not in json.dumps(line)
    exception = line["exception"]
    assert "pydantic_core._pydantic_core.ValidationError: 2 validation error(s) for _Credentials" in exception
    assert "port: Input should be a valid integer" in exception
    assert "builtins.RuntimeError: could not load the integration" in exception
    assert exception.index("ValidationError") < exception.index("RuntimeError: could not")  # causes first
    assert "in test_a_validation_error_is_logged_without_the_input_it_rejected" in exception  # the stack frames


def test_noisy_libraries_stay_at_warning_even_at_debug(lines: Lines) -> None:
    logging.getLogger("httpx").info("HTTP Request: POST https://example.com/")
    logging.getLogger("pymongo.command").debug('{"command": {"insert": "messages", "body": "x"}}')
    logging.getLogger("websockets.server").debug('< TEXT \'{"type":"connection_init"}\'')
    logging.getLogger("tidings.test").debug("ours")
    assert [line["event"] for line in lines()] == ["ours"]


async def test_context_bound_in_concurrent_tasks_does_not_mix(lines: Lines) -> None:
    started = asyncio.Event()

    async def job(job_id: str) -> None:
        with structlog.contextvars.bound_contextvars(jobId=job_id, transactionId=f"tx-{job_id}"):
            await started.wait()
            logging.getLogger("tidings.test").info("step ran")
        logging.getLogger("tidings.test").info("after the job")

    tasks = [asyncio.create_task(job(str(n))) for n in range(5)]
    await asyncio.sleep(0)
    started.set()
    await asyncio.gather(*tasks)
    ran = [line for line in lines() if line["event"] == "step ran"]
    assert sorted(line["jobId"] for line in ran) == ["0", "1", "2", "3", "4"]
    assert all(line["transactionId"] == f"tx-{line['jobId']}" for line in ran)
    assert all("jobId" not in line for line in lines() if line["event"] == "after the job")


def test_console_format_is_for_people() -> None:
    stream = io.StringIO()
    with _restored_logging():
        configure_logging("INFO", "console", role="dev", stream=stream)
        logging.getLogger("tidings.test").info("hello", extra={"password": SECRET, "count": 2})
    output = stream.getvalue()
    assert "hello" in output
    assert "count" in output
    assert SECRET not in output
    with pytest.raises(json.JSONDecodeError):
        json.loads(output)


def test_a_crash_is_a_log_line_too(lines: Lines) -> None:
    try:
        raise KeyError("https://user:" + SECRET + "@example.com/")
    except KeyError as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    [line] = lines()
    assert (line["level"], line["logger"], line["event"]) == (
        "critical",
        "tidings",
        "uncaught KeyError, the process stops",
    )
    assert "builtins.KeyError" in line["exception"]
    assert SECRET not in json.dumps(line)
