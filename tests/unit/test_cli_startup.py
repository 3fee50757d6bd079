"""The CLI starts without importing what its everyday commands do not use.

Each check runs in a fresh interpreter (this test process has imported everything
already) and reads ``sys.modules`` after the command has run.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pipeline.cli.lazy import load
from pipeline.cli.main import LAZY_COMMANDS, cli
from tests.conftest import ROOT, write_config

# Modules that cost tenths of a second each to import and that --help, search, show,
# list and types never need: the cluster, the web server, the EHR clients, the
# learned classifier, the daemon, the HL7 parser, the backlog runner, OCR, PDF writing.
HEAVY = (
    "dask",
    "distributed",
    "flask",
    "werkzeug",
    "fhir.resources",
    "httpx",
    "sklearn",
    "scipy",
    "hl7apy",
    "watch_folders.daemon",
    "pipeline.runs.run",
    "pipeline.runs.backlog",
    "pipeline.cli.backlog",
    "pipeline.cli.web",
    "pipeline.ehr.fhir",
    "pipeline.identify.documents",
    "pytesseract",
    "pdf2image",
    "pikepdf",
)

_PROBE = """
import json, sys
from pipeline.cli.main import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
heavy = json.loads(os.environ["HEAVY"])
loaded = sorted(m for m in heavy if m in sys.modules)
sys.stderr.write("LOADED " + json.dumps(loaded) + "\\n")
"""


def _loaded_after(*argv: str) -> tuple[list[str], subprocess.CompletedProcess]:
    done = subprocess.run(
        [sys.executable, "-c", "import os\n" + _PROBE, *argv],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "HEAVY": json.dumps(HEAVY)},
    )
    [line] = [line for line in done.stderr.splitlines() if line.startswith("LOADED ")]
    return json.loads(line.removeprefix("LOADED ")), done


def test_importing_the_cli_and_its_help_import_nothing_heavy() -> None:
    loaded, done = _loaded_after("--help")
    assert "Commands:" in done.stdout
    for name in LAZY_COMMANDS:  # every command listed, none imported
        assert f"\n  {name} " in done.stdout
    assert loaded == []


@pytest.mark.parametrize(
    "argv",
    [("search", "patient"), ("list",), ("list", "--failed"), ("show", "no-such-document"), ("types",)],
    ids=lambda argv: " ".join(argv),
)
def test_everyday_commands_import_nothing_heavy(tmp_path: Path, argv: tuple[str, ...]) -> None:
    config = write_config(tmp_path)
    loaded, done = _loaded_after("--config", str(config), *argv)
    assert "Traceback" not in done.stderr
    assert loaded == []


def test_a_lazy_command_is_imported_when_run() -> None:
    loaded, done = _loaded_after("serve", "--help")
    assert "--port" in done.stdout
    assert "pipeline.cli.web" in loaded


def test_each_lazy_command_is_where_its_entry_says_with_the_help_it_declares() -> None:
    for name, lazy in LAZY_COMMANDS.items():
        command = load(lazy)
        assert command.name == name
        first_paragraph = " ".join((command.help or "").split("\n\n")[0].split())
        assert first_paragraph == lazy.help, name


def test_help_lists_a_lazy_command_as_it_would_once_imported() -> None:
    ctx = click.Context(cli)
    for name, lazy in LAZY_COMMANDS.items():
        stand_in = click.Command(name, help=lazy.help)
        assert stand_in.get_short_help_str(60) == load(lazy).get_short_help_str(60)
    assert set(LAZY_COMMANDS) <= set(cli.list_commands(ctx))
