"""GraphQL area: triggers (start and cancel workflows)."""
