"""Provider settings: the registry, per-provider validation, and the config/credentials split with API field paths."""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from tidings.core.channels import Channel
from tidings.core.errors import ValidationError
from tidings.integrations.credentials import (
    client_config,
    client_credentials,
    provider_spec,
    split_settings,
    validate_settings,
)
from tidings.integrations.providers import PROVIDERS, SmtpSettings

SMTP = PROVIDERS["smtp"]
WEBHOOK = PROVIDERS["webhook"]
SLACK = PROVIDERS["slack-webhook"]
IN_APP = PROVIDERS["in-app"]


def _settings(provider: str, config: dict[str, Any], credentials: dict[str, Any] | None = None) -> Any:
    spec = PROVIDERS[provider]
    secrets = client_credentials(spec, credentials or {}, allow_null=False)
    return validate_settings(spec, client_config(spec, config), {k: v for k, v in secrets.items() if v is not None})


def _field(provider: str, config: dict[str, Any], credentials: dict[str, Any] | None = None) -> str | None:
    with pytest.raises(ValidationError) as error:
        _settings(provider, config, credentials)
    return error.value.field


def test_registry_channels_and_secret_fields() -> None:
    assert {spec_id: spec.channel for spec_id, spec in PROVIDERS.items()} == {
        "smtp": Channel.EMAIL,
        "sendgrid": Channel.EMAIL,
        "postmark": Channel.EMAIL,
        "resend": Channel.EMAIL,
        "mailgun": Channel.EMAIL,
        "twilio": Channel.SMS,
        "vonage": Channel.SMS,
        "sms-webhook": Channel.SMS,
        "webhook": Channel.CHAT,
        "slack-webhook": Channel.CHAT,
        "slack-api": Channel.CHAT,
        "discord": Channel.CHAT,
        "teams": Channel.CHAT,
        "telegram": Channel.CHAT,
        "apprise": Channel.CHAT,
        "fcm": Channel.PUSH,
        "apns": Channel.PUSH,
        "expo": Channel.PUSH,
        "webpush": Channel.PUSH,
        "in-app": Channel.IN_APP,
    }
    assert SMTP.secret_fields == {"password"}
    assert WEBHOOK.secret_fields == {"signing_secret"}
    assert SLACK.secret_fields == {"webhook_url"}
    assert IN_APP.secret_fields == frozenset()


_P256 = (
    ec.generate_private_key(ec.SECP256R1())
    .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    .decode()
)
VALID: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "smtp": ({"host": "smtp.example.com", "fromEmail": "a@example.com"}, {"password": "pw-value-1"}),
    "webhook": ({"url": "https://example.com/hook"}, {"signingSecret": "sig-value-2"}),
    "slack-webhook": ({}, {"webhookUrl": "https://hooks.slack.com/services/T/B/x"}),
    "sendgrid": ({"fromEmail": "a@example.com"}, {"apiKey": "SG.key-value"}),
    "postmark": (
        {"fromEmail": "a@example.com", "webhookUsername": "hooks"},
        {"serverToken": "pm-token-value", "webhookPassword": "hook-password"},
    ),
    "resend": ({"fromEmail": "a@example.com"}, {"apiKey": "re_key_value"}),
    "mailgun": (
        {"fromEmail": "a@example.com", "domain": "mg.example.com"},
        {"apiKey": "key-value-mg", "webhookSigningKey": "signing-key-mg"},
    ),
    "twilio": ({"accountSid": "AC" + "0" * 32, "fromNumber": "+15005550006"}, {"authToken": "tw-token-value"}),
    "vonage": (
        {"apiKey": "abcd1234", "fromNumber": "Tidings"},
        {"apiSecret": "vonage-secret", "dlrToken": "dlr-token-value"},
    ),
    "sms-webhook": ({"url": "https://sms.example.com/send"}, {"signingSecret": "sig-value-3"}),
    "discord": ({}, {"webhookUrl": "https://discord.com/api/webhooks/1/abc"}),
    "teams": ({}, {"webhookUrl": "https://example.webhook.office.com/webhookb2/x"}),
    "telegram": ({"defaultChatId": "12345"}, {"botToken": "123456:AAH_token-value_0123456789abcdefghij"}),
    "slack-api": ({"defaultChannel": "C0123"}, {"botToken": "xoxb-token-value"}),
    "apprise": ({}, {"urls": "json://notify.example.com/hook"}),
    "fcm": (
        {},
        {
            "serviceAccount": json.dumps(
                {
                    "project_id": "demo-app",
                    "client_email": "push@demo-app.iam.gserviceaccount.com",
                    "private_key": "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
                    "token_uri": "https://oauth2.googleapis.com/token",
                }
            )
        },
    ),
    "apns": ({"teamId": "ABCDE12345", "keyId": "KEY1234567", "bundleId": "com.example.app"}, {"privateKey": _P256}),
    "expo": ({}, {"accessToken": "expo-access-token-value"}),
    "webpush": ({"vapidSubject": "mailto:ops@example.com"}, {"vapidPrivateKey": _P256}),
    "in-app": ({}, {}),
}


@pytest.mark.parametrize("provider", list(PROVIDERS))
def test_every_secret_field_is_masked_in_the_settings_model(provider: str) -> None:
    assert set(VALID) == set(PROVIDERS)
    settings = _settings(provider, *VALID[provider])
    for name in PROVIDERS[provider].secret_fields:
        assert isinstance(getattr(settings, name), SecretStr)
        assert getattr(settings, name).get_secret_value() not in repr(settings)


