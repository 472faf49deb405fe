"""Channel providers: each turns an `OutboundMessage` into one call to its service (see docs/providers.md)."""

from tidings.tasks.providers.registry import PROVIDERS_BY_ID, ProviderSender

__all__ = ["PROVIDERS_BY_ID", "ProviderSender"]
