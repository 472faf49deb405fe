"""GraphQL area: workflows."""
