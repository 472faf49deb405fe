"""Importing this module registers every task with Taskiq's shared registry; workers import it at start."""

from tidings.tasks import diagnostics, engine, webhooks

TASK_MODULES = (diagnostics, engine, webhooks)
