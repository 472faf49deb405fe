"""GraphQL inputs of the preferences area."""

from __future__ import annotations

import strawberry

from tidings.graphql.channels import Channel


@strawberry.input(description="Turn a channel on or off; `enabled: null` forgets the choice.")
class ChannelChoiceInput:
    channel: Channel
    enabled: bool | None
