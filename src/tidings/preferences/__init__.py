"""Preferences: workflow defaults and subscriber choices per channel, merged with the reason for each value."""
