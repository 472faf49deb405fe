"""Maps Tidings' exception tree to GraphQL errors with a stable `code` extension; masks everything unexpected.

Nothing here puts a value the client sent into a message or a log line: graphql-core's variable-coercion messages
quote the whole variable (`found: {'credentials': {'password': …}}`), so they are rebuilt from the variable's name,
the path inside it and the expected type. Only INTERNAL errors are logged, with their type and stack frames but not
their message, which may quote stored or submitted data.
"""

from __future__ import annotations

import logging
import re
import traceback

from graphql import GraphQLInputObjectType, GraphQLSchema
from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from tidings.core.errors import RateLimitedError, TidingsError

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Unexpected error."
MAX_MESSAGE_CHARS = 500

_VARIABLE = re.compile(r"^Variable '\$(?P<name>\w+)' has invalid (?:default )?value(?: at (?P<path>[^:]*))?: ")
_PATH_PART = re.compile(r"\.(\w+)|\[(\d+)\]")
_MAX_NAME_SHOWN = 64
# graphql-core's inner messages, each followed (after "found:") by the offending value, which is left out.
_PROBLEMS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(r"^Expected a value of non-null type '(?P<type>[^']+)' to be provided"),
        "a value of type '{type}' is required",
    ),
    (
        re.compile(r"^Expected value of non-null type '(?P<type>[^']+)' not to be None"),
        "a value of type '{type}' may not be null",
    ),
    (re.compile(r"^Expected value of type '(?P<type>[^']+)' to be an object"), "expected an object of type '{type}'"),
    (
        re.compile(r"^Expected value of type '(?P<type>[^']+)' not to include unknown field '(?P<field>\w+)'"),
        "type '{type}' has no field '{field}'",
    ),
    (re.compile(r"^Value .* does not exist in '(?P<type>\w+)' enum"), "expected a value of the enum '{type}'"),
    (re.compile(r"^(?P<type>\w+) cannot represent"), "expected a value of type '{type}'"),
    (re.compile(r"^Expected value of type '(?P<type>[^']+)'"), "expected a value of type '{type}'"),
    (re.compile(r"^(?P<message>Within OneOf Input Object type '[^']+', .*)$"), "{message}"),
)
_REQUIRED_FIELD = re.compile(r"^Expected value of type '(?P<type>\w+)' to include required field '(?P<field>\w+)'")


def _always(_: GraphQLError) -> bool:
    return True


def variable_field(name: str, path: str | None) -> str:
    """`input`, `.subscribers[1].email` → `input.subscribers.1.email`, the convention of `extensions.field`."""
    parts = [name]
    for key, index in _PATH_PART.findall(path or ""):
        parts.append(key or index)
    return ".".join(parts)


def variable_error(message: str, inner: str, schema: GraphQLSchema | None) -> tuple[str, str] | None:
    """(safe message, field path) for a variable-coercion error, or None if `message` is not one."""
    match = _VARIABLE.match(message)
    if match is None:
        return None
    name = match["name"]
    field = where = variable_field(name, match["path"])
    problem = "the value is not valid"
    if required := _REQUIRED_FIELD.match(inner):
        type_name, field_name = required["type"], required["field"]
        input_type = schema.get_type(type_name) if schema is not None else None
        shown = (
            f" of required type '{input_type.fields[field_name].type}'"
            if isinstance(input_type, GraphQLInputObjectType) and field_name in input_type.fields
            else ""
        )
        problem = f"field '{field_name}'{shown} was not provided"
        field = f"{field}.{field_name}"
    else:
        for pattern, template in _PROBLEMS:
            if found := pattern.match(inner):
                problem = template.format(**{key: value[:_MAX_NAME_SHOWN] for key, value in found.groupdict().items()})
                if "field" in found.groupdict():
                    field = f"{field}.{found['field'][:_MAX_NAME_SHOWN]}"
                break
    shown_at = "" if where == name else f" at {where}"
    return f"Variable '${name}' got an invalid value{shown_at}: {problem}.", field


class CodedErrors(MaskErrors):
    """Every error leaves with `extensions.code`: the domain's code, GRAPHQL_VALIDATION, or a masked INTERNAL."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_always, error_message=INTERNAL_MESSAGE)

    def _graphql_schema(self) -> GraphQLSchema | None:
        schema = getattr(getattr(self, "execution_context", None), "schema", None)
        graphql_schema = getattr(schema, "_schema", None)
        return graphql_schema if isinstance(graphql_schema, GraphQLSchema) else None

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        extensions = dict(error.extensions or {})
        message = error.message
        if isinstance(original, TidingsError):
            extensions["code"] = original.code
            if original.field is not None:
                extensions["field"] = original.field
            if isinstance(original, RateLimitedError):
                extensions["retryAfter"] = original.retry_after
        elif original is None or isinstance(original, GraphQLError):
            # Parse, validation and variable-coercion errors (depth, tokens, aliases, unknown fields, a variable of
            # the wrong shape) are the client's to fix; a variable's value is never echoed (it may be a secret).
            extensions.setdefault("code", "GRAPHQL_VALIDATION")
            inner = original.message if isinstance(original, GraphQLError) else ""
            if rebuilt := variable_error(message, inner, self._graphql_schema()):
                message, extensions["field"] = rebuilt
        else:
            where = ".".join(str(part) for part in error.path or []) or "(operation)"
            logger.error(
                "unexpected %s in GraphQL resolver at %s",
                type(original).__name__,
                where,
                extra={
                    "errorType": type(original).__name__,
                    "path": where,
                    "stack": "".join(traceback.format_tb(original.__traceback__)).rstrip(),
                },
            )
            extensions = {"code": "INTERNAL"}
            message = INTERNAL_MESSAGE
        if len(message) > MAX_MESSAGE_CHARS:  # a not-found message quotes the id it was given, however long
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )
