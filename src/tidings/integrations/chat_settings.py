"""Settings of the chat providers that talk to a service's own API: Discord, Microsoft Teams, Telegram, Slack Web API.

Which settings are secret is listed in each provider's `ProviderSpec` (`tidings.integrations.providers.PROVIDERS`):
the Discord and Teams webhook URLs (they embed the token that lets anyone post) and the bot tokens. The API-based
providers take a `base_url`, the service's real origin by default, so a test or a proxy can stand in for it.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

from tidings.integrations.provider_settings import (
    HttpsSecretUrl,
    HttpUrl,
    ProviderSettings,
    Secret,
    TimeoutSeconds,
)

# `<bot id>:<secret>` as BotFather issues it; anything else would also change the request path it is put in.
_TELEGRAM_TOKEN = re.compile(r"^[0-9]{1,20}:[A-Za-z0-9_-]{20,100}$")
# A numeric chat id (negative for groups and channels) or a public channel's `@username`.
_TELEGRAM_CHAT = r"^(-?[0-9]{1,20}|@[A-Za-z0-9_]{4,64})$"
# Slack channel, group or DM ids (C…, G…, D…) or a user id; a `#name` also works with chat.postMessage.
_SLACK_CHANNEL = r"^(#?[a-z0-9_.-]{1,80}|[A-Z0-9]{5,30})$"
_HEADER_SAFE = re.compile(r"^[\x21-\x7e]+$")


def _telegram_token(value: SecretStr) -> SecretStr:
    # The message never echoes the value: it is the credential.
    if not _TELEGRAM_TOKEN.match(value.get_secret_value()):
        raise ValueError("must be a Telegram bot token, <digits>:<token>")
    return value


def _bearer_token(value: SecretStr) -> SecretStr:
    if not _HEADER_SAFE.match(value.get_secret_value()):
        raise ValueError("must be printable ASCII without spaces")
    return value


def _no_trailing_slash(value: str) -> str:
    return value.rstrip("/")


type ApiOrigin = Annotated[HttpUrl, AfterValidator(_no_trailing_slash)]


class DiscordSettings(ProviderSettings):
    # The default webhook, used for subscribers without their own; `https://discord.com/api/webhooks/<id>/<token>`.
    webhook_url: HttpsSecretUrl | None = None
    timeout_seconds: TimeoutSeconds = 10


class TeamsSettings(ProviderSettings):
    # The default incoming-webhook (or Workflows) URL; its path or `sig` query parameter is the credential.
    webhook_url: HttpsSecretUrl | None = None
    timeout_seconds: TimeoutSeconds = 10


class TelegramSettings(ProviderSettings):
    bot_token: Annotated[Secret, AfterValidator(_telegram_token)]
    default_chat_id: Annotated[str, Field(pattern=_TELEGRAM_CHAT)] | None = None
    base_url: ApiOrigin = "https://api.telegram.org"
    timeout_seconds: TimeoutSeconds = 10


class SlackApiSettings(ProviderSettings):
    # A bot token (`xoxb-…`) with the `chat:write` scope.
    bot_token: Annotated[Secret, AfterValidator(_bearer_token)]
    default_channel: Annotated[str, Field(pattern=_SLACK_CHANNEL)] | None = None
    base_url: ApiOrigin = "https://slack.com"
    timeout_seconds: TimeoutSeconds = 10
