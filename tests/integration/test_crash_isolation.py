"""One bad file never stops a run: exceptions, crashed workers and a coordinator that
keeps dying on the same input, through `ingest`, `watch` and `backlog` as real processes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.archive.store import iter_sidecars
from pipeline.core.config import load_config
from pipeline.pages.worker import CRASH_ON, CRASH_WHO
from pipeline.samples.mutate import xmp_poison_pdf
from tests.conftest import ROOT, born_digital, document, json_lines, run_cli, write_config


def _cli(
    config: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def _inputs(folder: Path, count: int, seed: int = 0) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [born_digital(folder / f"chart-{n:02d}.pdf", document(seed + n)) for n in range(count)]


def _failed(config_path: Path) -> list[dict]:
    return json_lines(run_cli(config_path, "list", "--failed", "--json", check=True).stdout)


def _filed(config_path: Path) -> list:
    return list(iter_sidecars(load_config(config_path)))


def _scratch_left(config_path: Path) -> list[Path]:
    scratch = load_config(config_path).scratch_dir
    return list(scratch.iterdir()) if scratch.exists() else []


def test_ingest_sets_aside_an_input_that_raises_and_reads_the_other_nine(tmp_path):
    config = write_config(tmp_path)
    inputs = _inputs(tmp_path / "in", 9)
    poison = tmp_path / "in" / "chart-05-poison.pdf"
    poison.write_bytes(inputs[0].read_bytes().replace(b"%%EOF", b"%%EOF\n% another file\n"))
    done = _cli(
        config, "ingest", *map(str, sorted((tmp_path / "in").iterdir())), env={CRASH_ON: "poison", CRASH_WHO: "raise"}
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert "10 inputs" in done.stderr
    failed = _failed(config)
    assert [f["file"] for f in failed] == ["chart-05-poison.pdf"]
    assert failed[0]["reason"].startswith("could not be read: internal error (RuntimeError: test hook")
    assert len(_filed(config)) == 9
    assert not _scratch_left(config)


def test_the_xmp_metadata_trap_no_longer_stops_ingest(tmp_path):
    config = write_config(tmp_path)
    folder = tmp_path / "in"
    _inputs(folder, 3)
    (folder / "chart-01-xmp.pdf").write_bytes(xmp_poison_pdf())
    done = _cli(config, "ingest", str(folder))
    assert "Traceback" not in done.stderr + done.stdout
    assert done.returncode in (0, 2), done.stderr
    outcomes = len(_filed(config)) + len(_failed(config))
    assert outcomes == 4, done.stdout + done.stderr


def test_a_worker_that_dies_fails_its_input_and_the_pool_is_replaced(tmp_path):
    config = write_config(tmp_path)
    folder = tmp_path / "in"
    _inputs(folder, 4)
    shutil.copy(folder / "chart-00.pdf", folder / "chart-02-deadly.pdf")
    (folder / "chart-02-deadly.pdf").write_bytes((folder / "chart-00.pdf").read_bytes() + b"\n% deadly\n")
    done = _cli(config, "ingest", str(folder), env={CRASH_ON: "deadly", CRASH_WHO: "worker"})
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    failed = _failed(config)
    assert [f["file"] for f in failed] == ["chart-02-deadly.pdf"]
    assert "crash" in failed[0]["reason"] and "set aside" in failed[0]["reason"]
    assert len(_filed(config)) == 4


class _Daemon:
    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config = config
        self.log_path = config.parent / "daemon.log"
        self.log = open(self.log_path, "a")  # noqa: SIM115 (open for the daemon's life, closed when it stops)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(config), "watch"],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        )

    def wait_dead(self, timeout: float = 120) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.wait_dead()

    def text(self) -> str:
        return self.log_path.read_text()


def _settle(config_path: Path, daemon: _Daemon, expected: int, timeout: float = 240) -> None:
    config = load_config(config_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert daemon.proc.poll() is None, f"daemon exited:\n{daemon.text()}"
        busy = list(config.processing_dir.glob("*")) if config.processing_dir.exists() else []
        done = len(_filed(config_path)) + len(list(config.failed_dir.glob("*.reason.json")))
        if done >= expected and not busy:
            return
        time.sleep(0.5)
    raise AssertionError(f"not settled:\n{daemon.text()}")


def _watch_config(tmp_path: Path) -> Path:
    return write_config(tmp_path, watch={"quiet_seconds": 1, "rescan_seconds": 1, "stop_grace_seconds": 30})


def test_the_daemon_keeps_running_past_a_poison_file(tmp_path):
    config_path = _watch_config(tmp_path)
    drop = load_config(config_path).drop_dir
    drop.mkdir(parents=True)
    daemon = _Daemon(config_path, {CRASH_ON: "poison", CRASH_WHO: "raise"})
    try:
        (drop / "a-poison.pdf").write_bytes(born_digital(tmp_path / "p.pdf", document(99)).read_bytes())
        (drop / "b-xmp.pdf").write_bytes(xmp_poison_pdf())
        for n, path in enumerate(_inputs(tmp_path / "good", 3)):
            shutil.copy(path, drop / f"c-{n}.pdf")
        _settle(config_path, daemon, 5)
        status = json.loads(run_cli(config_path, "status", "--json", check=True).stdout)
        assert status["daemon_pid"] == daemon.proc.pid
        assert status["in_flight"] == 0
        assert any(e["file"] == "a-poison.pdf" and "internal error" in e["reason"] for e in status["last_errors"])
    finally:
        assert daemon.stop() == 0, daemon.text()
    assert [f["file"] for f in _failed(config_path)] == ["a-poison.pdf"]
    assert "Traceback" not in daemon.text()


def test_a_file_that_kills_the_daemon_twice_is_set_aside_and_the_rest_filed_once(tmp_path):
    config_path = _watch_config(tmp_path)
    config = load_config(config_path)
    config.drop_dir.mkdir(parents=True)
    system_temp = tmp_path / "system-temp"
    system_temp.mkdir()
    env = {CRASH_ON: "deadly", CRASH_WHO: "coordinator", "TMPDIR": str(system_temp)}
    shutil.copy(born_digital(tmp_path / "d.pdf", document(50)), config.drop_dir / "deadly.pdf")
    for n, path in enumerate(_inputs(tmp_path / "good", 3)):
        shutil.copy(path, config.drop_dir / f"good-{n}.pdf")
    for _ in range(2):
        daemon = _Daemon(config_path, env)
        assert daemon.wait_dead() == -signal.SIGKILL, daemon.text()
    assert list(config.processing_dir.glob("*deadly.pdf"))
    daemon = _Daemon(config_path, env)
    try:
        _settle(config_path, daemon, 4)
    finally:
        assert daemon.stop() == 0, daemon.text()
    failed = _failed(config_path)
    assert [f["file"] for f in failed] == ["deadly.pdf"]
    assert failed[0]["reason"] == "stopped the daemon twice; set aside for a person to look at"
    filed = _filed(config_path)
    assert len(filed) == 3
    assert not list(config.processing_dir.glob("*"))
    assert not _scratch_left(config_path)
    assert not [p for p in system_temp.rglob("*") if "medarchive" in p.name], "patient data left outside the data root"


def test_backlog_sets_aside_what_raises_and_what_kills_it_twice(tmp_path):
    config_path = write_config(tmp_path)
    tree = tmp_path / "charts"
    _inputs(tree / "2019", 3)
    shutil.copy(born_digital(tmp_path / "r.pdf", document(70)), tree / "2019" / "odd-poison.pdf")
    # Walked first, so each killed session dies before it files anything else.
    shutil.copy(born_digital(tmp_path / "d.pdf", document(71)), tree / "2018-deadly.pdf")
    env = {CRASH_ON: "deadly", CRASH_WHO: "coordinator"}
    for _ in range(2):
        done = _cli(config_path, "backlog", str(tree), env=env)
        assert done.returncode == -signal.SIGKILL, done.stderr
    done = _cli(
        config_path,
        "backlog",
        str(tree),
        "--report",
        str(tmp_path / "report.json"),
        env={CRASH_ON: "poison", CRASH_WHO: "raise"},
    )
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    reasons = {f["file"]: f["reason"] for f in report["failed"]}
    assert reasons["2018-deadly.pdf"] == "stopped the backlog run twice; set aside for a person to look at"
    assert reasons["2019/odd-poison.pdf"].startswith("could not be read: internal error (RuntimeError")
    assert report["counts"]["failed"] == 2 and report["counts"]["filed"] + report["counts"]["review"] == 3
    assert len(_filed(config_path)) == 3
