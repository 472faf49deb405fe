"""Our `tidings.graphql` package must never shadow graphql-core, which Strawberry imports as `graphql`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import graphql

import tidings.graphql


def test_graphql_is_graphql_core_from_site_packages() -> None:
    location = Path(graphql.__file__).resolve()
    assert "site-packages" in location.parts
    assert location.parent.name == "graphql"
    assert hasattr(graphql, "specified_rules")  # what Strawberry imports (issue #626 failed right here)
    assert Path(tidings.graphql.__file__).resolve().parent != location.parent


def test_graphql_resolves_to_graphql_core_when_run_from_the_package_directory() -> None:
    """Even with the current directory inside our package, `import graphql` must not find ours."""
    package_dir = Path(tidings.graphql.__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-P", "-c", "import graphql, strawberry; print(graphql.__file__)"],
        cwd=package_dir,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "site-packages" in result.stdout
