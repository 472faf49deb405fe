"""Tidings: open-source notification infrastructure."""

__version__ = "0.1.0"
