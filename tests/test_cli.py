"""The command line's own text: --help shows what it says (no markup eaten, no type tags),
and --version reports the installed distribution's version."""

from __future__ import annotations

from importlib.metadata import version

import pytest
from typer.testing import CliRunner

from weightsynth.cli import app

runner = CliRunner()


@pytest.mark.parametrize("command", ["sweep", "reproduce", "demo"])
def test_help_text_is_shown_verbatim(command):
    res = runner.invoke(app, [command, "--help"], terminal_width=100)
    assert res.exit_code == 0, res.output
    for tag in ("<bool>", "<str>", "<int", "<float", "{config}"):
        assert tag not in res.output, tag
    if command == "sweep":
        assert "Sweep config (TOML): protocol, [grid], [fixed]." in " ".join(res.output.split())


def test_version_is_the_installed_distributions():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert res.output.strip() == f"weightsynth {version('weightsynth')}"
