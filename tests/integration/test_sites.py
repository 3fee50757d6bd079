"""Several sites at once on one archive and one database: two `watch` daemons (two sites, two drop
folders) and a `backlog`, one daemon killed mid-run and started again: every input exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipeline.archive.audit import AuditLog
from pipeline.archive.store import iter_failed, iter_sidecars
from pipeline.core.config import Config, load_config
from pipeline.core.fsutil import sha256_file
from pipeline.runs.journal import Journal
from tests.conftest import ROOT, born_digital, document, invoke_cli, scanned, write_config
from tests.integration.test_watch import DaemonProcess


def _site(folder: Path, shared_root: Path, pg_url: str, name: str) -> Config:
    folder.mkdir()
    path = write_config(
        folder,
        data_root=str(shared_root),
        database={"url": pg_url},
        site=name,
        ocr={"workers": 1, "page_timeout_seconds": 120},
        watch={
            "folders": [{"path": str(folder / "drop"), "source_label": name}],
            "quiet_seconds": 1,
            "rescan_seconds": 1,
            "stop_grace_seconds": 30,
        },
    )
    return load_config(path)


def _wait_for(what, seconds: float = 600) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def _empty(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def test_two_sites_and_a_backlog_file_each_input_once(tmp_path, pg_url):
    shared_root = tmp_path / "archive-mount"
    north, south, scanning = (_site(tmp_path / n, shared_root, pg_url, n) for n in ("north", "south", "scanning"))
    invoke_cli(north.path, "db", "upgrade", check=True)
    tree = tmp_path / "old-charts"
    tree.mkdir()
    inputs = {
        "north": [scanned(tmp_path / f"n{n}.pdf", document(10 + n)) for n in range(2)],
        "south": [born_digital(tmp_path / f"s{n}.pdf", document(20 + n)) for n in range(2)],
        "backlog": [born_digital(tree / f"b{n}.pdf", document(30 + n)) for n in range(2)],
    }
    twice = born_digital(tmp_path / "twice.pdf", document(40))  # the same paper scanned at both sites
    expected = {sha256_file(p) for paths in inputs.values() for p in paths} | {sha256_file(twice)}

    daemons = {"north": DaemonProcess(north.path), "south": DaemonProcess(south.path)}
    backlog = None
    try:
        for daemon in daemons.values():
            daemon.wait_watching()
        for site, config in (("north", north), ("south", south)):
            drop = config.drop_folders[0].path
            for path in [*inputs[site], twice]:
                (drop / path.name).write_bytes(path.read_bytes())
        backlog = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "--config", str(scanning.path), "backlog", str(tree)],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # North is killed while it holds a claim (reading a scan), then started again.
        _wait_for(lambda: any(p.suffix == ".json" for p in north.processing_dir.glob("*")), 300)
        daemons["north"].proc.send_signal(signal.SIGKILL)
        daemons["north"].proc.wait(30)
        assert daemons["north"].proc.returncode == -signal.SIGKILL
        assert not _empty(north.processing_dir)  # its claim waits for it, untouched by south
        daemons["north"].log.close()
        daemons["north"] = DaemonProcess(north.path)
        _out, err = backlog.communicate(timeout=600)
        assert backlog.returncode == 0, err
        for config in (north, south):
            drop = config.drop_folders[0].path
            _wait_for(lambda drop=drop, config=config: _empty(drop) and _empty(config.processing_dir))
        _wait_for(lambda: {s.source.sha256 for s in iter_sidecars(north)} >= expected)
    finally:
        if backlog is not None and backlog.poll() is None:
            backlog.kill()
        codes = [daemon.stop() for daemon in daemons.values()]
    assert codes == [0, 0]

    sidecars = list(iter_sidecars(north))
    assert sorted(s.source.sha256 for s in sidecars) == sorted(expected)  # each input once, none lost
    assert len({s.doc_id for s in sidecars}) == len(sidecars)
    assert not list(iter_failed(north))
    labels = {s.source.sha256: s.source.label for s in sidecars}
    assert {labels[sha256_file(p)] for p in inputs["south"]} == {"south"}
    journal = Journal.for_config(scanning)
    (run,) = journal.runs()
    assert run.finished_at is not None and sum(journal.counts(run.run_id).values()) == 2
    assert AuditLog.for_config(north).verify().ok
    assert "chain intact" in invoke_cli(south.path, "audit", "verify", check=True).stdout
    status = invoke_cli(north.path, "status", "--site", "south", check=True).stdout
    assert "site:       south" in status and "not running" in status


def test_each_site_resumes_only_its_own_backlog_runs(tmp_path, pg_url):
    shared_root = tmp_path / "archive-mount"
    north, south = (_site(tmp_path / n, shared_root, pg_url, n) for n in ("north", "south"))
    invoke_cli(north.path, "db", "upgrade", check=True)
    tree = tmp_path / "old-charts"
    tree.mkdir()
    north_journal, south_journal = Journal.for_config(north), Journal.for_config(south)
    run = north_journal.new_run(tree)
    assert run.run_id.startswith("north-")
    assert north_journal.unfinished_run(tree) == run and south_journal.unfinished_run(tree) is None
    refused = invoke_cli(south.path, "backlog", "--resume", run.run_id)
    assert refused.returncode == 1 and "is another site's" in refused.stderr
