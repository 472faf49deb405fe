"""Providers' status callbacks: each is verified (signature, credentials, token) and parsed into StatusUpdates.

Samples are signed here the way each service signs them, with test keys (a fresh ECDSA P-256 key for SendGrid).
The integration modules (test_providers_email, test_providers_sms) check that the ids match what send() returned.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pydantic
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tidings.engine.delivery import DeliveryStatus, InboundWebhook, StatusUpdate, WebhookRejectedError
from tidings.integrations.email_settings import MailgunSettings, PostmarkSettings, SendGridSettings
from tidings.integrations.sms_settings import TwilioSettings, VonageSettings
from tidings.tasks.providers.email.mailgun import MailgunProvider
from tidings.tasks.providers.email.postmark import PostmarkProvider
from tidings.tasks.providers.email.sendgrid import SendGridProvider
from tidings.tasks.providers.sms.twilio import TwilioProvider
from tidings.tasks.providers.sms.vonage import VonageProvider

CALLBACK_URL = "https://tidings.example.com/webhooks/providers/6650f0c2a1b2c3d4e5f60718"
ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "twilio-auth-token-SECRET"
MAILGUN_KEY = "mailgun-signing-key-SECRET"
EMAIL = "ada@example.com"
PHONE = "+447700900123"


def at(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


# --- SendGrid ---------------------------------------------------------------------------------------------------

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
SENDGRID_PUBLIC_KEY = base64.b64encode(
    SENDGRID_KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
).decode()


def sendgrid_settings(**extra: Any) -> SendGridSettings:
    return SendGridSettings.model_validate({"api_key": "SG.key", "from_email": "alerts@tidings.dev"} | extra)


def sendgrid_callback(
    events: list[dict[str, Any]], *, key: ec.EllipticCurvePrivateKey = SENDGRID_KEY, timestamp: str = "1764412000"
) -> InboundWebhook:
    body = json.dumps(events).encode()
    signature = base64.b64encode(key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()
    return InboundWebhook(
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": signature,
            "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
            "Content-Type": "application/json",
        },
        body=body,
        url=CALLBACK_URL,
    )


def sendgrid_event(event: str, message_id: str = "sg-msg-123", **fields: Any) -> dict[str, Any]:
    return {
        "email": EMAIL,
        "timestamp": 1764412000,
        "event": event,
        "sg_event_id": "ZGVsaXZlcmVk",
        "sg_message_id": f"{message_id}.filterdrecv-5645d9c87f-78xgx-1-5F5FC8E0-B.0",
        "smtp-id": "<sg-msg-123@ismtpd0001p1las1.sendgrid.net>",
        **fields,
    }


SENDGRID_EVENTS = [
    sendgrid_event("processed"),
    sendgrid_event("deferred", response="451 try later", attempt="1"),
    sendgrid_event("delivered", response="250 OK"),
    sendgrid_event("open", useragent="Mozilla/5.0", ip="192.0.2.1"),
    sendgrid_event("click", url="https://tidings.dev/builds/42"),
    sendgrid_event(
        "bounce",
        type="bounce",
        bounce_classification="Invalid Address",
        status="5.1.1",
        reason="550 5.1.1 ada@example.com: user unknown",
    ),
    sendgrid_event("bounce", type="blocked", status="4.7.1", reason="blocked by ada@example.com's server"),
    sendgrid_event("bounce", type="bounce", bounce_classification="Reputation", status="5.7.1"),
    sendgrid_event("dropped", reason="Bounced Address", status="5.0.0"),
    sendgrid_event("spamreport"),
    sendgrid_event("group_unsubscribe", asm_group_id=1),
]


async def test_sendgrid_signed_events_are_parsed() -> None:
    provider = SendGridProvider(identifier="sg", allow_private_networks=False)
    updates = provider.parse_status_webhook(
        sendgrid_settings(event_webhook_public_key=SENDGRID_PUBLIC_KEY), sendgrid_callback(SENDGRID_EVENTS)
    )
    when = at(1764412000)
    assert updates == [
        StatusUpdate("sg-msg-123", DeliveryStatus.DELIVERED, when),
        StatusUpdate("sg-msg-123", DeliveryStatus.OPENED, when),
        StatusUpdate("sg-msg-123", DeliveryStatus.CLICKED, when),
        StatusUpdate("sg-msg-123", DeliveryStatus.BOUNCED, when, hard=True, reason="5.1.1"),
        StatusUpdate("sg-msg-123", DeliveryStatus.BOUNCED, when, hard=False, reason="4.7.1"),
        StatusUpdate("sg-msg-123", DeliveryStatus.BOUNCED, when, hard=False, reason="5.7.1"),
        StatusUpdate("sg-msg-123", DeliveryStatus.FAILED, when, reason="5.0.0"),
    ]
    assert all(EMAIL not in repr(update) for update in updates)


async def test_sendgrid_rejects_a_bad_or_missing_signature() -> None:
    provider = SendGridProvider(identifier="sg", allow_private_networks=False)
    settings = sendgrid_settings(event_webhook_public_key=SENDGRID_PUBLIC_KEY)
    events = [sendgrid_event("delivered")]
    other_key = ec.generate_private_key(ec.SECP256R1())
    good = sendgrid_callback(events)
    tampered = [
        sendgrid_callback(events, key=other_key),
        InboundWebhook(good.headers, good.body.replace(b"delivered", b"bounce"), good.url),
        InboundWebhook({**good.headers, "X-Twilio-Email-Event-Webhook-Timestamp": "1764412001"}, good.body, good.url),
        InboundWebhook({**good.headers, "X-Twilio-Email-Event-Webhook-Signature": "not base64!"}, good.body, good.url),
        InboundWebhook({"Content-Type": "application/json"}, good.body, good.url),
    ]
    for webhook in tampered:
        with pytest.raises(WebhookRejectedError):
            provider.parse_status_webhook(settings, webhook)


async def test_sendgrid_without_a_key_accepts_unsigned_events_but_not_malformed_ones() -> None:
    provider = SendGridProvider(identifier="sg", allow_private_networks=False)
    unsigned = InboundWebhook({}, json.dumps([sendgrid_event("delivered"), "junk", {}]).encode(), CALLBACK_URL)
    (update,) = provider.parse_status_webhook(sendgrid_settings(), unsigned)
    assert update.status is DeliveryStatus.DELIVERED
    for body in (b"not json", b'{"event": "delivered"}'):
        with pytest.raises(WebhookRejectedError):
            provider.parse_status_webhook(sendgrid_settings(), InboundWebhook({}, body, CALLBACK_URL))


def test_sendgrid_public_key_setting() -> None:
    assert sendgrid_settings(event_webhook_public_key=SENDGRID_PUBLIC_KEY).event_webhook_public_key
    rsa_like = base64.b64encode(b"\x30\x03\x02\x01\x00").decode()
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    p384_key = base64.b64encode(
        p384.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ).decode()
    for bad in ("not base64!", rsa_like, p384_key):
        with pytest.raises(pydantic.ValidationError):
            sendgrid_settings(event_webhook_public_key=bad)


# --- Postmark ---------------------------------------------------------------------------------------------------

POSTMARK_ID = "0a129aee-e1cd-480d-b08d-4f48548ff48d"
POSTMARK_PASSWORD = "postmark-hook-SECRET"


def postmark_settings(**extra: Any) -> PostmarkSettings:
    return PostmarkSettings.model_validate({"server_token": "pm-token", "from_email": "alerts@tidings.dev"} | extra)


def postmark_callback(
    record: dict[str, Any], username: str | None = "tidings", password: str = POSTMARK_PASSWORD
) -> InboundWebhook:
    headers = {"Content-Type": "application/json"}
    if username is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    return InboundWebhook(headers=headers, body=json.dumps(record).encode(), url=CALLBACK_URL)


def postmark_record(record_type: str, message_id: str = POSTMARK_ID, **fields: Any) -> dict[str, Any]:
    return {
        "RecordType": record_type,
        "MessageStream": "outbound",
        "MessageID": message_id,
        "Recipient": EMAIL,
        "Metadata": {"idempotencyKey": "job-1"},
        **fields,
    }


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (
            postmark_record("Delivery", DeliveredAt="2026-11-29T10:53:00.9070259Z", Details="Test delivery"),
            StatusUpdate(POSTMARK_ID, DeliveryStatus.DELIVERED, datetime(2026, 11, 29, 10, 53, 0, 907025, UTC)),
        ),
        (
            postmark_record(
                "Bounce",
                Type="HardBounce",
                TypeCode=1,
                Email=EMAIL,
                BouncedAt="2026-11-29T10:53:00Z",
                Description="The server was unable to deliver your message",
                Details="smtp;550 5.1.1 ada@example.com unknown",
            ),
            StatusUpdate(
                POSTMARK_ID,
                DeliveryStatus.BOUNCED,
                datetime(2026, 11, 29, 10, 53, tzinfo=UTC),
                hard=True,
                reason="HardBounce",
            ),
        ),
        (
            postmark_record("Bounce", Type="SoftBounce", TypeCode=4096, BouncedAt="2026-11-29T05:53:00-05:00"),
            StatusUpdate(
                POSTMARK_ID,
                DeliveryStatus.BOUNCED,
                datetime(2026, 11, 29, 10, 53, tzinfo=UTC),
                hard=False,
                reason="SoftBounce",
            ),
        ),
        (
            postmark_record("Open", ReceivedAt="2026-11-29T10:53:00Z", FirstOpen=True),
            StatusUpdate(POSTMARK_ID, DeliveryStatus.OPENED, datetime(2026, 11, 29, 10, 53, tzinfo=UTC)),
        ),
        (
            postmark_record("Click", ReceivedAt="2026-11-29T10:53:00Z", OriginalLink="https://tidings.dev/x"),
            StatusUpdate(POSTMARK_ID, DeliveryStatus.CLICKED, datetime(2026, 11, 29, 10, 53, tzinfo=UTC)),
        ),
        (
            postmark_record("SpamComplaint", Type="SpamComplaint", BouncedAt="2026-11-29T10:53:00Z"),
            StatusUpdate(
                POSTMARK_ID, DeliveryStatus.FAILED, datetime(2026, 11, 29, 10, 53, tzinfo=UTC), reason="SpamComplaint"
            ),
        ),
    ],
)
def test_postmark_records_are_parsed(record: dict[str, Any], expected: StatusUpdate) -> None:
    settings = postmark_settings(webhook_username="tidings", webhook_password=POSTMARK_PASSWORD)
    assert PostmarkProvider(identifier="pm", allow_private_networks=False).parse_status_webhook(
        settings, postmark_callback(record)
    ) == [expected]


def test_postmark_skips_other_records_and_rejects_malformed_bodies() -> None:
    provider, settings = PostmarkProvider(identifier="pm", allow_private_networks=False), postmark_settings()
    for record in (postmark_record("SubscriptionChange", SuppressSending=True), {"RecordType": "Delivery"}):
        assert provider.parse_status_webhook(settings, postmark_callback(record, username=None)) == []
    for body in (b"<xml/>", b'"Delivery"', b"[1]"):
        with pytest.raises(WebhookRejectedError):
            provider.parse_status_webhook(settings, InboundWebhook({}, body, CALLBACK_URL))


def test_postmark_requires_matching_basic_credentials_when_set() -> None:
    provider = PostmarkProvider(identifier="pm", allow_private_networks=False)
    settings = postmark_settings(webhook_username="tidings", webhook_password=POSTMARK_PASSWORD)
    record = postmark_record("Delivery", DeliveredAt="2026-11-29T10:53:00Z")
    for webhook in (
        postmark_callback(record, username=None),
        postmark_callback(record, password="wrong"),
        postmark_callback(record, username="someone"),
    ):
        with pytest.raises(WebhookRejectedError):
            provider.parse_status_webhook(settings, webhook)
    # Headers compare case-insensitively.
    lower = postmark_callback(record)
    lower = InboundWebhook({k.lower(): v for k, v in lower.headers.items()}, lower.body, lower.url)
    assert len(provider.parse_status_webhook(settings, lower)) == 1
    # Without credentials configured, callbacks are accepted (documented as unsafe).
    assert len(provider.parse_status_webhook(postmark_settings(), postmark_callback(record, username=None))) == 1


def test_postmark_webhook_credentials_go_together_and_the_password_is_secret() -> None:
    settings = postmark_settings(webhook_username="tidings", webhook_password=POSTMARK_PASSWORD)
    assert POSTMARK_PASSWORD not in repr(settings)
    for extra in (
        {"webhook_username": "tidings"},
        {"webhook_password": "p"},
        {"webhook_username": "a:b", "webhook_password": "p"},
    ):
        with pytest.raises(pydantic.ValidationError):
            postmark_settings(**extra)


# --- Mailgun ----------------------------------------------------------------------------------------------------

MAILGUN_ID = "20261129105300.1.ABC@mg.tidings.dev"


def mailgun_settings(**extra: Any) -> MailgunSettings:
    values = {"api_key": "key", "domain": "mg.tidings.dev", "from_email": "alerts@tidings.dev"}
    return MailgunSettings.model_validate(values | {"webhook_signing_key": MAILGUN_KEY} | extra)


def mailgun_callback(
    event_data: dict[str, Any], *, key: str = MAILGUN_KEY, timestamp: int | None = None, token: str = "a" * 50
) -> InboundWebhook:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), (stamp + token).encode(), hashlib.sha256).hexdigest()
    body = {"signature": {"timestamp": stamp, "token": token, "signature": signature}, "event-data": event_data}
    return InboundWebhook({"Content-Type": "application/json"}, json.dumps(body).encode(), CALLBACK_URL)


def mailgun_event(
    event: str, message_id: str = MAILGUN_ID, delivery_status: dict[str, Any] | None = None, **fields: Any
) -> dict[str, Any]:
    if delivery_status is not None:
        fields["delivery-status"] = delivery_status
    return {
        "id": "CPgfbmQMTCKtHW6uIWtuVe",
        "timestamp": 1764413580.5,
        "event": event,
        "recipient": EMAIL,
        "message": {"headers": {"message-id": message_id, "to": EMAIL, "subject": "Build 42 passed"}},
        "user-variables": {"idempotencyKey": "job-1"},
        **fields,
    }


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        (mailgun_event("delivered"), (DeliveryStatus.DELIVERED, False, None)),
        (mailgun_event("opened"), (DeliveryStatus.OPENED, False, None)),
        (mailgun_event("clicked", url="https://tidings.dev/x"), (DeliveryStatus.CLICKED, False, None)),
        (mailgun_event("complained"), (DeliveryStatus.FAILED, False, None)),
        (
            mailgun_event(
                "failed",
                severity="permanent",
                reason="bounce",
                delivery_status={"code": 550, "message": "5.1.1 ada@example.com user unknown"},
            ),
            (DeliveryStatus.BOUNCED, True, "550"),
        ),
        (
            mailgun_event("failed", severity="permanent", reason="suppress-unsubscribe"),
            (DeliveryStatus.FAILED, False, "suppress-unsubscribe"),
        ),
    ],
)
def test_mailgun_signed_events_are_parsed(
    event: dict[str, Any], expected: tuple[DeliveryStatus, bool, str | None]
) -> None:
    (update,) = MailgunProvider(identifier="mg", allow_private_networks=False).parse_status_webhook(
        mailgun_settings(), mailgun_callback(event)
    )
    status, hard, reason = expected
    # The callback's id has no angle brackets; the send's has them.
    assert update == StatusUpdate(f"<{MAILGUN_ID}>", status, at(1764413580.5), hard=hard, reason=reason)


def test_mailgun_skips_temporary_failures_and_other_events() -> None:
    provider = MailgunProvider(identifier="mg", allow_private_networks=False)
    for event in (
        mailgun_event("failed", severity="temporary", delivery_status={"code": 421}),
        mailgun_event("accepted"),
        mailgun_event("unsubscribed"),
        {"event": "delivered"},
    ):
        assert provider.parse_status_webhook(mailgun_settings(), mailgun_callback(event)) == []


def test_mailgun_rejects_bad_signatures_stale_timestamps_and_a_missing_key() -> None:
    provider = MailgunProvider(identifier="mg", allow_private_networks=False)
    event = mailgun_event("delivered")
    good = mailgun_callback(event)
    forged = json.loads(good.body)
    forged["signature"]["token"] = "b" * 50
    for settings, webhook in [
        (mailgun_settings(), mailgun_callback(event, key="another-key")),
        (mailgun_settings(), InboundWebhook(good.headers, json.dumps(forged).encode(), good.url)),
        (mailgun_settings(), mailgun_callback(event, timestamp=int(time.time()) - 16 * 60)),
        (mailgun_settings(), mailgun_callback(event, timestamp=int(time.time()) + 16 * 60)),
        (mailgun_settings(), InboundWebhook({}, json.dumps({"event-data": event}).encode(), CALLBACK_URL)),
        (mailgun_settings(), InboundWebhook({}, b"signature=x", CALLBACK_URL)),
        (mailgun_settings(webhook_signing_key=None), good),
    ]:
        with pytest.raises(WebhookRejectedError):
            provider.parse_status_webhook(settings, webhook)
    assert provider.parse_status_webhook(mailgun_settings(), mailgun_callback(event, timestamp=int(time.time()) - 600))
    assert MAILGUN_KEY not in repr(mailgun_settings())


# --- Twilio -----------------------------------------------------------------------------------------------------

TWILIO_SID = "SM0123456789abcdef0123456789abcdef"


def twilio_settings(**extra: Any) -> TwilioSettings:
    values = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from_number": "+15005550006"}
    return TwilioSettings.model_validate(values | extra)


def twilio_signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """Computed independently of the provider: the example algorithm of Twilio's security docs."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio_callback(
    status: str, *, url: str = CALLBACK_URL, signed_url: str | None = None, token: str = AUTH_TOKEN, **fields: str
) -> InboundWebhook:
    params = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "From": "+15005550006",
        "MessageSid": TWILIO_SID,
        "MessageStatus": status,
        "SmsSid": TWILIO_SID,
        "SmsStatus": status,
        "To": PHONE,
        **fields,
    }
    signature = twilio_signature(signed_url or url, params, token)
    headers = {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"}
    return InboundWebhook(headers, urlencode(params).encode(), url)


@pytest.mark.parametrize(
    ("status", "fields", "expected"),
    [
        ("delivered", {}, [(DeliveryStatus.DELIVERED, False, None)]),
        ("read", {}, [(DeliveryStatus.OPENED, False, None)]),
        ("undelivered", {"ErrorCode": "30005"}, [(DeliveryStatus.FAILED, True, "30005")]),
        ("undelivered", {"ErrorCode": "30006"}, [(DeliveryStatus.FAILED, True, "30006")]),
        ("failed", {"ErrorCode": "21211"}, [(DeliveryStatus.FAILED, True, "21211")]),
        ("undelivered", {"ErrorCode": "30003"}, [(DeliveryStatus.FAILED, False, "30003")]),
        ("failed", {}, [(DeliveryStatus.FAILED, False, None)]),
        ("sent", {}, []),
        ("queued", {}, []),
        ("sending", {}, []),
    ],
)
def test_twilio_signed_callbacks_are_parsed(
    status: str, fields: dict[str, str], expected: list[tuple[DeliveryStatus, bool, str | None]]
) -> None:
    updates = TwilioProvider(identifier="tw", allow_private_networks=False).parse_status_webhook(
        twilio_settings(), twilio_callback(status, **fields)
    )
    assert [(update.provider_message_id, update.status, update.hard, update.reason) for update in updates] == [
        (TWILIO_SID, *item) for item in expected
    ]
    assert all(update.occurred_at.tzinfo is UTC for update in updates)


def test_twilio_rejects_bad_signatures() -> None:
    provider = TwilioProvider(identifier="tw", allow_private_networks=False)
    good = twilio_callback("delivered")
    for webhook in (
        twilio_callback("delivered", token="another-token"),
        twilio_callback("delivered", signed_url=CALLBACK_URL + "?x=1"),
        InboundWebhook(good.headers, good.body.replace(b"delivered", b"failed", 1), good.url),
        InboundWebhook({}, good.body, good.url),
        InboundWebhook(good.headers, b"\xff\xfe", good.url),
    ):
        with pytest.raises(WebhookRejectedError):
            provider.parse_status_webhook(twilio_settings(), webhook)


def test_twilio_verifies_against_the_status_callback_url_when_set() -> None:
    provider = TwilioProvider(identifier="tw", allow_private_networks=False)
    settings = twilio_settings(status_callback_url=CALLBACK_URL)
    # A proxy rewrote the URL the request reached; Twilio signed the configured one.
    proxied = twilio_callback("delivered", url="http://tidings:8000/webhooks/providers/x", signed_url=CALLBACK_URL)
    assert len(provider.parse_status_webhook(settings, proxied)) == 1
    with pytest.raises(WebhookRejectedError):
        provider.parse_status_webhook(twilio_settings(), proxied)
    for bad in ("http://tidings.example.com/cb", "not a url"):
        with pytest.raises(pydantic.ValidationError):
            twilio_settings(status_callback_url=bad)


# --- Vonage -----------------------------------------------------------------------------------------------------

VONAGE_ID = "0A000000123ABCD0"
DLR_TOKEN = "vonage-dlr-token-SECRET"


def vonage_settings(**extra: Any) -> VonageSettings:
    values = {"api_key": "abc123", "api_secret": "s", "from_number": "Tidings", "dlr_token": DLR_TOKEN}
    return VonageSettings.model_validate(values | extra)


def vonage_receipt(status: str, err_code: str = "0", **fields: str) -> dict[str, str]:
    return {
        "msisdn": PHONE.removeprefix("+"),
        "to": "Tidings",
        "network-code": "23410",
        "messageId": VONAGE_ID,
        "price": "0.03330000",
        "status": status,
        "scts": "2611291053",
        "err-code": err_code,
        "api-key": "abc123",
        "message-timestamp": "2026-11-29 10:53:00",
        "client-ref": "job-1",
        **fields,
    }


@pytest.mark.parametrize("encoding", ["json", "form"])
@pytest.mark.parametrize(
    ("status", "err_code", "expected"),
    [
        ("delivered", "0", [(DeliveryStatus.DELIVERED, False, None)]),
        ("failed", "3", [(DeliveryStatus.FAILED, True, "3")]),
        ("rejected", "9", [(DeliveryStatus.FAILED, True, "9")]),
        ("expired", "2", [(DeliveryStatus.FAILED, False, "2")]),
        ("accepted", "0", []),
        ("buffered", "0", []),
    ],
)
def test_vonage_receipts_with_the_token_are_parsed(
    encoding: str, status: str, err_code: str, expected: list[tuple[DeliveryStatus, bool, str | None]]
) -> None:
    receipt = vonage_receipt(status, err_code)
    body = json.dumps(receipt).encode() if encoding == "json" else urlencode(receipt).encode()
    webhook = InboundWebhook({}, body, f"{CALLBACK_URL}?token={DLR_TOKEN}")
    updates = VonageProvider(identifier="vg", allow_private_networks=False).parse_status_webhook(
        vonage_settings(), webhook
    )
    assert updates == [
        StatusUpdate(VONAGE_ID, item[0], datetime(2026, 11, 29, 10, 53, tzinfo=UTC), hard=item[1], reason=item[2])
        for item in expected
    ]


def test_vonage_rejects_receipts_without_the_token() -> None:
    provider = VonageProvider(identifier="vg", allow_private_networks=False)
    body = json.dumps(vonage_receipt("delivered")).encode()
    for settings, url in [
        (vonage_settings(), CALLBACK_URL),
        (vonage_settings(), f"{CALLBACK_URL}?token=wrong"),
        (vonage_settings(), f"{CALLBACK_URL}?token={DLR_TOKEN}&token=wrong"),
        (vonage_settings(dlr_token=None), f"{CALLBACK_URL}?token={DLR_TOKEN}"),
    ]:
        with pytest.raises(WebhookRejectedError):
            provider.parse_status_webhook(settings, InboundWebhook({}, body, url))
    with pytest.raises(WebhookRejectedError):
        provider.parse_status_webhook(
            vonage_settings(), InboundWebhook({}, b"[1]", f"{CALLBACK_URL}?token={DLR_TOKEN}")
        )
    assert DLR_TOKEN not in repr(vonage_settings())
