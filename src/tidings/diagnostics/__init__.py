"""Diagnostics: probes that prove the worker pipeline runs end to end."""
