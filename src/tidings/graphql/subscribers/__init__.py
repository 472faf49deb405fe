"""GraphQL area: subscribers."""
