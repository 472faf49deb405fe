"""GraphQL area: environments."""
