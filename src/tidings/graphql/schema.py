"""The Strawberry schema: root types merged from each area, hardened by limits from settings."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import Any, override

import strawberry
from graphql.error import GraphQLError
from strawberry.extensions import (
    AddValidationRules,
    DisableIntrospection,
    MaxAliasesLimiter,
    MaxTokensLimiter,
    ParserCache,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.schema.config import StrawberryConfig
from strawberry.tools import merge_types
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.graphql import OperationType

from tidings.graphql.activity.queries import ActivityQueries
from tidings.graphql.diagnostics.mutations import DiagnosticsMutations
from tidings.graphql.diagnostics.queries import DiagnosticsQueries
from tidings.graphql.environments.mutations import EnvironmentMutations
from tidings.graphql.environments.queries import EnvironmentQueries
from tidings.graphql.errors import CodedErrors
from tidings.graphql.inbox.mutations import InboxMutations
from tidings.graphql.inbox.queries import InboxQueries
from tidings.graphql.inbox.subscriptions import InboxSubscriptions
from tidings.graphql.integrations.mutations import IntegrationMutations
from tidings.graphql.integrations.queries import IntegrationQueries
from tidings.graphql.metrics import GraphQLMetrics
from tidings.graphql.preferences.mutations import PreferenceMutations
from tidings.graphql.preferences.queries import PreferenceQueries
from tidings.graphql.ratelimits import RateLimits
from tidings.graphql.subscribers.mutations import SubscriberMutations
from tidings.graphql.subscribers.queries import SubscriberQueries
from tidings.graphql.topics.mutations import TopicMutations
from tidings.graphql.topics.queries import TopicQueries
from tidings.graphql.triggers.mutations import TriggerMutations
from tidings.graphql.webhooks.mutations import WebhookMutations
from tidings.graphql.webhooks.queries import WebhookQueries
from tidings.graphql.workflows.mutations import WorkflowMutations
from tidings.graphql.workflows.queries import WorkflowQueries

# One entry per area; each area keeps its root fields in its own queries.py / mutations.py.
QUERIES: tuple[type, ...] = (
    EnvironmentQueries,
    SubscriberQueries,
    TopicQueries,
    IntegrationQueries,
    WorkflowQueries,
    PreferenceQueries,
    DiagnosticsQueries,
    ActivityQueries,
    InboxQueries,
    WebhookQueries,
)
MUTATIONS: tuple[type, ...] = (
    EnvironmentMutations,
    SubscriberMutations,
    TopicMutations,
    IntegrationMutations,
    WorkflowMutations,
    PreferenceMutations,
    DiagnosticsMutations,
    TriggerMutations,
    InboxMutations,
    WebhookMutations,
)
SUBSCRIPTIONS: tuple[type, ...] = (InboxSubscriptions,)

Query: Any = merge_types("Query", QUERIES)
Mutation: Any = merge_types("Mutation", MUTATIONS)
Subscription: Any = merge_types("Subscription", SUBSCRIPTIONS)

# Parsing and validation dominate the cost of small operations (2.2k req/s cached vs 617 uncached, DESIGN §8).
_CACHE_SIZE = 1024


class TidingsSchema(strawberry.Schema):
    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        """Strawberry logs every error at ERROR with its message, and graphql-core's messages quote the variables a
        client sent (passwords too). `CodedErrors` logs the unexpected ones instead; the rest are the client's."""

    @override
    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        result = await super().execute(
            query,
            variable_values,
            context_value,
            root_value,
            operation_name,
            allowed_operation_types,
            operation_extensions,
        )
        # A syntax error raised by a parsing extension (ParserCache, the token limit) leaves the operation before
        # the extensions' exit hooks run, so it would go out without a code: give it the one CodedErrors gives.
        if result.errors and any("code" not in (error.extensions or {}) for error in result.errors):
            coder = CodedErrors()
            result.errors = [
                error if "code" in (error.extensions or {}) else coder.anonymise_error(error) for error in result.errors
            ]
        return result


def build_schema(
    *, max_depth: int = 12, max_tokens: int = 2000, max_aliases: int = 30, introspection: bool = True
) -> strawberry.Schema:
    hardening = [] if introspection else [DisableIntrospection]
    # The depth and alias limiters make new rule classes in every instance, and the validation cache is keyed on
    # the rule classes, so built per operation they made every request miss it and validate in full (a quarter of
    # the api's CPU on `trigger`, docs/benchmarks.md). Built once here, the cache hits.
    limit_rules = [
        *QueryDepthLimiter(max_depth=max_depth).validation_rules,
        *MaxAliasesLimiter(max_alias_count=max_aliases).validation_rules,
    ]
    return TidingsSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[
            # Factories, not instances: Strawberry builds extensions per operation (the caches are module-level).
            partial(MaxTokensLimiter, max_token_count=max_tokens),
            partial(AddValidationRules, limit_rules),
            partial(ParserCache, maxsize=_CACHE_SIZE),
            partial(ValidationCache, maxsize=_CACHE_SIZE),
            *hardening,
            RateLimits,  # after parsing and validation: only a valid mutation is priced
            GraphQLMetrics,  # before CodedErrors: it exits after it, and so counts the coded errors
            CodedErrors,
        ],
    )
