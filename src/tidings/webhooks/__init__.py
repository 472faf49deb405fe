"""Outbound webhooks: endpoints an environment registers, and signed deliveries of Tidings' events to them."""
