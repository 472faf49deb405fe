"""Notifications, their jobs and execution details: the record of every trigger, and the activity API over it."""
