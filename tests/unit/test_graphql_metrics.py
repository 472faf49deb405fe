"""Root fields of an operation, as the GraphQL metrics label them: the schema's names, never the client's."""

from __future__ import annotations

from graphql import parse

from tidings.graphql.metrics import error_code, operation_fields
from tidings.graphql.schema import build_schema

SCHEMA = build_schema()._schema


def fields(document: str, operation_name: str | None = None) -> tuple[str, list[str]] | None:
    return operation_fields(parse(document), operation_name, SCHEMA)


def test_aliases_count_as_the_field_they_select() -> None:
    assert fields("mutation { mine: trigger(input: $i) { duplicate } }") == ("mutation", ["trigger"])


def test_fields_not_in_the_schema_are_other() -> None:
    assert fields("{ madeUpField aDifferentOne }") == ("query", ["other"])


def test_fragments_at_the_root_are_followed_once_even_when_cyclic() -> None:
    document = """
        query { ...A ... on Query { subscribers { totalCount } } }
        fragment A on Query { workflows { totalCount } ...B }
        fragment B on Query { ...A __typename }
    """
    assert fields(document) == ("query", ["workflows", "__typename", "subscribers"])


def test_the_named_operation_is_the_one_counted() -> None:
    document = "query A { workflows { totalCount } } subscription B { inboxEvents { __typename } }"
    assert fields(document, "B") == ("subscription", ["inboxEvents"])
    assert fields(document, "C") is None


def test_error_codes_are_ours_or_other() -> None:
    assert error_code({"code": "VALIDATION"}) == "VALIDATION"
    assert error_code({"code": "<script>"}) == "other"
    assert error_code({}) == "other"
    assert error_code(None) == "other"
