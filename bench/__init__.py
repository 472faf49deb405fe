"""Benchmarks: run each with `uv run python -m bench.<name>` (docs/benchmarks.md). Never collected by pytest."""
