"""GraphQL area: preferences."""
