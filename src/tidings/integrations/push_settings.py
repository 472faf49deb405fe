"""Settings of the push providers: FCM HTTP v1, APNs (token auth), Expo and Web Push (VAPID).

`base_url` is the service's real API origin by default; it is a setting so a test (or a proxy origin) can stand in
for it, and it is checked by the SSRF guard before each send. Web Push has none: each subscription names its own
push-service endpoint, which is checked instead. Validation messages never quote a secret.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Annotated, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key
from pydantic import AfterValidator, Field, SecretStr

from tidings.integrations.provider_settings import (
    MAX_URL_LENGTH,
    HttpUrl,
    ProviderSettings,
    Secret,
    TimeoutSeconds,
    _http_url,
)

# A service-account JSON carries a 2048-bit RSA key: longer than the shared `Secret` limit allows.
MAX_SERVICE_ACCOUNT_LENGTH = 16_384
_SERVICE_ACCOUNT_FIELDS = ("project_id", "client_email", "private_key", "token_uri")


def _service_account(value: SecretStr) -> SecretStr:
    text = value.get_secret_value()
    if not 1 <= len(text) <= MAX_SERVICE_ACCOUNT_LENGTH:
        raise ValueError(f"must be 1 to {MAX_SERVICE_ACCOUNT_LENGTH} characters")
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("must be a service-account JSON document") from None
    if not isinstance(document, dict):
        raise ValueError("must be a service-account JSON document")
    missing = [
        name for name in _SERVICE_ACCOUNT_FIELDS if not isinstance(document.get(name), str) or not document[name]
    ]
    if missing:
        raise ValueError(f"service-account JSON lacks {', '.join(missing)}")
    if not document["private_key"].lstrip().startswith("-----BEGIN"):
        raise ValueError("service-account private_key must be a PEM key")
    try:
        _http_url(document["token_uri"])
    except ValueError:
        raise ValueError("service-account token_uri must be an http or https URL") from None
    return value


def service_account_info(value: SecretStr) -> dict[str, str]:
    """The parsed service-account document (validated by the settings model)."""
    document: dict[str, str] = json.loads(value.get_secret_value())
    return document


def load_p256_key(text: str) -> ec.EllipticCurvePrivateKey:
    """A P-256 private key from PEM, base64(url) DER or a base64url raw 32-byte scalar; ValueError otherwise."""
    stripped = text.strip()
    try:
        if stripped.startswith("-----BEGIN"):
            key = load_pem_private_key(stripped.encode(), password=None)
        else:
            raw = base64.urlsafe_b64decode(stripped.replace("+", "-").replace("/", "_") + "=" * (-len(stripped) % 4))
            if len(raw) == 32:
                key = ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())
            else:
                key = load_der_private_key(raw, password=None)
    except (ValueError, TypeError, binascii.Error):
        raise ValueError("must be a P-256 private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise ValueError("must be a P-256 private key")
    return key


def _p256_key(value: SecretStr) -> SecretStr:
    load_p256_key(value.get_secret_value())
    return value


type ServiceAccountJson = Annotated[SecretStr, AfterValidator(_service_account)]
type P256Key = Annotated[Secret, AfterValidator(_p256_key)]
type AppleId = Annotated[str, Field(pattern=r"^[A-Z0-9]{10}$")]


class FcmSettings(ProviderSettings):
    # The whole service-account JSON; its token_uri is where access tokens come from (checked by the SSRF guard).
    service_account: ServiceAccountJson
    # Which Firebase project to send as; the service account's project_id when absent.
    project_id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")] | None = None
    base_url: HttpUrl = "https://fcm.googleapis.com"
    timeout_seconds: TimeoutSeconds = 10


APNS_ORIGINS = {"production": "https://api.push.apple.com", "sandbox": "https://api.sandbox.push.apple.com"}


class ApnsSettings(ProviderSettings):
    team_id: AppleId
    key_id: AppleId
    # The .p8 signing key (PEM, ES256) from the Apple developer account.
    private_key: P256Key
    # The app's bundle id, sent as apns-topic.
    bundle_id: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9.-]+$")]
    environment: Literal["production", "sandbox"] = "production"
    # Overrides the environment's origin (tests, proxies).
    base_url: HttpUrl | None = None
    timeout_seconds: TimeoutSeconds = 10

    @property
    def origin(self) -> str:
        return self.base_url or APNS_ORIGINS[self.environment]


class ExpoSettings(ProviderSettings):
    # Needed only when the Expo project enforces "enhanced push security".
    access_token: Secret | None = None
    base_url: HttpUrl = "https://exp.host"
    timeout_seconds: TimeoutSeconds = 10


def _vapid_subject(value: str) -> str:
    if len(value) > MAX_URL_LENGTH or not (value.startswith("mailto:") or value.startswith("https://")):
        raise ValueError("must be a mailto: or https: URL")
    if any(char.isspace() for char in value):
        raise ValueError("must be a mailto: or https: URL")
    return value


class WebPushSettings(ProviderSettings):
    # The application server's VAPID key: PEM, or base64url (raw 32-byte scalar or DER), as py-vapid accepts.
    vapid_private_key: P256Key
    # Who push services can contact about this sender.
    vapid_subject: Annotated[str, Field(min_length=8), AfterValidator(_vapid_subject)]
    # How long the push service keeps an undelivered message (0 to 4 weeks).
    ttl_seconds: Annotated[int, Field(ge=0, le=2_419_200)] = 86_400
    timeout_seconds: TimeoutSeconds = 10
