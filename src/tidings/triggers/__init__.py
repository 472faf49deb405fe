"""Triggers: validate an event, resolve its recipients, write notifications and their first jobs, idempotently."""
