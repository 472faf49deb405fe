"""Workflows: the steps a trigger runs, their templates, conditions and default preferences."""