def test_smtp_defaults_and_camel_case_keys() -> None:
    settings = _settings("smtp", {"host": "smtp.example.com", "fromEmail": "hi@example.com"}, {"password": "pw-123"})
    assert isinstance(settings, SmtpSettings)
    assert (settings.port, settings.security, settings.timeout_seconds) == (587, "starttls", 10)
    assert settings.password is not None
    assert settings.password.get_secret_value() == "pw-123"
    assert "pw-123" not in repr(settings)


def test_split_keeps_secrets_out_of_config() -> None:
    settings = _settings(
        "smtp", {"host": "mail.example.com", "fromEmail": "a@example.com", "port": 465}, {"password": "p"}
    )
    config, secrets = split_settings(SMTP, settings)
    assert config == {
        "host": "mail.example.com",
        "port": 465,
        "security": "starttls",
        "from_email": "a@example.com",
        "timeout_seconds": 10,
    }
    assert secrets == {"password": "p"}


def test_split_of_slack_puts_the_url_in_secrets() -> None:
    url = "https://hooks.slack.com/services/T0/B0/xyz"
    config, secrets = split_settings(SLACK, _settings("slack-webhook", {}, {"webhookUrl": url}))
    assert config == {"timeout_seconds": 10}
    assert secrets == {"webhook_url": url}


@pytest.mark.parametrize(
    ("provider", "config", "credentials", "field"),
    [
        ("smtp", {"fromEmail": "a@example.com"}, {}, "input.config.host"),
        ("smtp", {"host": "h", "fromEmail": "not-an-address"}, {}, "input.config.fromEmail"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com", "port": 70000}, {}, "input.config.port"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com", "security": "ssl"}, {}, "input.config.security"),
        ("smtp", {"host": "has space", "fromEmail": "a@example.com"}, {}, "input.config.host"),
        ("smtp", {"host": "h" * 254, "fromEmail": "a@example.com"}, {}, "input.config.host"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com", "timeoutSeconds": 121}, {}, "input.config.timeoutSeconds"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com"}, {"password": "x" * 1025}, "input.credentials.password"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com", "password": "p"}, {}, "input.config.password"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com", "from_email": "b"}, {}, "input.config.from_email"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com"}, {"host": "h"}, "input.credentials.host"),
        ("smtp", {"host": "h", "fromEmail": "a@example.com"}, {"password": 42}, "input.credentials.password"),
        ("webhook", {"url": "ftp://example.com/x"}, {}, "input.config.url"),
        ("webhook", {"url": "javascript:alert(1)"}, {}, "input.config.url"),
        ("webhook", {}, {}, "input.config.url"),
        ("webhook", {"url": "https://example.com"}, {"signingSecret": ""}, "input.credentials.signingSecret"),
        ("slack-webhook", {}, {}, "input.credentials.webhookUrl"),
        ("slack-webhook", {}, {"webhookUrl": "http://hooks.slack.com/x"}, "input.credentials.webhookUrl"),
        ("slack-webhook", {"webhookUrl": "https://hooks.slack.com/x"}, {}, "input.config.webhookUrl"),
        ("in-app", {"anything": 1}, {}, "input.config.anything"),
    ],
)
def test_invalid_settings_name_the_field_the_client_sent(
    provider: str, config: dict[str, Any], credentials: dict[str, Any], field: str
) -> None:
    assert _field(provider, config, credentials) == field


def test_error_messages_never_echo_a_secret() -> None:
    secret = "http://hooks.slack.com/services/T0/B0/very-secret-token"
    with pytest.raises(ValidationError) as error:
        _settings("slack-webhook", {}, {"webhookUrl": secret})
    assert "very-secret-token" not in error.value.message
    with pytest.raises(ValidationError) as too_long:
        _settings("smtp", {"host": "h", "fromEmail": "a@example.com"}, {"password": "s3cr3t" * 200})
    assert "s3cr3t" not in too_long.value.message


def test_credentials_null_means_remove_only_when_allowed() -> None:
    assert client_credentials(WEBHOOK, {"signingSecret": None}, allow_null=True) == {"signing_secret": None}
    with pytest.raises(ValidationError) as error:
        client_credentials(WEBHOOK, {"signingSecret": None}, allow_null=False)
    assert error.value.field == "input.credentials.signingSecret"


def test_unknown_provider_is_a_validation_error_on_provider_id() -> None:
    with pytest.raises(ValidationError) as error:
        provider_spec("carrier-pigeon")
    assert error.value.field == "input.providerId"
    assert provider_spec("smtp") is SMTP


def test_field_for_maps_api_names_to_stored_names() -> None:
    assert SMTP.field_for("fromEmail") == "from_email"
    assert SMTP.field_for("from_email") is None
    assert SLACK.field_for("webhookUrl") == "webhook_url"


def test_every_provider_that_sends_has_a_class_and_each_class_a_spec() -> None:
    from tidings.tasks.providers.registry import PROVIDERS_BY_ID  # noqa: PLC0415

    assert set(PROVIDERS) - {"in-app"} == set(PROVIDERS_BY_ID)
    for provider_id, spec in PROVIDERS.items():
        assert spec.id == provider_id
        assert spec.secret_fields <= set(spec.settings_model.model_fields), provider_id
