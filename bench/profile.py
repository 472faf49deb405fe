"""Sampling profiles of running Tidings processes with py-spy, summarised as the frames that cost the most."""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _py_spy() -> str:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else (shutil.which("py-spy") or "py-spy")


@contextmanager
def sampled(pid: int, raw_path: Path, rate: int = 200) -> Iterator[None]:
    """py-spy samples `pid` (idle threads left out) while the block runs; folded stacks go to `raw_path`."""
    raw_path.parent.mkdir(parents=True, exist_ok=True)
    argv = [_py_spy(), "record", "--pid", str(pid), "--format", "raw", "--output", str(raw_path)]
    recorder = subprocess.Popen(
        [*argv, "--rate", str(rate), "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        yield
    finally:
        recorder.send_signal(2)  # SIGINT makes py-spy write what it sampled and exit
        recorder.wait(30)


def top_frames(raw_path: Path, limit: int = 15) -> list[tuple[str, float]]:
    """The functions present in the largest share of samples (inclusive), deepest-first names deduplicated."""
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        for frame in set(stack.split(";")):
            inclusive[frame] += count
    if total == 0:
        return []
    return [(frame, round(100 * count / total, 1)) for frame, count in inclusive.most_common(limit)]


def _leaves(raw_path: Path) -> collections.Counter[str]:
    leaves: collections.Counter[str] = collections.Counter()
    for line in raw_path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack and count_text.isdigit():
            leaves[stack.split(";")[-1]] += int(count_text)
    return leaves


def _shares(counts: collections.Counter[str], limit: int) -> list[tuple[str, float]]:
    total = sum(counts.values())
    return [(name, round(100 * count / total, 1)) for name, count in counts.most_common(limit)] if total else []


def self_frames(raw_path: Path, limit: int = 15) -> list[tuple[str, float]]:
    """The leaf functions where the samples landed (self time), as shares of all samples."""
    return _shares(_leaves(raw_path), limit)


def self_by_package(raw_path: Path, limit: int = 15) -> list[tuple[str, float]]:
    """Self time per top-level package (`pymongo`, `graphql`, `tidings`...): which library the CPU went to."""
    packages: collections.Counter[str] = collections.Counter()
    for frame, count in _leaves(raw_path).items():
        location = frame.rpartition(" (")[2].rstrip(")")
        packages[location.split("/", 1)[0] if "/" in location else location.split(":", 1)[0]] += count
    return _shares(packages, limit)
