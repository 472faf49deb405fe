"""Variable-coercion errors rebuilt without the value the client sent, and with the path inside the variable; only
unexpected errors are logged, without their message."""

from __future__ import annotations

import logging

import pytest
from graphql import build_schema

from tidings.graphql.errors import variable_error, variable_field
from tidings.graphql.schema import build_schema as build_graphql_schema

SCHEMA = build_schema("""
    input LoginInput { user: String! password: String! }
    type Query { login(input: LoginInput!): Boolean }
""")
SECRET = "hunter2-SECRET"


@pytest.mark.parametrize(
    ("name", "path", "field"),
    [
        ("input", None, "input"),
        ("input", "", "input"),
        ("input", ".credentials", "input.credentials"),
        ("input", ".subscribers[12].push[0].deviceTokens", "input.subscribers.12.push.0.deviceTokens"),
        ("c", "[0].channel", "c.0.channel"),
    ],
)
def test_variable_field_is_the_dotted_path(name: str, path: str | None, field: str) -> None:
    assert variable_field(name, path) == field


@pytest.mark.parametrize(
    ("message", "inner", "expected"),
    [
        (
            f"Variable '$input' has invalid value: Expected value of type 'LoginInput' to include required field "
            f"'user', found: {{'password': '{SECRET}'}}.",
            f"Expected value of type 'LoginInput' to include required field 'user', found: {{'password': '{SECRET}'}}.",
            (
                "Variable '$input' got an invalid value: field 'user' of required type 'String!' was not provided.",
                "input.user",
            ),
        ),
        (
            f"Variable '$input' has invalid value at .password: String cannot represent a non string value: "
            f"{{'x': '{SECRET}'}}",
            f"String cannot represent a non string value: {{'x': '{SECRET}'}}",
            (
                "Variable '$input' got an invalid value at input.password: expected a value of type 'String'.",
                "input.password",
            ),
        ),
        (
            f"Variable '$input' has invalid value: Expected value of type 'LoginInput' not to include unknown field "
            f"'pasword'. Did you mean 'password'? Found: {{'pasword': '{SECRET}'}}.",
            f"Expected value of type 'LoginInput' not to include unknown field 'pasword'. Did you mean 'password'? "
            f"Found: {{'pasword': '{SECRET}'}}.",
            ("Variable '$input' got an invalid value: type 'LoginInput' has no field 'pasword'.", "input.pasword"),
        ),
        (
            f"Variable '$c' has invalid value at [3].channel: Value '{SECRET}' does not exist in 'Channel' enum.",
            f"Value '{SECRET}' does not exist in 'Channel' enum.",
            (
                "Variable '$c' got an invalid value at c.3.channel: expected a value of the enum 'Channel'.",
                "c.3.channel",
            ),
        ),
        (
            f"Variable '$input' has invalid value: Expected value of type 'LoginInput' to be an object, found: "
            f"'{SECRET}'.",
            f"Expected value of type 'LoginInput' to be an object, found: '{SECRET}'.",
            ("Variable '$input' got an invalid value: expected an object of type 'LoginInput'.", "input"),
        ),
        (
            f"Variable '$input' has invalid value: something graphql-core may say one day about {SECRET}",
            f"something graphql-core may say one day about {SECRET}",
            ("Variable '$input' got an invalid value: the value is not valid.", "input"),
        ),
    ],
)
def test_messages_name_the_problem_but_never_the_value(message: str, inner: str, expected: tuple[str, str]) -> None:
    rebuilt = variable_error(message, inner, SCHEMA)
    assert rebuilt == expected
    assert SECRET not in str(rebuilt)


def test_other_errors_are_left_alone() -> None:
    assert variable_error("Cannot query field 'nope' on type 'Query'.", "", SCHEMA) is None


async def test_an_unexpected_error_is_masked_and_logged_without_its_message(caplog: pytest.LogCaptureFixture) -> None:
    schema = build_graphql_schema()
    # No request context: the resolver fails with an AttributeError, a bug as far as the client is concerned.
    with caplog.at_level(logging.DEBUG):
        result = await schema.execute("{ currentEnvironment { name } }", context_value=None)
    assert result.errors is not None
    [error] = result.errors
    assert (error.message, error.extensions) == ("Unexpected error.", {"code": "INTERNAL"})
    logged = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert [record.name for record in logged] == ["tidings.graphql.errors"]  # ours only, not strawberry's
    assert "AttributeError" in logged[0].getMessage()
    assert "currentEnvironment" in logged[0].getMessage()
    assert "has no attribute" not in caplog.text  # the exception's message may quote data


async def test_client_errors_are_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    schema = build_graphql_schema()
    with caplog.at_level(logging.DEBUG):
        result = await schema.execute(
            "mutation($o: Int!) { rotateApiKey(overlapSeconds: $o) { apiKey } }", variable_values={"o": SECRET}
        )
        await schema.execute("{ nope }")
    assert result.errors is not None
    assert result.errors[0].extensions == {"code": "GRAPHQL_VALIDATION", "field": "o"}
    assert [record for record in caplog.records if record.levelno >= logging.WARNING] == []
    assert SECRET not in caplog.text
