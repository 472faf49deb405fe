"""Integrations: per-environment provider configurations with credentials encrypted at rest."""
