"""The `Channel` GraphQL enum, shared by every area (members IN_APP, EMAIL, SMS, PUSH, CHAT)."""

import strawberry

from tidings.core.channels import Channel as DomainChannel

Channel = strawberry.enum(DomainChannel, name="Channel", description="A delivery channel.")
