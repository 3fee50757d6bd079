"""Backlog runs: a nested tree of scans, batches, page images and bad files, taken in once,
killed and resumed, and spread over a Dask cluster, always giving the same archive."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.archive.index import open_index
from pipeline.core.config import load_config
from pipeline.runs.backlog import recover
from pipeline.runs.journal import Journal, Result
from pipeline.runs.walk import walk
from pipeline.samples import labels
from pipeline.samples import scans as samples
from tests.conftest import ROOT, run_cli, scanned, write_config

PDF_AND_IMAGES = frozenset({".pdf", ".tif", ".tiff", ".png", ".jpg", ".jpeg"})


def _page(doc, k=0, seed=0):
    return samples.render_page(list(doc.pages[k]), dpi=300, rng=random.Random(seed))


def _make(rng, doc_type, patient, **kw):
    return samples.make_document(rng, doc_type, patient, distractors=False, **kw)


def build_tree(root: Path) -> dict:
    """A backlog like a records room's: folders by year, a batch, faxes as TIFF, junk, a copy."""
    rng = random.Random(41)
    patients = [samples.make_patient(rng) for _ in range(6)]
    kinds = ["discharge_summary", "lab_result", "consent_form", "progress_note", "radiology_report", "referral_letter"]
    (root / "2019" / "ward-a").mkdir(parents=True)
    (root / "2020" / "faxes").mkdir(parents=True)
    (root / "junk").mkdir()
    (root / ".thumbnails").mkdir()
    for i in range(3):
        scanned(root / "2019" / "ward-a" / f"chart-{i}.pdf", _make(rng, kinds[i], patients[i]), seed=i)
    sheet = labels.separator_sheet()
    batch = [_make(rng, kinds[3], patients[3]), _make(rng, kinds[4], patients[4])]
    samples.write_scanned_pdf(
        root / "2019" / "batch.pdf", [_page(batch[0]), sheet, _page(batch[1])], encoding="jpeg", dpi=(300, 300)
    )
    fax = [samples.fax_page(_page(_make(rng, kinds[5], patients[5], pages=2), k)) for k in range(2)]
    fax[0].save(
        root / "2020" / "faxes" / "fax-0001.tif",
        save_all=True,
        append_images=fax[1:],
        compression="group4",
        dpi=(204, 98),
    )
    _page(_make(rng, "lab_result", patients[0])).convert("L").save(
        root / "2020" / "photo.jpg", quality=90, dpi=(300, 300)
    )
    (root / "junk" / "notes.pdf").write_text("minutes of the records committee\n")
    (root / "junk" / "empty.pdf").write_bytes(b"")
    (root / "2020" / "copy-of-chart-0.pdf").write_bytes((root / "2019" / "ward-a" / "chart-0.pdf").read_bytes())
    (root / ".thumbnails" / "chart-0.pdf").write_bytes((root / "2019" / "ward-a" / "chart-0.pdf").read_bytes())
    return {"files": 9, "filed": 6, "failed": 2, "duplicate": 1, "skipped": 0}


