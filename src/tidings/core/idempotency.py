"""Where the `Idempotency-Key` middleware (app.idempotency) leaves, in the request scope's state, the seed from which
the APIs derive the transactionId of a trigger sent without one (triggers.service.with_derived_transaction_id)."""

IDEMPOTENCY_SEED_STATE = "idempotency_seed"
