"""The README's own examples, run as written against the demo samples.

The commands are read from every ``sh`` block that follows a
``<!-- readme-test ... -->`` marker, so the README cannot promise what does not
work. The demo is what ``make run`` writes (``medarchive samples``: six scans of
three fictional patients), ingested once for the module.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke_cli, json_lines
from tests.web.fixtures import data_site

README = ROOT / "README.md"
_MARKED_BLOCK = re.compile(r"<!-- readme-test[^>]*-->\s*```sh\n(.*?)```", re.DOTALL)
# "**Paul Murphy** (MRN 748406": who the README says is in the samples.
_DEMO_PATIENT = re.compile(r"\*\*(\w+) (\w+)\*\* \(MRN (\d+)")


def readme_commands(text: str) -> list[list[str]]:
    """Each example line of the marked blocks as argv (comments dropped), `medarchive` first."""
    commands = []
    for block in _MARKED_BLOCK.findall(text):
        for line in block.splitlines():
            argv = shlex.split(line, comments=True)
            if argv:
                commands.append(argv)
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The config of a data root holding the ingested demo samples."""
    return data_site(tmp_path_factory) / "config.yaml"


def test_the_readme_marks_its_examples() -> None:
    assert len(COMMANDS) >= 8
    assert all(argv[0] == "medarchive" for argv in COMMANDS), COMMANDS
    assert any(argv[1] == "search" for argv in COMMANDS)


def test_the_extractor_reads_only_marked_blocks() -> None:
    text = "```sh\nmedarchive nope\n```\n<!-- readme-test -->\n```sh\nmedarchive list   # all\n\nmedarchive search '\"a b\"'\n```\n"
    assert readme_commands(text) == [["medarchive", "list"], ["medarchive", "search", '"a b"']]


def test_the_demo_patients_named_in_the_readme_are_the_samples(demo: Path) -> None:
    named = {
        (mrn, f"{last.upper()}, {first.upper()}") for first, last, mrn in _DEMO_PATIENT.findall(README.read_text())
    }
    assert len(named) == 3
    rows = json_lines(invoke_cli(demo, "list", "--json").stdout)
    assert named == {(row["mrn"], row["patient_name"]) for row in rows if row["mrn"]}


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(argv[1:]) for argv in COMMANDS])
def test_a_readme_example_works_on_the_demo_data(demo: Path, argv: list[str]) -> None:
    done = invoke_cli(demo, *argv[1:])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip(), f"{' '.join(argv)} printed nothing"
    assert "Traceback" not in done.stderr
    if argv[1] == "search":
        found = re.search(r"(\d+) result\(s\)", done.stderr)
        assert found is not None and int(found.group(1)) >= 1, f"{' '.join(argv)} found nothing in the demo"
