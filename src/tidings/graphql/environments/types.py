"""GraphQL types of the environments area."""

from __future__ import annotations

from datetime import datetime

import strawberry


@strawberry.type(description="An isolated space (development, production…) with its own data and API keys.")
class Environment:
    id: strawberry.ID
    name: str
    application_identifier: str = strawberry.field(
        description="Public identifier the inbox widget uses to address this environment."
    )
    api_keys: list[ApiKeyInfo] = strawberry.field(description="The active secret API keys (never the keys themselves).")
    inbox_hmac_required: bool = strawberry.field(
        description="Whether `inboxSession` needs a `subscriberHash` (see setInboxHmacRequired)."
    )
    retention: Retention = strawberry.field(description="How long records are kept (see setRetention).")
    created_at: datetime


@strawberry.type(
    description="Days records are kept: the environment's choices, else the server's defaults. A record's expiry is "
    "set when it is written (a job and a notification when they finish), so a change applies to records written "
    "afterwards."
)
class Retention:
    messages_days: int = strawberry.field(description="In-app messages and their inbox events.")
    jobs_days: int = strawberry.field(description="Triggers, notifications, jobs and webhook deliveries.")
    execution_details_days: int = strawberry.field(
        description="The execution details (provider answers, reasons) on finished jobs; at most `jobsDays`."
    )


@strawberry.type(description="A secret API key as the API shows it: its last characters and lifetime.")
class ApiKeyInfo:
    hint: str = strawberry.field(description="Last four characters of the key.")
    created_at: datetime
    expires_at: datetime | None = strawberry.field(description="Set once the key was rotated out.")


@strawberry.type(description="A new secret API key, shown only in this response.")
class IssuedApiKey:
    api_key: str
    environment: Environment
