"""Per-environment rate limits on mutations, taken once per operation before anything of it runs.

Every root field of a mutation is priced first (`trigger` and `cancelTrigger` one trigger token, `bulkTrigger` one
per event, every other admin mutation one config token); then all of it is taken at once or the whole operation is
refused — HTTP 429, `Retry-After`, and a RATE_LIMITED error — so a refused operation runs no resolver and writes
nothing. `inboxSession` is charged by its resolver instead, once the subscriberHash passed (a wrong hash must not
spend the environment's sessions); its refusal is answered with the same 429 here. Queries and subscriptions are not
limited: they change nothing, are bounded by page sizes and GraphQL's depth and token limits, and an inbox reading
its feed must not be refused because its backend is busy triggering. The subscriber's own inbox mutations (reading,
archiving) act on one inbox only and are not limited either.
"""

from __future__ import annotations

import logging
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    SelectionSetNode,
    StringValueNode,
    ValueNode,
    VariableNode,
    get_operation_ast,
)
from starlette.responses import Response
from strawberry.extensions import SchemaExtension
from strawberry.types.base import get_object_definition
from strawberry.types.graphql import OperationType
from strawberry.utils.str_converters import to_camel_case

from tidings.core.errors import RateLimitedError, UnauthenticatedError
from tidings.environments.ratelimits import RateClass
from tidings.environments.service import authenticate_api_key
from tidings.graphql.context import Context
from tidings.graphql.inbox.mutations import InboxMutations
from tidings.graphql.triggers.mutations import TriggerMutations


def _field_names(cls: type) -> frozenset[str]:
    definition = get_object_definition(cls, strict=True)
    return frozenset(field.graphql_name or to_camel_case(field.python_name) for field in definition.fields)


TRIGGER_FIELDS = _field_names(TriggerMutations)
INBOX_SESSION_FIELD = "inboxSession"
# Authenticated by a subscriber token and confined to that subscriber's inbox.
SUBSCRIBER_FIELDS = _field_names(InboxMutations) - {INBOX_SESSION_FIELD}
BULK_TRIGGER_FIELD = "bulkTrigger"

logger = logging.getLogger(__name__)


class RateLimits(SchemaExtension):
    async def on_execute(self) -> AsyncIterator[None]:
        execution = self.execution_context
        context = execution.context
        if execution.operation_type is OperationType.MUTATION and isinstance(context, Context):
            try:
                await _take(context, execution.graphql_document, execution.operation_name, execution.variables or {})
            except RateLimitedError as error:
                execution.result = ExecutionResult(
                    data=None, errors=[GraphQLError(error.message, original_error=error)]
                )
                _answer_429(context, error)
            except Exception as error:
                # MongoDB failing while pricing: the resolvers meet the same failure and answer it with its code.
                logger.warning("rate limits not checked: %s", type(error).__name__)
        yield
        # `inboxSession` is charged by its resolver, once the subscriberHash passed (see `open_session`).
        result = execution.result
        for answered in (result.errors or []) if result is not None and isinstance(context, Context) else []:
            if isinstance(answered.original_error, RateLimitedError):
                _answer_429(context, answered.original_error)
                break


def _answer_429(context: Context, error: RateLimitedError) -> None:
    if isinstance(context.response, Response):
        context.response.status_code = 429
        context.response.headers["Retry-After"] = str(error.retry_after)


async def _take(
    context: Context, document: DocumentNode | None, operation_name: str | None, variables: Mapping[str, Any]
) -> None:
    if context.limiter is None or document is None:
        return
    operation = get_operation_ast(document, operation_name)
    if operation is None:
        return
    fragments = {node.name.value: node for node in document.definitions if isinstance(node, FragmentDefinitionNode)}
    costs: defaultdict[str, Counter[RateClass]] = defaultdict(Counter)
    for field in _root_fields(operation.selection_set, fragments, set()):
        name = field.name.value
        if name in SUBSCRIBER_FIELDS or name == INBOX_SESSION_FIELD or name.startswith("__"):
            continue
        environment_id = await _admin_environment_id(context)
        if environment_id is None:
            continue  # no valid API key: the resolver answers UNAUTHENTICATED
        if name == BULK_TRIGGER_FIELD:
            costs[environment_id][RateClass.TRIGGER] += _bulk_size(field, variables)
        elif name in TRIGGER_FIELDS:
            costs[environment_id][RateClass.TRIGGER] += 1
        else:
            costs[environment_id][RateClass.CONFIG] += 1
    for environment_id, environment_costs in costs.items():
        await context.limiter.take_all(environment_id, environment_costs)


async def _admin_environment_id(context: Context) -> str | None:
    """The API key's environment, kept on the context so the resolvers don't look it up again."""
    if context.environment is None:
        if context.api_key is None:
            return None
        try:
            context.environment = await authenticate_api_key(context.api_key)
        except UnauthenticatedError:
            return None
    return str(context.environment.id)


def _root_fields(
    selections: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode], seen: set[str]
) -> Iterator[FieldNode]:
    """The root fields, through fragments; @skip/@include are ignored, so a skipped field is charged anyway."""
    for selection in selections.selections:
        if isinstance(selection, FieldNode):
            yield selection
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)
            if fragment := fragments.get(selection.name.value):
                yield from _root_fields(fragment.selection_set, fragments, seen)


def _argument(field: FieldNode, name: str, variables: Mapping[str, Any]) -> Any:
    for argument in field.arguments or ():
        if argument.name.value == name:
            return _value(argument.value, variables)
    return None


def _value(node: ValueNode, variables: Mapping[str, Any]) -> Any:
    """Just enough of a literal to price it: strings, lists (their length matters) and objects."""
    if isinstance(node, VariableNode):
        return variables.get(node.name.value)
    if isinstance(node, StringValueNode):
        return node.value
    if isinstance(node, ListValueNode):
        return [_value(item, variables) for item in node.values]
    if isinstance(node, ObjectValueNode):
        return {item.name.value: _value(item.value, variables) for item in node.fields}
    return None


def _bulk_size(field: FieldNode, variables: Mapping[str, Any]) -> int:
    given = _argument(field, "input", variables)
    events = given.get("events") if isinstance(given, dict) else None
    return max(1, len(events)) if isinstance(events, list) else 1
