"""GraphQL area of outbound webhooks."""
