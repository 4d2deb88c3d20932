"""The README's commands run: every ``tongge …`` line names real commands and options."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from api.cli import app

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_commands() -> list[str]:
    """Every ``tongge`` command line of the README: code blocks and `inline` ones."""
    text = README.read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```(?:bash|sh)?\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            line = line.split("   #")[0].strip()  # comments after the command
            found = re.search(r"(?:^|/)tongge (.+)$", line)
            if found and not line.startswith("#"):
                lines.append("tongge " + found.group(1))
    for inline in re.findall(r"`((?:\.venv/bin/)?tongge [^`]+)`", text):
        lines.append("tongge " + inline.split("tongge ", 1)[1])
    return lines


def resolve(words: list[str]) -> tuple[list[str], Any, list[str]]:
    """Split ``words`` into the command path, the command and the rest."""
    command: Any = typer.main.get_command(app)
    path: list[str] = []
    rest = list(words)
    while hasattr(command, "commands") and rest and rest[0] in command.commands:
        command = command.commands[rest[0]]
        path.append(rest.pop(0))
    return path, command, rest


def test_the_readme_has_examples() -> None:
    assert len(readme_commands()) >= 20


@pytest.mark.parametrize("line", readme_commands())
def test_readme_command_exists_with_its_options(line: str) -> None:
    words = shlex.split(line.replace("|", " "))[1:]
    words = [w for w in words if not re.fullmatch(r"[A-Z]+|IN|OUT|FILE|DATE|…", w)]
    path, command, rest = resolve(words)
    assert path, f"{line}: no such command"
    result = CliRunner().invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    known = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    for word in rest:
        if word.startswith("-"):
            assert word.split("=")[0] in known, f"{line}: {word} is not an option of {path}"


@pytest.mark.parametrize("action", ["add", "set"])
def test_users_take_name_and_display_name(action: str) -> None:
    # The README (and `staff add`) say --name; --display-name, the field's name, works too.
    _, command, _ = resolve(["users", action])
    option = next(p for p in command.params if p.name == "display_name")
    assert {"--name", "--display-name"} <= set(option.opts)


def test_every_setting_is_in_the_configuration_table() -> None:
    from gis.settings import Settings

    text = README.read_text(encoding="utf-8")
    missing = [
        f"TONGGE_{name.upper()}"
        for name in Settings.model_fields
        if f"| `TONGGE_{name.upper()}` |" not in text
    ]
    assert not missing, f"settings missing from the README's configuration table: {missing}"