def tree_digest(root: Path) -> dict[str, tuple[str, float]]:
    return {
        p.relative_to(root).as_posix(): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def archive_snapshot(config_file: Path) -> dict[str, object]:
    """What a clerk would see: every archived file by path, PDFs by content, sidecars by their facts."""
    data = config_file.parent / "data"
    snapshot: dict[str, object] = {}
    for folder in ("archive", "review", "failed"):
        for path in sorted((data / folder).rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(data).as_posix()
            if path.name.endswith(".reason.json"):
                snapshot[relative] = {k: v for k, v in json.loads(path.read_text()).items() if k != "at"}
            elif path.suffix == ".json":
                side = json.loads(path.read_text())
                snapshot[relative] = {
                    k: side[k] for k in ("doc_id", "status", "mrn", "doc_type", "pages", "sha256", "source")
                }
            else:
                snapshot[relative] = hashlib.sha256(path.read_bytes()).hexdigest()
    return snapshot


def indexed_ids(config_file: Path) -> list[str]:
    config = load_config(config_file)
    index = open_index(config)
    try:
        return sorted(r.doc_id for r in index.stored())
    finally:
        index.close()


def backlog_config(folder: Path, **backlog) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return write_config(folder, backlog={"progress_seconds": 1, **backlog})


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("backlog") / "charts"
    expected = build_tree(root)
    return root, expected


@pytest.fixture(scope="module")
def reference(tree, tmp_path_factory) -> dict:
    """One uninterrupted run over the tree: the archive every other way must reproduce."""
    root, _ = tree
    config = backlog_config(tmp_path_factory.mktemp("reference"))
    before = tree_digest(root)
    result = run_cli(config, "backlog", str(root), "--report", str(config.parent / "report.json"))
    return {
        "config": config,
        "result": result,
        "before": before,
        "report": json.loads((config.parent / "report.json").read_text()),
        "snapshot": archive_snapshot(config),
        "indexed": indexed_ids(config),
    }


def test_a_tree_is_taken_in_completely_and_reported(tree, reference):
    root, expected = tree
    result, report = reference["result"], reference["report"]
    assert result.returncode == 2, result.stderr  # two bad files were set aside
    assert report["complete"] is True
    assert report["files"] == expected["files"]
    assert report["counts"] == {"filed": expected["filed"], "review": 0, "failed": 2, "duplicate": 1, "skipped": 0}
    assert report["pages"] == 1 * 3 + 3 + 2 + 1  # three charts, a batch with its separator, a fax, a photo
    assert sorted(f["file"] for f in report["failed"]) == ["junk/empty.pdf", "junk/notes.pdf"]
    assert all(f["reason"] for f in report["failed"])
    assert "run " in result.stdout and "complete" in result.stdout
    # The batch was cut in two, the fax TIFF and the photo filed: 3 + 2 + 1 + 1 documents.
    sidecars = [k for k in reference["snapshot"] if k.startswith("archive/") and k.endswith(".json")]
    assert len(sidecars) == 7
    assert reference["indexed"] == sorted(reference["snapshot"][k]["doc_id"] for k in sidecars)
    # Sources untouched, the hidden folder never read.
    assert tree_digest(root) == reference["before"]
    assert not any(".thumbnails" in str(v) for v in reference["snapshot"].values())


def test_page_images_keep_their_resolution_and_source_name(reference):
    fax = next(
        v
        for k, v in reference["snapshot"].items()
        if k.endswith(".json") and isinstance(v, dict) and v.get("source", {}).get("file") == "2020/faxes/fax-0001.tif"
    )
    assert fax["pages"] == 2 and fax["status"] == "filed"


def _done_inputs(config: Path) -> int:
    db = config.parent / "data" / "backlog" / "journal.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return conn.execute("SELECT COUNT(*) FROM inputs WHERE state = 'done'").fetchone()[0]
        except sqlite3.OperationalError:
            return 0


def test_a_run_killed_part_way_resumes_to_the_same_archive(tree, reference, tmp_path):
    root, expected = tree
    # Commits every step, so inputs are done one by one and the kill lands part way.
    config = backlog_config(tmp_path / "killed", commit_seconds=0.1)
    command = [sys.executable, "-m", "pipeline", "--config", str(config), "backlog", str(root)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    while _done_inputs(config) < 3 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert process.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert 3 <= _done_inputs(config) < expected["files"]
    resumed = run_cli(config, "backlog", str(root), "--report", str(tmp_path / "report.json"))
    assert resumed.returncode == 2, resumed.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["counts"] == reference["report"]["counts"]
    assert report["pages"] == reference["report"]["pages"]
    assert archive_snapshot(config) == reference["snapshot"]
    assert indexed_ids(config) == reference["indexed"]
    assert tree_digest(root) == reference["before"]


def test_a_clean_stop_resumes_by_run_id(tree, reference, tmp_path):
    root, _ = tree
    config = backlog_config(tmp_path / "stopped")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "--config", str(config), "backlog", str(root)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    while _done_inputs(config) < 1 and process.poll() is None:
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 130, err
    run_id = err.split("medarchive backlog --resume ")[1].split()[0]
    assert "stopped" in out
    resumed = run_cli(config, "backlog", "--resume", run_id)
    assert resumed.returncode == 2, resumed.stderr
    assert archive_snapshot(config) == reference["snapshot"]
    runs = run_cli(config, "backlog", "--runs", check=True).stdout
    assert run_id in runs and "complete" in runs


def test_dask_local_cluster_gives_the_same_archive(tree, reference, tmp_path):
    distributed = pytest.importorskip("distributed")
    root, _ = tree
    config = backlog_config(tmp_path / "dask")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        result = run_cli(config, "backlog", str(root), "--scheduler", cluster.scheduler_address)
    assert result.returncode == 2, result.stderr
    assert archive_snapshot(config) == reference["snapshot"]
    assert indexed_ids(config) == reference["indexed"]


def test_an_unreachable_scheduler_is_one_clear_line(tree, tmp_path):
    root, _ = tree
    (tmp_path / "nodask").mkdir()
    config = write_config(tmp_path / "nodask", backlog={"scheduler_timeout_seconds": 2})
    result = run_cli(config, "backlog", str(root), "--scheduler", "tcp://127.0.0.1:9")
    assert result.returncode == 1
    assert result.stderr.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:9")
    assert "Traceback" not in result.stderr
    assert "20" not in run_cli(config, "backlog", "--runs").stdout  # no run was begun


def test_a_tree_inside_the_data_root_is_refused(tmp_path):
    config = backlog_config(tmp_path)
    (tmp_path / "data" / "archive").mkdir(parents=True, exist_ok=True)
    result = run_cli(config, "backlog", str(tmp_path / "data" / "archive"))
    assert result.returncode == 1 and "inside the data root" in result.stderr


def test_walk_is_lazy_sorted_and_skips_hidden_and_excluded(tmp_path):
    for name in ["b/2.pdf", "b/1.PDF", "a.tif", ".hidden/x.pdf", "b/.x.pdf", "notes.txt", "data/archive/y.pdf"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "loop").symlink_to(tmp_path, target_is_directory=True)
    found = [p.relative_to(tmp_path).as_posix() for p in walk(tmp_path, PDF_AND_IMAGES, frozenset({tmp_path / "data"}))]
    assert found == ["a.tif", "b/1.PDF", "b/2.pdf"]


def test_recovery_finishes_complete_filings_and_clears_partial_ones(reference, tmp_path):
    source = reference["config"].parent / "data"
    config_file = backlog_config(tmp_path)
    data = tmp_path / "data"
    data.mkdir(mode=0o700)
    subprocess.run(["cp", "-a", str(source / "archive"), str(data / "archive")], check=True)
    config = load_config(config_file)
    sidecars = sorted((data / "archive").rglob("*.json"))
    whole, partial = sidecars[0], sidecars[1]
    partial.unlink()  # the crash came while the sidecar was being written
    half_written = partial.with_name(f".tmp-4242-{partial.name}")
    half_written.write_text('{"doc_id": ')
    journal = Journal(data / "journal.sqlite")
    run = journal.new_run(tmp_path / "charts")
    for name, sidecar in (("whole.pdf", whole), ("partial.pdf", partial)):
        journal.started(run.run_id, name)
        journal.filing(run.run_id, name, [sidecar.with_suffix(".pdf").relative_to(data).as_posix()], 1)
    index = open_index(config)
    assert recover(config, index, journal, run) == 1
    assert journal.state(run.run_id, "whole.pdf") == "done"
    assert journal.state(run.run_id, "partial.pdf") == "started"
    assert not partial.with_suffix(".pdf").exists() and not half_written.exists()
    assert [r.doc_id for r in index.stored()] == [json.loads(whole.read_text())["doc_id"]]
    assert journal.counts(run.run_id)["filed"] == 1
    index.close()
    journal.close()


def test_journal_keeps_states_across_connections(tmp_path):
    journal = Journal(tmp_path / "j.sqlite")
    run = journal.new_run(tmp_path)
    journal.started(run.run_id, "a.pdf")
    journal.done(run.run_id, "a.pdf", Result("failed", [], "failed/x", "not a PDF", 0, 0.0))
    journal.started(run.run_id, "b.pdf")
    journal.close()
    again = Journal(tmp_path / "j.sqlite")
    assert again.unfinished_run(tmp_path).run_id == run.run_id
    assert again.state(run.run_id, "a.pdf") == "done"
    assert again.state(run.run_id, "b.pdf") == "started"
    assert again.counts(run.run_id) == {"filed": 0, "review": 0, "failed": 1, "duplicate": 0, "skipped": 0}
    again.finish(run.run_id)
    assert again.unfinished_run(tmp_path) is None
