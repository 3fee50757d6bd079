"""A worker killed mid-page: the pool is replaced and no page folder of its dead workers stays behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.core.config import load_config
from tests.conftest import ROOT, document, scanned, write_config


def _page_folders(scratch: Path) -> dict[int, list[Path]]:
    """Page folders under the scratch space, by the pid that made them."""
    found: dict[int, list[Path]] = {}
    for path in scratch.glob("work-*-page-*") if scratch.exists() else []:
        found.setdefault(int(path.name.split("-")[1]), []).append(path)
    return found


def test_killing_one_ocr_worker_leaves_no_page_folder_of_the_broken_pool(tmp_path):
    config_path = write_config(tmp_path, ocr={"workers": 2, "page_timeout_seconds": 120})
    scratch = load_config(config_path).scratch_dir
    folder = tmp_path / "in"
    folder.mkdir()
    scanned(folder / "chart.pdf", document(7, pages=4))
    run = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(config_path), "ingest", str(folder)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 180
        while len(busy := _page_folders(scratch)) < 2:
            assert run.poll() is None and time.monotonic() < deadline, "two workers never had a page at once"
            time.sleep(0.02)
        victim, other = sorted(busy)[:2]
        os.kill(victim, signal.SIGKILL)
        _, stderr = run.communicate(timeout=300)
    finally:
        if run.poll() is None:
            run.kill()
    assert "crashed a worker" in stderr, stderr
    left = _page_folders(scratch)
    assert victim not in left and other not in left, left
