"""What a new user reads: ``--help`` of every command, ``--version``, and the README's synopsis.

The README's command-line synopsis is checked against the real options of
every command (typer's click objects), so the two cannot drift apart.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import typer
from typer.testing import CliRunner

import genocnn
from genocnn.cli import app

from tests.conftest import ROOT

runner = CliRunner()

#: Options without a default because they are inputs the user may or may not give.
NO_DEFAULT = {
    ("train", "--pos"), ("train", "--fasta"), ("train", "--labels"), ("train", "--resume"),
    ("train", "--bed"), ("train", "--genome"), ("train", "--set"), ("config show", "--set"),
    ("predict", "--bed"), ("predict", "--genome"), ("simulate", "--tfs"),
    ("scan", "--bedgraph"), ("scan", "--bigwig"), ("train", "--store"),
    ("prepare", "--fasta"), ("prepare", "--labels"), ("prepare", "--pos"), ("prepare", "--bed"), ("prepare", "--genome"),
}


def _commands(group=None, prefix: str = "") -> dict:
    """Every leaf command (typer's click objects) by its full name ("train", "config show")."""
    group = group or typer.main.get_command(app)
    found = {}
    for name, command in group.commands.items():
        full = f"{prefix}{name}"
        if hasattr(command, "commands"):
            found.update(_commands(command, full + " "))
        else:
            found[full] = command
    return found


def _options(command) -> list:
    return [p for p in command.params if p.param_type_name == "option" and p.name != "help"]


def _help(name: str) -> str:
    result = runner.invoke(app, [*name.split(), "--help"], prog_name="genocnn", terminal_width=200)
    assert result.exit_code == 0, result.output
    return result.stdout


def _entry(text: str, option: str) -> str:
    """The help entry of ``option``: its line and its wrapped continuation lines."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.match(rf"\s+{re.escape(option)}\b", line))
    entry = [lines[start]]
    for line in lines[start + 1:]:
        if re.match(r"\s+-", line) or not line.strip():
            break
        entry.append(line)
    return " ".join(" ".join(entry).split())


def test_every_command_is_listed():
    assert set(_commands()) == {"train", "predict", "motifs", "simulate", "scan", "attribute",
                                "variants", "config show", "config list", "prepare"}


@pytest.mark.parametrize("name", sorted(_commands()))
def test_help_shows_defaults_required_and_flags(name):
    text = _help(name)
    assert "Usage: genocnn " + name in text
    for option in _options(_commands()[name]):
        flag = option.opts[0]
        entry = _entry(text, flag)
        if option.is_flag:  # --quiet, --skip-bad: no value after the flag
            assert re.match(rf"{flag}\s+[A-Z]", entry), entry
        elif option.required or (name, flag) == ("train", "--out"):
            assert "[required" in entry, entry
        elif (name, flag) not in NO_DEFAULT:
            assert "[default: " in entry, entry
        assert "<bool>" not in entry, entry


def test_help_says_what_missing_options_mean():
    assert "[default: dinucleotide shuffles of --pos]" in _entry(_help("train"), "--neg")
    assert "[required unless --resume]" in _entry(_help("train"), "--out")
    for name in ("scan", "attribute"):
        assert "[default: the first task of the model]" in _entry(_help(name), "--task")
    assert "[default: 256; x>=1]" in _entry(_help("predict"), "--batch-size")
    assert "[required]" in _entry(_help("predict"), "--out")


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"genocnn {genocnn.__version__}\n"
    assert re.fullmatch(r"\d+\.\d+\.\d+", genocnn.__version__)


def test_python_dash_m_version():
    result = subprocess.run([sys.executable, "-m", "genocnn", "--version"], capture_output=True, text=True,
                            timeout=120, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"genocnn {genocnn.__version__}\n"


def _synopsis() -> dict[str, str]:
    """README's command-line synopsis: all text of the lines (and continuations) of each command."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Command line"):readme.index("## Python API")]
    found: dict[str, str] = {}
    current = None
    for line in section.splitlines():
        match = re.match(r"(?:torchrun .*-m )?genocnn ([a-z]+(?: (?:show|list))?)\b", line.strip())
        if match:
            current = match[1]
            found[current] = found.get(current, "") + " " + line
        elif current and line.startswith(" ") and line.strip():
            found[current] += " " + line
        else:
            current = None
    return found


@pytest.mark.parametrize("name", sorted(_commands()))
def test_readme_synopsis_lists_every_option(name):
    synopsis = _synopsis()
    assert name in synopsis, f"README's command line has no `genocnn {name}`"
    missing = [o.opts[0] for o in _options(_commands()[name])
               if not re.search(rf"{re.escape(o.opts[0])}(?![\w-])", synopsis[name])]
    assert not missing, f"README's synopsis of `genocnn {name}` lacks {missing}"


def test_readme_lists_version_and_the_run_files(cli_run_files=("model.pt", "last.pt", "run.json", "config.yaml",
                                                                "history.tsv", "metrics.json")):
    readme = (ROOT / "README.md").read_text()
    assert "genocnn --version" in readme
    listing = readme[readme.index("demo_run/model.pt"):readme.index("demo_run/motifs/")]
    for name in cli_run_files:
        assert f"demo_run/{name}" in listing, name
    assert "make demo" in readme and "make test" in readme and "source .venv/bin/activate" in readme
