"""The drop-folder daemon as a real process: real files, real signals, real crashes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from pipeline.archive.index import open_index
from pipeline.archive.store import iter_sidecars
from pipeline.core.config import load_config
from pipeline.samples import scans as samples
from tests.conftest import (
    ROOT,
    born_digital,
    document,
    json_lines,
    run_cli,
    scanned,
    write_config,
)

IGNORED = ["scan.tmp", "upload.part", "~$draft.pdf", ".hidden.pdf", "Thumbs.db", ".DS_Store"]


def watch_config(tmp_path: Path, **watch) -> Path:
    settings = {"quiet_seconds": 1.5, "rescan_seconds": 2, "stop_grace_seconds": 30, **watch}
    return write_config(tmp_path, watch=settings)


class DaemonProcess:
    def __init__(self, config: Path) -> None:
        self.config = config
        self.log = open(config.parent / "daemon.log", "a")  # noqa: SIM115 (open for the daemon's life, closed when it stops)
        self._log_start = self.log.tell()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config), "watch"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )

    def stop(self, sig=signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.log.close()
        return code

    def wait_watching(self, timeout: float = 120) -> None:
        """Until this daemon logs that it watches (its signal handlers are in place by then)."""
        deadline = time.monotonic() + timeout
        while "watching " not in self.log_text()[self._log_start :]:
            assert self.proc.poll() is None and time.monotonic() < deadline, f"daemon never started:\n{self.log_text()}"
            time.sleep(0.2)

    def log_text(self) -> str:
        return (self.config.parent / "daemon.log").read_text()


def outcomes(config_path: Path) -> tuple[list[dict], list[dict]]:
    docs = json_lines(run_cli(config_path, "list", "--json", check=True).stdout)
    failed = json_lines(run_cli(config_path, "list", "--failed", "--json", check=True).stdout)
    return docs, failed


def wait_until_settled(config_path: Path, expected: int, daemon: DaemonProcess, timeout: float = 300) -> None:
    config = load_config(config_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.proc.poll() is None, f"daemon exited early:\n{daemon.log_text()}"
        in_flight = list(config.processing_dir.glob("*")) if config.processing_dir.exists() else []
        done = sum(1 for _ in iter_sidecars(config)) + len(list(config.failed_dir.glob("*.reason.json")))
        if done >= expected and not in_flight:
            return
        time.sleep(0.5)
    raise AssertionError(f"not settled after {timeout} s ({done}/{expected}):\n{daemon.log_text()}")


def assert_index_matches_archive(config_path: Path) -> None:
    config = load_config(config_path)
    archived = {s.doc_id: s.path for s in iter_sidecars(config)}
    indexed = {r.doc_id: r.path for r in open_index(config).stored()}
    assert indexed == archived


def slow_write(data: bytes, target: Path, chunks: int = 8, pause: float = 0.5) -> None:
    step = len(data) // chunks + 1
    with open(target, "wb") as handle:
        for start in range(0, len(data), step):
            handle.write(data[start : start + step])
            handle.flush()
            time.sleep(pause)


def test_every_dropped_file_is_taken_exactly_once(tmp_path):
    config_path = watch_config(tmp_path)
    drop = tmp_path / "data" / "drop"
    staging = tmp_path / "staging"
    staging.mkdir()
    copied = scanned(staging / "copied.pdf", document(1, "lab_result"), seed=1)
    renamed = born_digital(staging / "renamed.pdf", document(2, "consent_form"))
    slow = born_digital(staging / "slow.pdf", document(3, "operative_report", pages=3))
    nested = born_digital(staging / "nested.pdf", document(4, "progress_note"))
    bad = samples.write_bad_inputs(staging / "bad")

    daemon = DaemonProcess(config_path)
    try:
        drop.mkdir(parents=True, exist_ok=True)
        shutil.copy(copied, drop / "copied.pdf")
        os.rename(renamed, drop / "renamed.pdf")
        (drop / "ward7" / "2026").mkdir(parents=True)
        shutil.copy(nested, drop / "ward7" / "2026" / "nested.pdf")
        for name in bad:
            shutil.copy(staging / "bad" / name, drop / name)
        for name in IGNORED:
            (drop / name).write_bytes(slow.read_bytes())
        (drop / "@eaDir").mkdir()
        (drop / "@eaDir" / "thumb.pdf").write_bytes(slow.read_bytes())
        (drop / "notes.txt").write_text("not a scan")
        writer = threading.Thread(target=slow_write, args=(slow.read_bytes(), drop / "slow.pdf"))
        writer.start()
        writer.join()
        wait_until_settled(config_path, 4 + len(bad), daemon)
    finally:
        assert daemon.stop() == 0

    docs, failed = outcomes(config_path)
    assert sorted(d["source"]["file"] for d in docs) == ["copied.pdf", "nested.pdf", "renamed.pdf", "slow.pdf"]
    slow_doc = next(d for d in docs if d["source"]["file"] == "slow.pdf")
    assert slow_doc["pages"] == 3 and slow_doc["status"] == "filed"
    assert sorted(f["file"] for f in failed) == sorted(bad)
    left = sorted(p.relative_to(drop).as_posix() for p in drop.rglob("*") if p.is_file())
    assert left == sorted([*IGNORED, "@eaDir/thumb.pdf", "notes.txt"])
    assert not list((tmp_path / "data" / "processing").iterdir())
    for doc in docs:
        hits = json_lines(run_cli(config_path, "search", f"mrn:{doc['mrn']}", "--json").stdout) if doc["mrn"] else []
        assert doc["status"] == "review" or doc["doc_id"] in [h["doc_id"] for h in hits]
    assert_index_matches_archive(config_path)
    status = run_cli(config_path, "status", check=True).stdout
    assert "not running" in status and f"{len(bad)} failed" in status


def test_burst_of_fifty_files(tmp_path):
    config_path = watch_config(tmp_path, quiet_seconds=1)
    staging = tmp_path / "staging"
    staging.mkdir()
    files = [born_digital(staging / f"burst-{n:02d}.pdf", document(100 + n, "progress_note")) for n in range(50)]
    daemon = DaemonProcess(config_path)
    try:
        drop = tmp_path / "data" / "drop"
        drop.mkdir(parents=True, exist_ok=True)
        for path in files:
            shutil.copy(path, drop / path.name)
        wait_until_settled(config_path, 50, daemon)
    finally:
        assert daemon.stop() == 0
    docs, failed = outcomes(config_path)
    assert not failed
    assert sorted(d["source"]["file"] for d in docs) == [p.name for p in files]
    assert_index_matches_archive(config_path)


def test_sigkill_at_any_moment_loses_and_duplicates_nothing(tmp_path):
    # Three kills on purpose: on a slow machine one input may be in flight at each, and that is
    # not the input's fault, so the set-aside rule for inputs that kill the daemon stays out of it.
    config_path = watch_config(tmp_path, quiet_seconds=0.5, set_aside_after_crashes=5)
    drop = tmp_path / "data" / "drop"
    drop.mkdir(parents=True)
    staging = tmp_path / "staging"
    staging.mkdir()
    names = []
    for n in range(12):
        doc = document(300 + n, "radiology_report")
        path = (
            scanned(staging / f"k{n:02d}.pdf", doc, seed=n)
            if n % 4 == 0
            else born_digital(staging / f"k{n:02d}.pdf", doc)
        )
        names.append(path.name)
    for name in names:
        shutil.copy(staging / name, drop / name)
    for delay in (1.0, 2.5, 4.0):
        daemon = DaemonProcess(config_path)
        time.sleep(delay)
        daemon.stop(signal.SIGKILL)
    daemon = DaemonProcess(config_path)
    try:
        # The killed daemons may have settled everything already; this one must still come up.
        daemon.wait_watching()
        wait_until_settled(config_path, len(names), daemon)
    finally:
        assert daemon.stop() == 0
    docs, failed = outcomes(config_path)
    assert not failed
    assert sorted(d["source"]["file"] for d in docs) == names
    assert len({d["doc_id"] for d in docs}) == len(names)
    assert_index_matches_archive(config_path)


def wait_running(config_path: Path, daemon: DaemonProcess) -> None:
    deadline = time.monotonic() + 60
    while "running (pid" not in run_cli(config_path, "status").stdout:
        assert time.monotonic() < deadline, daemon.log_text()
        time.sleep(0.3)


def test_second_daemon_refuses_and_sigterm_exits_cleanly(tmp_path):
    config_path = watch_config(tmp_path)
    first = DaemonProcess(config_path)
    try:
        wait_running(config_path, first)
        second = run_cli(config_path, "watch", timeout=60)
        assert second.returncode == 1
        assert "another medarchive daemon" in second.stderr
        assert second.stderr.count("\n") == 1
    finally:
        assert first.stop(signal.SIGTERM) == 0
    assert "not running" in run_cli(config_path, "status").stdout


def test_sigint_exits_zero(tmp_path):
    config_path = watch_config(tmp_path)
    daemon = DaemonProcess(config_path)
    wait_running(config_path, daemon)
    assert daemon.stop(signal.SIGINT) == 0
