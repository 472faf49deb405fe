"""CORS for the API, so the inbox widget embedded on another site may call /graphql from the browser."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware


def cors_middleware(origins: list[str]) -> Middleware:
    """Allow exactly `origins` (`["*"]` for any). No credentials: the widget sends a bearer token, never cookies,
    so no site can ride on a user's session."""
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type", "Idempotency-Key"],
        # Not CORS-safelisted, so a browser script could not read them otherwise: when to retry after a 429, and
        # whether an answer was a replay.
        expose_headers=["Retry-After", "Idempotency-Replayed"],
        allow_credentials=False,
        max_age=600,
    )
