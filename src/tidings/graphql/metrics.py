"""GraphQL operations and errors as Prometheus counters, from a Strawberry extension.

Labels come from the schema and from our own error codes, never from the document a client sent: a root field that
is not in the schema counts as "other", so made-up field names cannot create series.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)
from graphql.error import GraphQLError
from prometheus_client import Counter
from strawberry.extensions import SchemaExtension

OTHER = "other"
UNKNOWN = "unknown"  # an operation that did not parse: its type is not known
_INTROSPECTION = frozenset({"__schema", "__type", "__typename"})
_CODE = re.compile(r"^[A-Z][A-Z_]{0,39}$")

OPERATIONS = Counter(
    "tidings_graphql_operations_total",
    "GraphQL operations by type (query, mutation, subscription) and root field; an operation selecting several root "
    "fields counts once for each",
    ["operation", "field"],
)
ERRORS = Counter("tidings_graphql_errors_total", "Errors in GraphQL answers, by extensions.code", ["code"])


def _root_fields(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode], seen: set[str]
) -> Iterator[str]:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection.name.value
        elif isinstance(selection, InlineFragmentNode):
            yield from _root_fields(selection.selection_set, fragments, seen)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in seen:
            seen.add(selection.name.value)  # a cyclic spread is refused by validation, which may not have run yet
            if (fragment := fragments.get(selection.name.value)) is not None:
                yield from _root_fields(fragment.selection_set, fragments, seen)


def operation_fields(
    document: DocumentNode, operation_name: str | None, schema: GraphQLSchema
) -> tuple[str, list[str]] | None:
    """(operation type, its root fields mapped onto the schema's) of the operation that runs, or None."""
    operations = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    chosen = next(
        (node for node in operations if operation_name is None or (node.name and node.name.value == operation_name)),
        None,
    )
    if chosen is None:
        return None
    kind = chosen.operation.value
    root = schema.get_root_type(chosen.operation)
    known = set(root.fields) if root is not None else set()
    fragments = {node.name.value: node for node in document.definitions if isinstance(node, FragmentDefinitionNode)}
    fields = dict.fromkeys(
        name if name in known or name in _INTROSPECTION else OTHER
        for name in _root_fields(chosen.selection_set, fragments, set())
    )
    return kind, list(fields) or [OTHER]


def error_code(extensions: dict[str, object] | None) -> str:
    code = (extensions or {}).get("code")
    return code if isinstance(code, str) and _CODE.match(code) else OTHER


class GraphQLMetrics(SchemaExtension):
    """Counts each operation once its document parsed (before validation may refuse it) and every error it answered
    with; list it before `CodedErrors`, so that it reads the errors after they got their code."""

    counted = False

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        schema = getattr(context.schema, "_schema", None)
        if context.graphql_document is not None and isinstance(schema, GraphQLSchema):
            found = operation_fields(context.graphql_document, context.operation_name, schema)
            kind, fields = found if found is not None else (UNKNOWN, [OTHER])
            for field in fields:
                OPERATIONS.labels(kind, field).inc()
            self.counted = True
        yield

    def on_operation(self) -> Iterator[None]:
        self.counted = False
        try:
            yield
        except GraphQLError as exc:
            # ParserCache raises syntax errors out of the operation: Strawberry answers with them unmasked, uncoded.
            ERRORS.labels(error_code(exc.extensions)).inc()
            raise
        finally:
            if not self.counted:  # the document did not parse (or named no operation to run)
                OPERATIONS.labels(UNKNOWN, OTHER).inc()
        result = self.execution_context.result
        for error in getattr(result, "errors", None) or []:
            ERRORS.labels(error_code(error.extensions)).inc()
