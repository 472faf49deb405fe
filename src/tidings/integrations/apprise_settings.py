"""Settings of the Apprise provider (`apprise`): the long tail of chat, SMS and push services as Apprise URLs.

`urls` is one secret string holding 1 to 20 Apprise URLs (`json://host/path`, `tgram://token/chat`, …) separated
by whitespace, newlines or commas, the way Apprise itself reads a list; the credentials store keeps secrets as
strings, so a list given directly to the model is joined into that form. Each URL must load as exactly one Apprise
service; checking it makes no network call. Errors name the URL's position, never its text: most Apprise URLs
embed a token or password.

Refused even though Apprise knows them: services that act on the worker's own machine (desktop notifications,
the local syslog) and URLs that make Apprise read a local file (`keyfile=`, `subfile=`, `pgppub=`, `pgpprv=`),
which would let a tenant probe or use files of the server.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import parse_qsl

import apprise
from apprise.utils.parse import parse_urls
from pydantic import AfterValidator, BeforeValidator, Field, SecretStr

from tidings.integrations.provider_settings import MAX_URL_LENGTH, ProviderSettings, TimeoutSeconds

MAX_APPRISE_URLS = 20
# Desktop, local syslog and hardware plugins: on a server they act on the worker's machine, not on a service.
LOCAL_SCHEMES = frozenset({"syslog", "dbus", "kde", "qt", "glib", "gio", "gnome", "macosx", "windows", "blink1"})
# Query parameters naming a file on the local disk for Apprise to read (FCM and VAPID keys, PGP keys).
LOCAL_FILE_PARAMETERS = frozenset({"keyfile", "subfile", "pgppub", "pgpprv"})


def split_urls(value: str) -> list[str]:
    """The Apprise URLs in `value`, split as Apprise splits a list (whitespace or commas before each scheme)."""
    return [url for url in parse_urls(value) if url]  # type: ignore[no-untyped-call]


def scheme(url: str) -> str:
    """What of an Apprise URL may be logged or stored: its scheme (`json`, `tgram`), never the rest."""
    return url.split("://", 1)[0].lower() if "://" in url else "(invalid)"


def _check_url(url: str, position: int) -> None:
    # Messages name the position only: the URL holds the credential.
    where = f"Apprise URL {position}"
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"{where} must be at most {MAX_URL_LENGTH} characters")
    if scheme(url) in LOCAL_SCHEMES:
        raise ValueError(f"{where}: {scheme(url)}:// notifies the server itself and is not allowed")
    query = url.split("?", 1)[1] if "?" in url else ""
    if any(key.lower() in LOCAL_FILE_PARAMETERS for key, _ in parse_qsl(query, keep_blank_values=True)):
        raise ValueError(f"{where} names a local file (keyfile, subfile, pgppub, pgpprv), which is not allowed")
    loader = apprise.Apprise()
    if not loader.add(url) or len(loader) != 1:
        raise ValueError(f"{where} is not a valid Apprise URL (or its service is not available)")


def _apprise_urls(value: SecretStr) -> SecretStr:
    urls = split_urls(value.get_secret_value())
    if not 1 <= len(urls) <= MAX_APPRISE_URLS:
        raise ValueError(f"must hold 1 to {MAX_APPRISE_URLS} Apprise URLs")
    for position, url in enumerate(urls, start=1):
        _check_url(url, position)
    return value


def _joined(value: Any) -> Any:
    # A list given to the model directly becomes the one-string form the credentials store keeps.
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return "\n".join(value)
    return value


type AppriseUrls = Annotated[
    SecretStr,
    BeforeValidator(_joined),
    Field(max_length=MAX_APPRISE_URLS * (MAX_URL_LENGTH + 1)),
    AfterValidator(_apprise_urls),
]


class AppriseSettings(ProviderSettings):
    urls: AppriseUrls
    # The title when the message has none (no `title`, no `subject`); `$workflowId`, `$stepId`, `$transactionId`
    # are replaced from the message's metadata; it is not a Jinja template.
    title_template: Annotated[str, Field(min_length=1, max_length=250)] | None = None
    timeout_seconds: TimeoutSeconds = 10
