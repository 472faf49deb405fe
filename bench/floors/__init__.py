"""Baselines ("floors") measured beside Tidings in the same run: the same work done by plain library calls."""
