"""The OpenAPI 3.1 document of the REST API (`GET /v1/openapi.json`), built from the route table and the Pydantic
models of the request bodies, so it cannot drift from what the endpoints accept."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pydantic.json_schema import models_json_schema

import tidings

if TYPE_CHECKING:
    from tidings.rest.routes import RestRoute

_PATH_PARAMETER = re.compile(r"{(\w+)}")
_ERROR = {
    "type": "object",
    "description": "Novu's error shape; a 422 adds `errors`: {field: {messages: [...], value}}",
    "required": ["statusCode", "timestamp", "path", "message"],
    "properties": {
        "statusCode": {"type": "integer"},
        "timestamp": {"type": "string", "format": "date-time"},
        "path": {"type": "string"},
        "message": {"type": "string"},
        "error": {"type": "string"},
        "errors": {"type": "object"},
    },
}


def _operation_id(method: str, path: str) -> str:
    """`DELETE /v2/topics/{topicKey}` → `delete_v2_topics_topicKey`."""
    return f"{method.lower()}_{re.sub(r'[{}]', '', path.strip('/')).replace('/', '_')}"


def openapi_document(routes: Sequence[RestRoute]) -> dict[str, Any]:
    models = {route.body for route in routes if route.body is not None}
    refs, definitions = models_json_schema(
        [(model, "validation") for model in sorted(models, key=lambda model: model.__name__)],
        by_alias=True,
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route.method, route.path),
            "parameters": [
                *(
                    {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
                    for name in _PATH_PARAMETER.findall(route.path)
                ),
                *(
                    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}}
                    for name in route.query
                ),
            ],
            "responses": {
                str(route.status): {"description": "Success; the answer is under `data` (a page has its own `data`)"},
                "default": {
                    "description": "An error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": refs[(route.body, "validation")]}},
            }
        paths.setdefault(route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tidings REST API (Novu-compatible)",
            "version": tidings.__version__,
            "description": "Novu's paths, bodies and envelopes; what differs is in docs/novu-compat.md.",
        },
        "components": {
            "schemas": {**definitions.get("$defs", {}), "Error": _ERROR},
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "Authorization"}},
        },
        "security": [{"ApiKey": []}],
        "paths": paths,
    }
