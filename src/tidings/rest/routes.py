"""Every REST endpoint in one table: the Starlette routes and the OpenAPI document are both built from it."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tidings.environments.ratelimits import RateClass
from tidings.rest import credentials, events, preferences, subscribers, topics
from tidings.rest.bodies import ChannelSettings, SubscriberPayload, SubscriberProfile
from tidings.rest.http import Handler, RestOptions, endpoint
from tidings.rest.openapi import openapi_document

OPENAPI_PATH = "/v1/openapi.json"


@dataclass(frozen=True, slots=True)
class RestRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    status: int = 200
    body: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    # Spent before the handler runs; None when the handler spends it (triggers cost one per event).
    rate: RateClass | None = RateClass.CONFIG


ROUTES = (
    RestRoute("POST", "/v1/events/trigger", events.trigger, "Trigger a workflow", 201, events.EventBody, rate=None),
    RestRoute(
        "POST",
        "/v1/events/trigger/bulk",
        events.trigger_bulk,
        "Trigger up to 100 events",
        201,
        events.BulkBody,
        rate=None,
    ),
    RestRoute(
        "POST",
        "/v1/events/trigger/broadcast",
        events.broadcast,
        "Trigger a workflow for every subscriber",
        201,
        events.BroadcastBody,
        rate=None,
    ),
    RestRoute(
        "DELETE",
        "/v1/events/trigger/{transactionId}",
        events.cancel,
        "Cancel a trigger's pending jobs",
        rate=RateClass.TRIGGER,
    ),
    RestRoute(
        "POST",
        "/v2/subscribers",
        subscribers.create,
        "Create or update a subscriber",
        201,
        SubscriberPayload,
        query=("failIfExists",),
    ),
    RestRoute(
        "GET",
        "/v2/subscribers",
        subscribers.search,
        "List subscribers",
        query=("limit", "after", "subscriberId", "email"),
    ),
    RestRoute("GET", "/v2/subscribers/{subscriberId}", subscribers.retrieve, "Get a subscriber"),
    RestRoute(
        "PATCH", "/v2/subscribers/{subscriberId}", subscribers.patch, "Update a subscriber", body=SubscriberProfile
    ),
    RestRoute("DELETE", "/v2/subscribers/{subscriberId}", subscribers.delete, "Delete a subscriber"),
    RestRoute(
        "GET", "/v2/subscribers/{subscriberId}/preferences", preferences.preferences, "A subscriber's preferences"
    ),
    RestRoute(
        "PATCH",
        "/v2/subscribers/{subscriberId}/preferences",
        preferences.update,
        "Set a subscriber's global or per-workflow channel preferences",
        body=preferences.PreferencesBody,
    ),
    RestRoute(
        "PATCH",
        "/v2/subscribers/{subscriberId}/preferences/bulk",
        preferences.update_bulk,
        "Set several workflows' channel preferences of a subscriber",
        body=preferences.BulkPreferencesBody,
    ),
    RestRoute(
        "GET",
        "/v1/subscribers",
        subscribers.list_v1,
        "List subscribers by numbered pages",
        query=("page", "limit"),
    ),
    RestRoute(
        "POST",
        "/v1/subscribers",
        subscribers.create,
        "Create or update a subscriber",
        201,
        SubscriberPayload,
        query=("failIfExists",),
    ),
    RestRoute(
        "POST",
        "/v1/subscribers/bulk",
        subscribers.create_bulk,
        "Create or update up to 500 subscribers",
        201,
        subscribers.BulkBody,
    ),
    RestRoute("GET", "/v1/subscribers/{subscriberId}", subscribers.retrieve, "Get a subscriber"),
    RestRoute(
        "PUT", "/v1/subscribers/{subscriberId}", subscribers.patch, "Update a subscriber", body=SubscriberProfile
    ),
    RestRoute(
        "PATCH", "/v1/subscribers/{subscriberId}", subscribers.patch, "Update a subscriber", body=SubscriberProfile
    ),
    RestRoute("DELETE", "/v1/subscribers/{subscriberId}", subscribers.delete, "Delete a subscriber"),
    RestRoute(
        "PATCH",
        "/v1/subscribers/{subscriberId}/online-status",
        subscribers.online_status,
        "Mark a subscriber online or offline",
        body=subscribers.OnlineBody,
    ),
    RestRoute(
        "GET",
        "/v1/subscribers/{subscriberId}/preferences",
        preferences.preferences_v1,
        "A subscriber's preference for every workflow",
    ),
    RestRoute(
        "GET",
        "/v1/subscribers/{subscriberId}/preferences/{parameter}",
        preferences.preferences_by_level_v1,
        "A subscriber's preferences at one level: global or template",
    ),
    RestRoute(
        "PATCH",
        "/v1/subscribers/{subscriberId}/preferences",
        preferences.update_global_v1,
        "Set a subscriber's global preferences",
        body=preferences.GlobalBodyV1,
    ),
    RestRoute(
        "PATCH",
        "/v1/subscribers/{subscriberId}/preferences/{parameter}",
        preferences.update_workflow_v1,
        "Set a subscriber's preference for one workflow (by its identifier)",
        body=preferences.WorkflowBodyV1,
    ),
    RestRoute(
        "PUT",
        "/v1/subscribers/{subscriberId}/credentials",
        credentials.update,
        "Set a subscriber's push or chat credentials for a provider",
        body=ChannelSettings,
    ),
    RestRoute(
        "PATCH",
        "/v1/subscribers/{subscriberId}/credentials",
        credentials.append,
        "Add device tokens to a subscriber's push credentials",
        body=ChannelSettings,
    ),
    RestRoute(
        "DELETE",
        "/v1/subscribers/{subscriberId}/credentials/{providerId}",
        credentials.delete,
        "Remove a subscriber's credentials for a provider",
        204,
    ),
    RestRoute(
        "POST",
        "/v2/topics",
        topics.create,
        "Create a topic or rename it",
        201,
        topics.TopicBody,
        query=("failIfExists",),
    ),
    RestRoute("GET", "/v2/topics", topics.search, "List topics", query=("limit", "after")),
    RestRoute("GET", "/v2/topics/{topicKey}", topics.retrieve, "Get a topic"),
    RestRoute("PATCH", "/v2/topics/{topicKey}", topics.rename, "Rename a topic", body=topics.RenameBody),
    RestRoute("DELETE", "/v2/topics/{topicKey}", topics.delete, "Delete a topic and its subscriptions"),
    RestRoute(
        "POST",
        "/v2/topics/{topicKey}/subscriptions",
        topics.subscribe,
        "Add subscribers to a topic",
        201,
        topics.SubscriptionsBody,
    ),
    RestRoute(
        "DELETE",
        "/v2/topics/{topicKey}/subscriptions",
        topics.unsubscribe,
        "Remove subscribers from a topic",
        body=topics.SubscriptionsBody,
    ),
    RestRoute(
        "GET",
        "/v2/topics/{topicKey}/subscriptions",
        topics.subscriptions,
        "List a topic's subscribers",
        query=("limit", "after"),
    ),
    RestRoute(
        "GET",
        "/v2/topics/{topicKey}/subscriptions/{identifier}",
        topics.subscription,
        "One subscription of a topic",
    ),
    RestRoute(
        "GET",
        "/v2/subscribers/{subscriberId}/subscriptions",
        topics.subscriber_subscriptions,
        "The topics a subscriber is in",
        query=("limit", "after", "key"),
    ),
    RestRoute("POST", "/v1/topics", topics.create_v1, "Create a topic", 201, topics.TopicBody),
    RestRoute("GET", "/v1/topics/{topicKey}", topics.retrieve_v1, "Get a topic and its subscribers"),
    RestRoute(
        "POST",
        "/v1/topics/{topicKey}/subscribers",
        topics.add_v1,
        "Add subscribers to a topic",
        body=topics.V1SubscribersBody,
    ),
    RestRoute(
        "POST",
        "/v1/topics/{topicKey}/subscribers/removal",
        topics.remove_v1,
        "Remove subscribers from a topic",
        204,
        topics.V1SubscribersBody,
    ),
    RestRoute(
        "GET", "/v1/topics/{topicKey}/subscribers/{subscriberId}", topics.member_v1, "Check a topic's subscriber"
    ),
)


def rest_routes(options: RestOptions) -> list[Route]:
    document = openapi_document(ROUTES)

    async def openapi(_: Request) -> Response:
        return JSONResponse(document)

    # Starlette tries every route of a path until one takes the method, so one path may have several routes.
    return [
        Route(OPENAPI_PATH, openapi, methods=["GET"]),
        *(Route(one.path, endpoint(one.handler, options, rate=one.rate), methods=[one.method]) for one in ROUTES),
    ]
