"""`schema.graphql` is the public contract; it must be exactly what the Strawberry schema exports."""

from __future__ import annotations

from pathlib import Path

from tidings.app.cli import main
from tidings.graphql.schema import build_schema

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schema.graphql"


def test_committed_schema_matches_the_code() -> None:
    assert SCHEMA_FILE.read_text() == build_schema().as_str() + "\n", (
        "run `uv run tidings export-schema -o schema.graphql`"
    )


def test_export_schema_check_detects_drift(tmp_path: Path) -> None:
    stale = tmp_path / "schema.graphql"
    stale.write_text("type Query { old: String }\n")
    assert main(["export-schema", "--check", "-o", str(stale)]) == 1
    assert main(["export-schema", "-o", str(stale)]) == 0
    assert main(["export-schema", "--check", "-o", str(stale)]) == 0
    assert "currentEnvironment" in stale.read_text()
