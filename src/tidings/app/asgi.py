"""The ASGI application, built by `create_app(settings)` with a typed lifespan that owns the resources."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from tidings.app.health import healthz, readyz
from tidings.app.metrics import HttpMetricsMiddleware, metrics
from tidings.app.resources import Resources, open_resources
from tidings.app.settings import Settings
from tidings.core.crypto import Cipher
from tidings.graphql.endpoint import PROTOCOLS, GraphQLApp
from tidings.graphql.schema import build_schema


class State(TypedDict):
    resources: Resources


def create_app(settings: Settings) -> Starlette:
    schema = build_schema(
        max_depth=settings.graphql_max_depth,
        max_tokens=settings.graphql_max_tokens,
        max_aliases=settings.graphql_max_aliases,
    )
    graphql = GraphQLApp(
        schema,
        limits=settings.limits(),
        cipher=Cipher(settings.require_secret_key()),
        graphql_ide="graphiql" if settings.graphql_ide else None,
        allow_queries_via_get=False,
        subscription_protocols=PROTOCOLS,
    )

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[State]:
        async with open_resources(settings) as resources:
            yield {"resources": resources}

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
    ]
    known_paths = frozenset(route.path for route in routes if isinstance(route, Route | WebSocketRoute))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[Middleware(HttpMetricsMiddleware, known_paths=known_paths)],
    )
