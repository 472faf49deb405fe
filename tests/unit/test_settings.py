"""Settings: a bad or missing value stops start-up with one line that names the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tidings.app.settings import SettingsError, load_settings


def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in __import__("os").environ if key.startswith("TIDINGS_")]:
        monkeypatch.delenv(key)
    monkeypatch.chdir(__import__("tempfile").gettempdir())  # no stray .env file


def test_defaults_need_no_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    settings = load_settings()
    assert settings.port == 8000
    assert settings.mongodb_url is None
    assert settings.graphql_ide is False


def test_reads_prefixed_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv("TIDINGS_PORT", "9123")
    monkeypatch.setenv("TIDINGS_REDIS_URL", "redis://cache:6379/2")
    settings = load_settings()
    assert settings.port == 9123
    assert settings.redis_url == "redis://cache:6379/2"


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("TIDINGS_PORT", "eighty", "TIDINGS_PORT: Input should be a valid integer"),
        ("TIDINGS_PORT", "70000", "TIDINGS_PORT: Input should be less than or equal to 65535"),
        ("TIDINGS_MONGODB_URL", "postgres://x", "TIDINGS_MONGODB_URL: Value error, must start with mongodb://"),
        ("TIDINGS_REDIS_URL", "http://x", "TIDINGS_REDIS_URL: Value error, must start with redis://"),
        ("TIDINGS_LOG_LEVEL", "LOUD", "TIDINGS_LOG_LEVEL: Input should be 'DEBUG'"),
        ("TIDINGS_QUEUE_MAXLEN", "10", "TIDINGS_QUEUE_MAXLEN: Input should be greater than or equal to 1000"),
    ],
)
def test_invalid_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, expected: str
) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(expected)
    assert "\n" not in message


def test_secret_key_error_never_echoes_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv("TIDINGS_SECRET_KEY", "hunter2")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith("TIDINGS_SECRET_KEY: Value error, must be at least 32 characters")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TIDINGS_MONGODB_URL", "mongo://admin:S3cretPW@db.internal:27017"),
        ("TIDINGS_REDIS_URL", "http://:S3cretPW@cache.internal:6379"),
    ],
)
def test_url_errors_never_echo_credentials(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    _clean_env(monkeypatch)
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{variable}: Value error, must start with")
    assert "S3cretPW" not in str(caught.value)


def test_missing_url_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    _clean_env(monkeypatch)
    with pytest.raises(SettingsError, match=r"^TIDINGS_MONGODB_URL is required"):
        load_settings().require_mongodb_url()


@pytest.mark.parametrize(
    ("role", "env", "expected"),
    [
        (
            "env",
            {
                "TIDINGS_MONGODB_URL": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300",
                "TIDINGS_MONGODB_TIMEOUT_MS": "300",
            },
            "tidings: cannot reach a dependency (ServerSelectionTimeoutError): 127.0.0.1:9",
        ),
        (
            "worker",
            {
                "TIDINGS_MONGODB_URL": "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300",
                "TIDINGS_MONGODB_TIMEOUT_MS": "300",
                "TIDINGS_REDIS_URL": "redis://127.0.0.1:9",
                "TIDINGS_SECRET_KEY": "s" * 32,
                "TIDINGS_STARTUP_TIMEOUT_SECONDS": "0",
            },
            "tidings: cannot reach a dependency (ServerSelectionTimeoutError): 127.0.0.1:9",
        ),
        ("api", {"TIDINGS_PORT": "eighty"}, "tidings: TIDINGS_PORT: Input should be a valid integer"),
        ("worker", {}, "tidings: TIDINGS_MONGODB_URL is required"),
        (
            "api",
            {"TIDINGS_MONGODB_URL": "mongodb://127.0.0.1:1", "TIDINGS_REDIS_URL": "redis://127.0.0.1:1"},
            "tidings: TIDINGS_SECRET_KEY is required",
        ),
    ],
)
def test_role_fails_at_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch, role: str, env: dict[str, str], expected: str
) -> None:
    _clean_env(monkeypatch)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    argv = [sys.executable, "-m", "tidings", role, *(["create", "prod"] if role == "env" else [])]
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == (1 if "cannot reach" in expected else 2)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(expected)
