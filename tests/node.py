"""Node.js packages from the npm registry for tests that drive Tidings with real JavaScript clients."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest


def node_cache(config: pytest.Config) -> Path:
    """pytest's cache folder (.pytest_cache, git-ignored) keeps installs between runs; without it, the home cache."""
    pytest_cache = getattr(config, "cache", None)
    return Path(pytest_cache.mkdir("node")) if pytest_cache else Path.home() / ".cache" / "tidings-tests"


def npm_install(folder: Path, marker: str, packages: list[str]) -> Path:
    """`packages` installed once per machine into `folder`; `marker` is a package whose presence proves it."""
    npm = shutil.which("npm")
    assert npm is not None, "Node.js and npm are needed for this test (Debian: apt-get install nodejs npm)"
    if not (folder / "node_modules" / marker / "package.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [npm, "install", "--prefix", str(folder), "--no-audit", "--no-fund", *packages],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return folder / "node_modules"


def script_beside(modules: Path, script: Path) -> Path:
    """Node resolves bare imports from the script's folder upwards (NODE_PATH is ignored for ES modules), so the
    script runs from a copy next to the folder that holds node_modules."""
    copy = modules.parent / script.name
    shutil.copyfile(script, copy)
    return copy


async def run_node(script: Path, *args: str, stdin: Any = None, limit: float = 120) -> list[Any]:
    """Run `script` with `stdin` (as JSON) and read one JSON value per line of its output."""
    node = shutil.which("node")
    assert node is not None
    process = await asyncio.create_subprocess_exec(
        node,
        str(script),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(json.dumps(stdin).encode()), limit)
    assert process.returncode == 0, err.decode()
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]
