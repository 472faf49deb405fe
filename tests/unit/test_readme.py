"""The README documents every setting and every command the code has."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tidings.app.cli import _parser
from tidings.app.settings import Settings, env_name

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_is_in_the_configuration_table(field: str) -> None:
    assert f"| `{env_name(field)}` |" in README


def test_every_command_is_documented() -> None:
    commands = next(action for action in _parser()._actions if isinstance(action, argparse._SubParsersAction))
    for name in commands.choices:
        assert f"`tidings {name}" in README, name


def test_readme_shows_the_two_commands() -> None:
    assert "uv run tidings dev" in README
    assert "uv run pytest" in README
