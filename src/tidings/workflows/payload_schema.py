"""The JSON Schema a workflow's trigger payload must satisfy: checked to be a valid schema when saved."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from tidings.core.errors import ValidationError

FIELD = "input.payloadSchema"


def check_payload_schema(schema: dict[str, Any], *, max_bytes: int) -> None:
    try:
        size = len(json.dumps(schema, separators=(",", ":")).encode())
    except (TypeError, ValueError, RecursionError):
        raise ValidationError("payloadSchema must be a JSON object", field=FIELD) from None
    if size > max_bytes:
        raise ValidationError(f"payloadSchema is {size} bytes, more than the limit of {max_bytes}", field=FIELD)
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise ValidationError(f"not a valid JSON Schema: {exc.message}", field=FIELD) from None
    except RecursionError:
        raise ValidationError("payloadSchema nests too deeply", field=FIELD) from None
