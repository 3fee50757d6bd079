"""Shared fixtures: a private config per test, generated documents, the CLI as a subprocess."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.samples import scans as samples

ROOT = Path(__file__).resolve().parent.parent


def write_config(folder: Path, **sections) -> Path:
    """A config.yaml in ``folder`` with its data root beside it; sections override defaults."""
    body = {"data_root": "data", "ocr": {"workers": 2, "page_timeout_seconds": 120}}
    for key, value in sections.items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(body))
    return path


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return write_config(tmp_path)


def run_cli(config: Path, *args: str, check: bool = False, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), *args],
        capture_output=True, text=True, timeout=timeout, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"medarchive {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def document(seed: int, doc_type: str = "discharge_summary", **kwargs) -> samples.SampleDoc:
    rng = random.Random(seed)
    return samples.make_document(rng, doc_type, samples.make_patient(rng), **kwargs)


def scanned(path: Path, doc: samples.SampleDoc, *, dpi: int = 300, encoding: str = "jpeg", seed: int = 0, **render) -> Path:
    rng = random.Random(seed)
    images = [samples.render_page(list(lines), dpi=dpi, rng=rng, **render) for lines in doc.pages]
    samples.write_scanned_pdf(path, images, encoding=encoding, dpi=(dpi, dpi))
    return path


def born_digital(path: Path, doc: samples.SampleDoc) -> Path:
    samples.write_born_digital_pdf(path, [list(lines) for lines in doc.pages])
    return path
