"""GraphQL area: integrations."""
