"""Environments and their secret API keys; every other record is scoped to one environment."""
