"""Our `tidings.graphql` package must never shadow graphql-core, which Strawberry imports as `graphql`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import graphql

import tidings.graphql
from tidings.app.devserver import role_argv


def test_graphql_is_graphql_core_from_site_packages() -> None:
    location = Path(graphql.__file__).resolve()
    assert "site-packages" in location.parts
    assert location.parent.name == "graphql"
    assert hasattr(graphql, "specified_rules")  # what Strawberry imports (issue #626 failed right here)
    assert Path(tidings.graphql.__file__).resolve().parent != location.parent


def test_roles_started_by_dev_ignore_a_graphql_folder_in_the_working_directory(tmp_path: Path) -> None:
    """`tidings dev` starts its roles with `python -m`; a developer's own `graphql/` package must not shadow ours."""
    shadow = tmp_path / "graphql"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the shadowing graphql package was imported')\n")
    result = subprocess.run(
        role_argv("export-schema"), cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "type Query" in result.stdout
    # The same command without -P would import the shadow: the check above is a real one.
    unsafe = [arg for arg in role_argv("export-schema") if arg != "-P"]
    shadowed = subprocess.run(unsafe, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=60)
    assert "the shadowing graphql package was imported" in shadowed.stderr
