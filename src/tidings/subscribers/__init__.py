"""Subscribers: the people notifications go to, with their contact data and channel endpoints."""
