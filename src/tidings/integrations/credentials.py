"""Provider settings in their three shapes, and the moves between them.

- As the client sends them: two JSON objects in camelCase, `config` (non-secret) and `credentials` (secret).
- As stored: `config` snake_case and plain, `credentials` snake_case and encrypted, bound to the integration's id.
- As the engine uses them: the provider's validated settings model (`decrypted_settings`).

No message or log line built here contains a secret value, only setting names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import SecretStr

from tidings.core.crypto import Cipher, DecryptionError
from tidings.core.errors import ValidationError
from tidings.core.validation import camel, field_path
from tidings.integrations.documents import Integration
from tidings.integrations.providers import PROVIDERS, ProviderSettings, ProviderSpec

_MAX_KEY_SHOWN = 64


def provider_spec(provider_id: str) -> ProviderSpec:
    spec = PROVIDERS.get(provider_id)
    if spec is None:
        raise ValidationError(f"unknown provider; expected one of: {', '.join(PROVIDERS)}", field="input.providerId")
    return spec


def _shown(key: str) -> str:
    return repr(key) if len(key) <= _MAX_KEY_SHOWN else "(a long key)"


def _stored_name(spec: ProviderSpec, key: str, group: str) -> str:
    name = spec.field_for(key)
    if name is None:
        raise ValidationError(f"unknown setting {_shown(key)} for provider {spec.id}", field=f"input.{group}.{key}")
    return name


def client_config(spec: ProviderSpec, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The client's `config` object with stored names; a secret sent here is refused (it would be kept in clear)."""
    config: dict[str, Any] = {}
    for key, value in raw.items():
        name = _stored_name(spec, key, "config")
        if name in spec.secret_fields:
            raise ValidationError(f"{key} is a secret: send it in credentials", field=f"input.config.{key}")
        config[name] = value
    return config


def client_credentials(spec: ProviderSpec, raw: Mapping[str, Any], *, allow_null: bool) -> dict[str, str | None]:
    """The client's `credentials` object with stored names; None (only in updates) means "remove this secret"."""
    secrets: dict[str, str | None] = {}
    for key, value in raw.items():
        name = _stored_name(spec, key, "credentials")
        if name not in spec.secret_fields:
            raise ValidationError(f"{key} is not a secret: send it in config", field=f"input.credentials.{key}")
        if value is None and allow_null:
            secrets[name] = None
        elif isinstance(value, str):
            secrets[name] = value
        else:
            raise ValidationError("must be a string", field=f"input.credentials.{key}")
    return secrets


def validate_settings(spec: ProviderSpec, config: Mapping[str, Any], secrets: Mapping[str, str]) -> ProviderSettings:
    """Both halves through the provider's model; an error names the half and the setting the client sent."""
    try:
        return spec.settings_model.model_validate({**config, **secrets})
    except pydantic.ValidationError as exc:
        # `errors()` entries carry the input (possibly a secret); only the message and location leave here.
        first = exc.errors()[0]
        location = tuple(first["loc"])
        group = "credentials" if location and location[0] in spec.secret_fields else "config"
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ValidationError(message, field=field_path(location, f"input.{group}")) from None


def split_settings(spec: ProviderSpec, settings: ProviderSettings) -> tuple[dict[str, Any], dict[str, str]]:
    """(non-secret config to store as is, plaintext secrets to encrypt); unset optional values are left out."""
    config = settings.model_dump(mode="json", exclude=set(spec.secret_fields), exclude_none=True)
    secrets: dict[str, str] = {}
    for name in sorted(spec.secret_fields):
        value = getattr(settings, name)
        if isinstance(value, SecretStr):
            secrets[name] = value.get_secret_value()
    return config, secrets


def encrypt(cipher: Cipher, plaintext: str, integration_id: object) -> str:
    return cipher.encrypt(plaintext, owner=str(integration_id))


def decrypt(cipher: Cipher, ciphertext: str, integration_id: object) -> str:
    """Raises `DecryptionError` for a tampered value, one copied from another integration, or another secret key."""
    try:
        return cipher.decrypt(ciphertext, owner=str(integration_id))
    except ValueError:
        # Not even well-formed base64 (binascii.Error is a ValueError): tampered just the same.
        raise DecryptionError("ciphertext is malformed") from None


def decrypted_settings(integration: Integration, cipher: Cipher) -> ProviderSettings:
    """The provider's settings model with the credentials decrypted: what a delivery needs to call the provider."""
    spec = PROVIDERS[integration.provider_id]
    secrets = {name: decrypt(cipher, value, integration.id) for name, value in integration.credentials.items()}
    return spec.settings_model.model_validate({**integration.config, **secrets})


def public_config(integration: Integration) -> dict[str, Any]:
    """The stored non-secret settings with the API's camelCase names."""
    return {camel(name): value for name, value in integration.config.items()}


def credential_keys(integration: Integration) -> list[str]:
    """Which secrets are set, with the API's camelCase names (never their values)."""
    return sorted(camel(name) for name in integration.credentials)
