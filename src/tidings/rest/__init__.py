"""The Novu-compatible REST API: Novu's paths, bodies, envelopes and errors over the same domain functions as
GraphQL (docs/novu-compat.md)."""
