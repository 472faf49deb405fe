"""Shared kernel: errors, ids and time. Imports nothing else of Tidings."""
