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
    api_key_hints: list[str] = strawberry.field(description="Last four characters of each active secret API key.")
    created_at: datetime
