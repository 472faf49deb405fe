"""GraphQL area: diagnostics (worker probes)."""
