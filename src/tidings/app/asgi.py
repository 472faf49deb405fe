"""The ASGI application, built by `create_app(settings)` with a typed lifespan that owns the resources."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TypedDict

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route, WebSocketRoute

from tidings.app.body_limit import BodyLimitMiddleware
from tidings.app.cors import cors_middleware
from tidings.app.draining import Draining
from tidings.app.health import healthz, readyz
from tidings.app.idempotency import IdempotencyMiddleware
from tidings.app.metrics import HttpMetricsMiddleware, metrics, sample_queue_forever
from tidings.app.provider_webhooks import PATH as STATUS_CALLBACK_PATH
from tidings.app.provider_webhooks import status_callback_endpoint
from tidings.app.resources import Resources, open_resources
from tidings.app.settings import Settings
from tidings.app.widget import widget_routes
from tidings.core.crypto import Cipher
from tidings.environments.ratelimits import RateLimiter
from tidings.graphql.context import InboxOptions
from tidings.graphql.endpoint import PROTOCOLS, GraphQLApp
from tidings.graphql.schema import build_schema
from tidings.inbox.hub import InboxHub
from tidings.inbox.sessions import session_signer
from tidings.rest.http import RestOptions
from tidings.rest.routes import rest_routes
from tidings.tasks.broker import CONSUMER_GROUP
from tidings.tasks.providers.registry import ProviderSender
from tidings.tasks.queue import BrokerTaskQueue


class State(TypedDict):
    resources: Resources
    draining: Draining


def create_app(settings: Settings, draining: Draining | None = None) -> Starlette:
    """`draining` is how the server tells the app it is stopping (see app/api_server.py)."""
    draining = draining or Draining()
    schema = build_schema(
        max_depth=settings.graphql_max_depth,
        max_tokens=settings.graphql_max_tokens,
        max_aliases=settings.graphql_max_aliases,
        introspection=settings.graphql_introspection,
    )
    secret_key = settings.require_secret_key()
    inbox = InboxOptions(
        signer=session_signer(secret_key),
        session_ttl_seconds=settings.inbox_session_ttl_seconds,
        replay_page=settings.inbox_replay_page,
        client_max_lag=settings.inbox_client_max_lag,
    )
    # `testIntegration` sends from the API process through the same providers as the workers.
    sender = ProviderSender(Cipher(secret_key), allow_private_networks=settings.allow_private_network_urls)
    graphql = GraphQLApp(
        schema,
        limits=settings.limits(),
        cipher=Cipher(secret_key),
        inbox=inbox,
        sender=sender,
        allow_private_networks=settings.allow_private_network_urls,
        graphql_ide="graphiql" if settings.graphql_ide else None,
        allow_queries_via_get=False,
        subscription_protocols=PROTOCOLS,
        max_subscriptions_per_connection=settings.inbox_max_subscriptions_per_connection,
        # Strawberry refuses websocket handshakes from other origins unless listed (the widget on your site).
        allowed_origins=settings.cors_origins,
    )
    draining.on_close(graphql.close_websockets_for_restart)
    rest = RestOptions(limits=settings.limits())

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[State]:
        async with open_resources(settings) as resources:
            graphql.queue = BrokerTaskQueue(resources.broker)
            hub = InboxHub(resources.redis, presence_ttl=settings.inbox_presence_ttl_seconds)
            await hub.start()
            graphql.hub = hub
            graphql.limiter = RateLimiter(resources.redis, settings.rate_limits())
            rest.queue, rest.limiter, rest.redis = graphql.queue, graphql.limiter, resources.redis
            sampler = asyncio.create_task(sample_queue_forever(resources.redis, settings.queue_name, CONSUMER_GROUP))
            try:
                yield {"resources": resources, "draining": draining}
            finally:
                await hub.stop()
                await sender.aclose()
                sampler.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sampler

    routes: list[BaseRoute] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/graphql", graphql, methods=["GET", "POST"]),
        WebSocketRoute("/graphql", graphql),
        *widget_routes(demo_page_enabled=settings.demo_page),
        *rest_routes(rest),
        Route(
            STATUS_CALLBACK_PATH,
            status_callback_endpoint(sender, settings.public_url, lambda: graphql.queue),
            methods=["POST"],
        ),
    ]
    known_paths = frozenset(route.path for route in routes if isinstance(route, Route | WebSocketRoute))
    return Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            Middleware(HttpMetricsMiddleware, known_paths=known_paths),
            *([cors_middleware(settings.cors_origins)] if settings.cors_origins else []),
            Middleware(BodyLimitMiddleware, max_bytes=settings.http_max_body_bytes),
            # Inside the body limit: it reads the (bounded) body to fingerprint it.
            Middleware(
                IdempotencyMiddleware,
                ttl_seconds=settings.idempotency_ttl_seconds,
                lock_seconds=settings.idempotency_lock_seconds,
                max_body_bytes=settings.idempotency_max_body_bytes,
                max_tokens=settings.graphql_max_tokens,
            ),
        ],
    )
