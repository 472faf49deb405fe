"""Webhook signatures and the retry schedule: pure logic."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tidings.webhooks.delivery import MAX_ATTEMPTS, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS, retry_delay
from tidings.webhooks.signing import signature, signed_headers, verify

SECRET = "whsec_test"
BODY = b'{"id":"evt_1","type":"message.sent"}'


def test_signature_is_hmac_of_timestamp_and_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, BODY, 1_700_000_000) == f"t=1700000000,v1={expected}"
    headers = signed_headers(SECRET, event_id="evt_1", event_type="message.sent", body=BODY, timestamp=1_700_000_000)
    assert headers["Tidings-Signature"] == f"t=1700000000,v1={expected}"
    assert (headers["Tidings-Event-Id"], headers["Tidings-Event-Type"]) == ("evt_1", "message.sent")


@pytest.mark.parametrize(
    ("header", "now", "valid"),
    [
        ("SIGNED", 1_700_000_000, True),
        ("SIGNED", 1_700_000_300, True),
        ("SIGNED", 1_700_000_301, False),  # replayed too late
        ("SIGNED", 1_699_999_699, False),
        ("t=1700000000,v1=00,v1=SIG", 1_700_000_000, True),  # any of several signatures
        ("t=1700000001,v1=SIG", 1_700_000_000, False),  # timestamp is signed
        ("v1=SIG", 1_700_000_000, False),
        ("t=1700000000", 1_700_000_000, False),
        ("", 1_700_000_000, False),
    ],
)
def test_verify(header: str, now: int, valid: bool) -> None:
    signed = signature(SECRET, BODY, 1_700_000_000)
    digest = signed.split("v1=")[1]
    value = signed if header == "SIGNED" else header.replace("SIG", digest)
    assert verify(SECRET, value, BODY, now=now) is valid
    assert verify(SECRET, value, BODY.decode(), now=now) is valid
    assert not verify("whsec_other", value, BODY, now=now)


def test_retry_delays_grow_are_capped_and_span_about_a_day() -> None:
    ceilings = [min(RETRY_MAX_SECONDS, RETRY_BASE_SECONDS * 4**n) for n in range(MAX_ATTEMPTS - 1)]
    for attempt, ceiling in enumerate(ceilings, start=1):
        delays = [retry_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays)
    assert 12 * 3600 <= sum(ceilings) <= 30 * 3600
