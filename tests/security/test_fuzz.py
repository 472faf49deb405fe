"""GraphQL fuzzing: hypothesis-graphql writes queries and mutations from the committed `schema.graphql`, sent over
HTTP to a real `tidings api` with an API key (and the inbox's with a subscriber token). No answer may be a 5xx or
carry an `INTERNAL` error, and the server still answers /healthz afterwards.

Reproducible: derandomized, so CI runs the same operations every time; nothing is stored in `.hypothesis/`.
`TIDINGS_FUZZ_EXAMPLES=2000 uv run pytest tests/security/test_fuzz.py` fuzzes longer (default 60 per test).

Failures are collected rather than raised inside Hypothesis: hypothesis-graphql's strategies cache what they built,
so a replay for shrinking draws differently (FlakyStrategyDefinition) and would hide the operation that failed.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.configuration import set_hypothesis_home_dir
from hypothesis_graphql import nodes
from hypothesis_graphql import strategies as gql_st

from tests.security.conftest import Guarded, admin, session_token
from tests.servers import SECRET_KEY
from tidings.core.crypto import Cipher
from tidings.environments.service import create_environment

SCHEMA = graphql.build_schema((Path(__file__).parents[2] / "schema.graphql").read_text())
EXAMPLES = int(os.environ.get("TIDINGS_FUZZ_EXAMPLES", "60"))
# The API key the fuzzer holds must keep working: a rotation with overlapSeconds 0 would end the run's reach early.
SKIPPED_MUTATIONS = frozenset({"rotateApiKey"})
INBOX_QUERIES = sorted(name for name in SCHEMA.query_type.fields if name.startswith("inbox"))  # type: ignore[union-attr]
INBOX_MUTATIONS = sorted(name for name in SCHEMA.mutation_type.fields if name.startswith("inbox"))  # type: ignore[union-attr]
ADMIN_MUTATIONS = sorted(set(SCHEMA.mutation_type.fields) - SKIPPED_MUTATIONS)  # type: ignore[union-attr]

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


def _value_node(value: Any) -> graphql.ValueNode:
    """A JSON value as a GraphQL literal (what a client writes inline for a `JSON` argument)."""
    if value is None:
        return graphql.NullValueNode()
    if isinstance(value, bool):
        return nodes.Boolean(value)
    if isinstance(value, int):
        return nodes.Int(value)
    if isinstance(value, str):
        return nodes.String(value)
    if isinstance(value, list):
        return nodes.List([_value_node(item) for item in value])
    return nodes.Object(
        [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=key), value=_value_node(item))
            for key, item in value.items()
        ]
    )


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**31), 2**31 - 1) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True), children, max_size=4)
    ),
    max_leaves=12,
)
CUSTOM_SCALARS = {
    "JSON": JSON_VALUES.map(_value_node),
    "DateTime": st.datetimes().map(lambda moment: nodes.String(moment.isoformat())),
}


@dataclass(frozen=True)
class Target:
    base: str
    api_key: str
    token: str


@pytest.fixture(scope="module")
async def target(guarded: Guarded, tmp_path_factory: pytest.TempPathFactory) -> Target:
    set_hypothesis_home_dir(tmp_path_factory.mktemp("hypothesis"))  # never the repository's .hypothesis/
    issued = await create_environment(f"fuzz-{uuid.uuid4().hex[:6]}", cipher=Cipher(SECRET_KEY))
    fuzzer = admin(guarded.client, issued.api_key)
    await fuzzer.data(
        'mutation { createSubscriber(input: {subscriberId: "fuzzed", email: "f@example.com"}) { subscriberId } }'
    )
    await fuzzer.data('mutation { createTopic(input: {key: "fuzzed", name: "Fuzzed"}) { key } }')
    await fuzzer.data(
        'mutation { createWorkflow(input: {workflowId: "fuzzed", name: "Fuzzed", steps: [{inApp: {body: "hi"}}]}) '
        "{ workflowId } }"
    )
    token = await session_token(guarded.client, issued, "fuzzed")
    return Target(guarded.base, issued.api_key, token)


@pytest.fixture(scope="module")
def http(target: Target) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=target.base, timeout=60) as client:
        yield client


def _send(http: httpx.Client, operation: str, authorization: str, failures: list[str]) -> None:
    response = http.post("/graphql", json={"query": operation}, headers={"Authorization": authorization})
    if response.status_code >= 500:
        failures.append(f"{response.status_code} for:\n{operation}\n{response.text[:2000]}")
        return
    body = response.json()
    if any(error.get("extensions", {}).get("code") == "INTERNAL" for error in body.get("errors") or []):
        failures.append(f"INTERNAL for:\n{operation}\n{response.text[:2000]}")


async def _fuzz(http: httpx.Client, operations: st.SearchStrategy[str], authorization: str) -> None:
    """Runs Hypothesis in a thread: the event loop must stay free for the session's database client, whose
    connection monitors would otherwise time out and cancel the fixtures' last operations."""
    failures: list[str] = []

    @FUZZ
    @given(operations)
    def run(operation: str) -> None:
        _send(http, operation, authorization, failures)

    await asyncio.to_thread(run)
    assert not failures, f"{len(failures)} failing operations; the first ones:\n\n" + "\n\n".join(failures[:5])
    assert (await asyncio.to_thread(http.get, "/healthz")).status_code == 200


@pytest.mark.timeout(600)
async def test_fuzzed_admin_queries(http: httpx.Client, target: Target) -> None:
    await _fuzz(http, gql_st.queries(SCHEMA, custom_scalars=CUSTOM_SCALARS), f"ApiKey {target.api_key}")


@pytest.mark.timeout(600)
async def test_fuzzed_admin_mutations(http: httpx.Client, target: Target) -> None:
    operations = gql_st.mutations(SCHEMA, fields=ADMIN_MUTATIONS, custom_scalars=CUSTOM_SCALARS)
    await _fuzz(http, operations, f"ApiKey {target.api_key}")


@pytest.mark.timeout(600)
async def test_fuzzed_inbox_operations(http: httpx.Client, target: Target) -> None:
    operations = gql_st.queries(SCHEMA, fields=INBOX_QUERIES, custom_scalars=CUSTOM_SCALARS) | gql_st.mutations(
        SCHEMA, fields=INBOX_MUTATIONS, custom_scalars=CUSTOM_SCALARS
    )
    await _fuzz(http, operations, f"Bearer {target.token}")


@pytest.mark.timeout(600)
async def test_fuzzed_operations_that_break_the_schema(http: httpx.Client, target: Target) -> None:
    """Negative mode: one violation per operation (wrong types, missing arguments); all GRAPHQL_VALIDATION."""
    operations = gql_st.from_schema(SCHEMA, custom_scalars=CUSTOM_SCALARS, mode=gql_st.Mode.NEGATIVE)
    await _fuzz(http, operations, f"ApiKey {target.api_key}")
