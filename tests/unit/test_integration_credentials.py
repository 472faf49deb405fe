"""Credential encryption helpers and integration commands: binding to the integration, tampering, slugs, nulls."""

from __future__ import annotations

from typing import Any

import pytest
from bson import ObjectId

from tidings.core.crypto import Cipher, DecryptionError
from tidings.core.errors import ValidationError
from tidings.core.validation import validated
from tidings.integrations.commands import CreateIntegration, UpdateIntegration
from tidings.integrations.credentials import decrypt, encrypt

CIPHER = Cipher("unit-test-secret-key-0123456789abcdef")


def test_round_trip_and_no_plaintext_in_the_ciphertext() -> None:
    owner = ObjectId()
    sealed = encrypt(CIPHER, "hunter2-password", owner)
    assert "hunter2" not in sealed
    assert sealed.startswith("v1.")
    assert decrypt(CIPHER, sealed, owner) == "hunter2-password"
    assert encrypt(CIPHER, "hunter2-password", owner) != sealed  # fresh nonce each time


def test_ciphertext_moved_to_another_integration_does_not_decrypt() -> None:
    sealed = encrypt(CIPHER, "secret", ObjectId())
    with pytest.raises(DecryptionError):
        decrypt(CIPHER, sealed, ObjectId())


def test_other_secret_key_does_not_decrypt() -> None:
    owner = ObjectId()
    sealed = encrypt(CIPHER, "secret", owner)
    with pytest.raises(DecryptionError):
        decrypt(Cipher("another-secret-key-0123456789abcdefgh"), sealed, owner)


@pytest.mark.parametrize("mangle", ["flip", "truncate", "garbage", "version"])
def test_tampered_ciphertext_does_not_decrypt(mangle: str) -> None:
    owner = ObjectId()
    sealed = encrypt(CIPHER, "secret", owner)
    tampered = {
        "flip": sealed[:-6] + ("A" if sealed[-6] != "A" else "B") + sealed[-5:],
        "truncate": sealed[:10],
        "garbage": "v1.%%%not-base64%%%",
        "version": "v9." + sealed.removeprefix("v1."),
    }[mangle]
    with pytest.raises(DecryptionError):
        decrypt(CIPHER, tampered, owner)


@pytest.mark.parametrize("identifier", ["smtp", "smtp-2", "a", "x" * 64, "mail-eu-1"])
def test_valid_identifiers(identifier: str) -> None:
    command = validated(CreateIntegration, {"provider_id": "smtp", "identifier": identifier})
    assert command.identifier == identifier


@pytest.mark.parametrize("identifier", ["", "Smtp", "smtp_2", "-smtp", "smtp-", "smtp--2", "x" * 65, "sm tp"])
def test_invalid_identifiers_are_refused(identifier: str) -> None:
    with pytest.raises(ValidationError) as error:
        validated(CreateIntegration, {"provider_id": "smtp", "identifier": identifier})
    assert error.value.field == "input.identifier"


@pytest.mark.parametrize("name", ["", "   ", "n" * 65])
def test_invalid_names_are_refused(name: str) -> None:
    with pytest.raises(ValidationError) as error:
        validated(CreateIntegration, {"provider_id": "smtp", "name": name})
    assert error.value.field == "input.name"


def test_update_tells_omitted_from_given() -> None:
    command = validated(UpdateIntegration, {"name": "  Mail  ", "credentials": {"password": None}})
    assert command.model_fields_set == {"name", "credentials"}
    assert command.name == "Mail"


@pytest.mark.parametrize("field", ["name", "config", "credentials", "active", "primary"])
def test_update_refuses_null_for_a_field(field: str) -> None:
    data: dict[str, Any] = {field: None}
    with pytest.raises(ValidationError) as error:
        validated(UpdateIntegration, data)
    assert error.value.field == f"input.{field}"


def test_config_must_be_an_object() -> None:
    with pytest.raises(ValidationError) as error:
        validated(CreateIntegration, {"provider_id": "smtp", "config": ["host"]})
    assert error.value.field == "input.config"
