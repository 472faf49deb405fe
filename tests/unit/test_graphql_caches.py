"""The parser and validation caches hit for a repeated operation, with the depth and alias limits still applied.

The limiters make new validation-rule classes per instance and the validation cache is keyed on the rules, so when
they were built per operation every request missed the cache and was validated in full (docs/benchmarks.md)."""

from __future__ import annotations

from functools import _lru_cache_wrapper
from typing import Any, cast

from strawberry.extensions.validation_cache import _get_validate_cache  # the cache's own counters

from tidings.graphql.schema import _CACHE_SIZE, build_schema


async def test_a_repeated_operation_is_validated_once() -> None:
    schema = build_schema()
    operation = "query Repeated { __typename again: __typename }"
    counters = cast("_lru_cache_wrapper[Any]", _get_validate_cache(_CACHE_SIZE))
    first = await schema.execute(operation)
    before = counters.cache_info()
    second = await schema.execute(operation)
    after = counters.cache_info()
    assert first.errors is None
    assert second.errors is None
    assert (after.hits - before.hits, after.misses - before.misses) == (1, 0)


async def test_the_limits_hold_for_a_cached_operation() -> None:
    schema = build_schema(max_aliases=3, max_depth=2)
    aliased = "{ " + " ".join(f"a{index}: __typename" for index in range(4)) + " }"
    deep = "{ workflows { edges { node { workflowId } } } }"
    for _ in range(2):  # the second answer comes from the cache
        assert [error.message for error in (await schema.execute(aliased)).errors or []] == [
            "4 aliases found. Allowed: 3"
        ]
        assert "exceeds maximum operation depth of 2" in str((await schema.execute(deep)).errors)
