"""Rendering: the sandboxed Jinja2 environment that compiles and renders templates."""
