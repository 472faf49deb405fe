"""GraphQL area: topics."""
