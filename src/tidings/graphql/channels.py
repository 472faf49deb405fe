"""The `Channel` GraphQL enum, shared by every area (members IN_APP, EMAIL, SMS, PUSH, CHAT).

It registers the domain enum itself with Strawberry, so resolvers take and return `tidings.core.channels.Channel`
and mypy sees one type.
"""

import strawberry

from tidings.core.channels import Channel

strawberry.enum(Channel, name="Channel", description="A delivery channel.")

__all__ = ["Channel"]
