"""Each benchmark script runs end to end on a tiny size (`--smoke`), so the scripts in bench/ don't rot.

They run as `python -m bench.NAME`, the command docs/benchmarks.md gives, against this session's servers. A script
raises when something it sent was not delivered, so a passing smoke run also proves the path it measures works;
the figures themselves are never asserted here (speed is for the benchmarks, not for tests).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tidings.app.settings import env_name

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(420)
@pytest.mark.parametrize("name", ["trigger", "realtime", "memory", "delivery"])
def test_benchmark_runs_at_smoke_size(name: str, mongodb_url: str, redis_url: str, tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("TIDINGS_")}
    env |= {env_name("mongodb_url"): mongodb_url, env_name("redis_url"): redis_url}
    output = tmp_path / f"{name}.json"
    argv = [sys.executable, "-m", f"bench.{name}", "--smoke", "--workdir", str(tmp_path), "--output", str(output)]
    done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=400, check=False)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    document = json.loads(output.read_text())
    assert document["benchmark"] == name
    assert document["machine"]["cores"] >= 1
    assert document["figures"], document
