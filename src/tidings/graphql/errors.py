"""Maps Tidings' exception tree to GraphQL errors with a stable `code` extension; masks everything unexpected."""

from __future__ import annotations

import logging

from graphql.error import GraphQLError
from strawberry.extensions import MaskErrors

from tidings.core.errors import TidingsError

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Unexpected error."


def _always(_: GraphQLError) -> bool:
    return True


class CodedErrors(MaskErrors):
    """Every error leaves with `extensions.code`: the domain's code, GRAPHQL_VALIDATION, or a masked INTERNAL."""

    def __init__(self) -> None:
        super().__init__(should_mask_error=_always, error_message=INTERNAL_MESSAGE)

    def anonymise_error(self, error: GraphQLError) -> GraphQLError:
        original = error.original_error
        extensions = dict(error.extensions or {})
        message = error.message
        if isinstance(original, TidingsError):
            extensions["code"] = original.code
            if original.field is not None:
                extensions["field"] = original.field
        elif original is None or isinstance(original, GraphQLError):
            # Parse, validation and variable-coercion errors (depth, tokens, aliases, unknown fields, a variable of
            # the wrong shape) are the client's to fix; they echo only what the client sent.
            extensions.setdefault("code", "GRAPHQL_VALIDATION")
        else:
            logger.error("unexpected error in GraphQL resolver", exc_info=original)
            extensions = {"code": "INTERNAL"}
            message = INTERNAL_MESSAGE
        return GraphQLError(
            message=message,
            nodes=error.nodes,
            source=error.source,
            positions=error.positions,
            path=error.path,
            original_error=None,
            extensions=extensions,
        )
