"""Classification of provider answers, Retry-After, and the pure parts of building an email."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

import pytest

from tidings.engine.delivery import FailureKind
from tidings.tasks.providers.chat.webhook import signature
from tidings.tasks.providers.email.smtp import message_id, metadata_header, plain_text
from tidings.tasks.providers.errors import (
    MAX_RETRY_AFTER_SECONDS,
    http_failure_kind,
    retry_after_seconds,
    smtp_failure_kind,
    smtp_reply,
)

TRANSIENT, PERMANENT, BAD_ENDPOINT = FailureKind.TRANSIENT, FailureKind.PERMANENT, FailureKind.BAD_ENDPOINT


@pytest.mark.parametrize(
    ("status", "subscriber", "kind"),
    [
        (408, False, TRANSIENT),
        (425, False, TRANSIENT),
        (429, True, TRANSIENT),
        (500, False, TRANSIENT),
        (502, True, TRANSIENT),
        (503, False, TRANSIENT),
        (400, True, PERMANENT),
        (401, False, PERMANENT),
        (403, True, PERMANENT),
        (404, False, PERMANENT),
        (410, False, PERMANENT),
        (404, True, BAD_ENDPOINT),
        (410, True, BAD_ENDPOINT),
        (302, False, PERMANENT),
        (301, True, PERMANENT),
    ],
)
def test_http_statuses(status: int, subscriber: bool, kind: FailureKind) -> None:
    assert http_failure_kind(status, subscriber_endpoint=subscriber) is kind


NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 2.5 ", 2.5),
        ("0", 0.0),
        ("-3", 0.0),
        ("99999999", MAX_RETRY_AFTER_SECONDS),
        ("Wed, 01 Jan 2025 12:00:30 GMT", 30.0),
        ("Wed, 01 Jan 2025 11:00:00 GMT", 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("inf", None),
    ],
)
def test_retry_after(header: str | None, seconds: float | None) -> None:
    assert retry_after_seconds(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("code", "message", "at_recipient", "kind"),
    [
        (421, "4.3.2 shutting down", False, TRANSIENT),
        (450, "mailbox busy", True, TRANSIENT),
        (451, "4.3.0 local error", False, TRANSIENT),
        (452, "4.2.2 full", True, TRANSIENT),
        (454, "4.7.0 auth temporarily unavailable", False, TRANSIENT),
        (550, "5.1.1 no such user", True, BAD_ENDPOINT),
        (551, "user not local", True, BAD_ENDPOINT),
        (553, "mailbox name not allowed", True, BAD_ENDPOINT),
        (550, "5.1.1 unknown user", False, BAD_ENDPOINT),  # refused after DATA, but says it is the address
        (550, "5.7.1 sender rejected", False, PERMANENT),  # our sender or content, not the subscriber
        (554, "5.7.1 spam", False, PERMANENT),
        (535, "5.7.8 bad credentials", False, PERMANENT),
        (552, "5.3.4 message too big", False, PERMANENT),
    ],
)
def test_smtp_replies(code: int, message: str, at_recipient: bool, kind: FailureKind) -> None:
    assert smtp_failure_kind(code, message, recipient_stage=at_recipient) is kind


def test_smtp_reply_keeps_code_and_first_line() -> None:
    assert smtp_reply(550, "5.1.1 no such user\nsecond line") == "550 5.1.1 no such user"
    assert smtp_reply(421, "") == "421"
    assert len(smtp_reply(554, "x" * 1000)) == 4 + 200


def test_message_id_is_stable_and_valid() -> None:
    assert message_id("job-123.step_2") == "<job-123.step_2@tidings>"
    odd = message_id("notification:1 step<2>")
    assert odd == message_id("notification:1 step<2>")
    assert odd != message_id("notification:1 step<3>")
    assert odd.startswith("<")
    assert odd.endswith("@tidings>")
    assert all(char.isalnum() for char in odd[1 : -len("@tidings>")])
    assert len(message_id("k" * 500)) == len("<@tidings>") + 32


@pytest.mark.parametrize(
    ("key", "header"),
    [
        ("transactionId", "X-Tidings-Transaction-Id"),
        ("workflowId", "X-Tidings-Workflow-Id"),
        ("stepId", "X-Tidings-Step-Id"),
        ("tenant", "X-Tidings-Tenant"),
    ],
)
def test_metadata_headers(key: str, header: str) -> None:
    assert metadata_header(key) == header


def test_plain_text_of_html() -> None:
    html = (
        "<html><head><title>T</title><style>.a{}</style></head><body>"
        "<h1>Hello&nbsp;Ada</h1><p>Your   <b>order</b> &lt;42&gt; shipped.</p>"
        '<script>alert(1)</script><p><a href="https://shop.example.com/o/42">Track it</a>'
        '<a href="javascript:evil()">x</a></p></body></html>'
    )
    assert plain_text(html) == ("Hello Ada\n\nYour order <42> shipped.\n\nTrack it (https://shop.example.com/o/42)x\n")


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"a":1}'
    expected = hmac.new(b"secret", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert signature("secret", 1700000000, body) == f"t=1700000000,v1={expected}"
