"""Composition root: settings, resources, the ASGI app, the worker, the scheduler and the command line."""
