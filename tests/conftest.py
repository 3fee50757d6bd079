"""Shared fixtures: a private config per test, generated documents, the CLI as a subprocess."""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from pipeline.samples import scans as samples

ROOT = Path(__file__).resolve().parent.parent

# pg_cluster and pg_url: a throwaway PostgreSQL, started only by the tests that ask for it
pytest_plugins = ["tests.postgres"]


def write_config(folder: Path, **sections) -> Path:
    """A config.yaml in ``folder`` with its data root beside it; sections override defaults."""
    # Most fixtures are one-page scans printing the MRN once, written before issue #25 asked
    # for a second witness; they test other things, so a clear single read files here.
    # tests/integration/test_corroboration.py runs the default (second_witness on).
    body = {
        "data_root": "data",
        "ocr": {"workers": 2, "page_timeout_seconds": 120},
        "filing": {"second_witness": False},
    }
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
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    if check and done.returncode != 0:
        raise AssertionError(f"medarchive {' '.join(args)} exited {done.returncode}: {done.stderr}")
    return done


def invoke_cli(config: Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """``run_cli`` in this process: the same main(), output and exit status, without starting
    Python (about 1.5 s of CPU a call). Use run_cli where the process itself is tested."""
    from pipeline.cli.main import (
        main,  # here: collecting the tests needs no CLI, web or worker imports
    )

    argv = ["--config", str(config), *args]
    umask, root = os.umask(0o077), logging.getLogger()
    handlers, level = root.handlers[:], root.level
    try:
        with CliRunner().isolation() as (out, err, _):
            try:
                main(argv)
                code = 0
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
            stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    finally:
        # main() sets a private umask and the -v logging for the process; a test process goes on.
        os.umask(umask)
        root.handlers[:], root.level = handlers, level
    if check and code != 0:
        raise AssertionError(f"medarchive {' '.join(args)} exited {code}: {stderr}")
    return subprocess.CompletedProcess(["medarchive", *argv], code, stdout, stderr)


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def document(seed: int, doc_type: str = "discharge_summary", **kwargs) -> samples.SampleDoc:
    rng = random.Random(seed)
    return samples.make_document(rng, doc_type, samples.make_patient(rng), **kwargs)


def scanned(
    path: Path, doc: samples.SampleDoc, *, dpi: int = 300, encoding: str = "jpeg", seed: int = 0, **render
) -> Path:
    rng = random.Random(seed)
    images = [samples.render_page(list(lines), dpi=dpi, rng=rng, **render) for lines in doc.pages]
    samples.write_scanned_pdf(path, images, encoding=encoding, dpi=(dpi, dpi))
    return path


def born_digital(path: Path, doc: samples.SampleDoc) -> Path:
    samples.write_born_digital_pdf(path, [list(lines) for lines in doc.pages])
    return path


def free_port() -> int:
    """A loopback port nobody listens on now (for a server a test starts)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_listening(port: int, server: subprocess.Popen, output: Callable[[], str], seconds: float = 60) -> None:
    """Until ``server`` accepts connections on ``port``; its ``output`` when it exits first."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"{server.args[3:6]} exited {server.returncode}: {output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"nothing listened on port {port} within {seconds} s")
