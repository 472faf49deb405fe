"""The typed GraphQL API (Strawberry): schema, context, permissions, error codes, one subpackage per area."""
