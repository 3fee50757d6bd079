"""The review workflow through the CLI: list, assign, reassign; archive, history and index move together."""

from __future__ import annotations

import json
import random
import shutil

from pipeline.archive.index import open_index
from pipeline.archive.store import iter_sidecars
from pipeline.core.config import load_config
from pipeline.records.reconcile import reconcile_index
from pipeline.samples import scans as samples
from tests.conftest import born_digital, document, invoke_cli, json_lines


def queued_document(tmp_path, config_path) -> str:
    doc = samples.make_document(random.Random(5), "consultation", None)
    born_digital(tmp_path / "no-mrn.pdf", doc)
    invoke_cli(config_path, "ingest", str(tmp_path / "no-mrn.pdf"), check=True)
    rows = json_lines(invoke_cli(config_path, "review", "list", "--json", check=True).stdout)
    assert [r["review_reason"] for r in rows] == ["no MRN found on any page"]
    return rows[0]["doc_id"]


def test_assign_files_the_document_and_records_who_and_what(tmp_path, config_path):
    doc_id = queued_document(tmp_path, config_path)
    done = invoke_cli(
        config_path,
        "--user",
        "jsmith",
        "review",
        "assign",
        doc_id,
        "--mrn",
        "1234567",
        "--type",
        "progress_note",
        check=True,
    )
    assert "archive/1234567/" in done.stdout
    shown = json.loads(invoke_cli(config_path, "show", doc_id, "--json", check=True).stdout)
    assert (shown["status"], shown["mrn"], shown["doc_type"]) == ("filed", "1234567", "progress_note")
    last = shown["history"][-1]
    assert (last["by"], last["action"]) == ("jsmith", "review.assign")
    assert last["from"] == {"mrn": None, "doc_type": "consultation", "status": "review"}
    assert json_lines(invoke_cli(config_path, "review", "list", "--json").stdout) == []
    hits = json_lines(invoke_cli(config_path, "search", "", "--mrn", "1234567", "--json", check=True).stdout)
    assert [h["doc_id"] for h in hits] == [doc_id]
    assert json_lines(invoke_cli(config_path, "search", "", "--status", "review", "--json").stdout) == []
    corrections = json_lines((tmp_path / "data" / "corrections.jsonl").read_text())
    assert corrections[0]["to"] == {"mrn": "1234567", "doc_type": "progress_note"}
    audit = json_lines(invoke_cli(config_path, "audit", "--action", "review.assign", "--json", check=True).stdout)
    assert audit[0]["user"] == "jsmith" and audit[0]["doc_ids"] == [doc_id]


def test_reassign_moves_a_misfiled_document(tmp_path, config_path):
    doc = document(8, "lab_result")
    born_digital(tmp_path / "lab.pdf", doc)
    invoke_cli(config_path, "ingest", str(tmp_path / "lab.pdf"), check=True)
    (row,) = json_lines(invoke_cli(config_path, "list", "--json", check=True).stdout)
    assert row["mrn"] == doc.patient.mrn
    done = invoke_cli(
        config_path, "reassign", row["doc_id"], "--mrn", "7654321", "--reason", "label of another patient"
    )
    assert done.returncode == 0, done.stderr
    (moved,) = json_lines(invoke_cli(config_path, "list", "--json", check=True).stdout)
    assert moved["mrn"] == "7654321" and moved["doc_id"] == row["doc_id"]
    assert not (tmp_path / "data" / "archive" / doc.patient.mrn / row["path"].rsplit("/", 1)[1]).exists()
    assert json_lines(invoke_cli(config_path, "search", "", "--mrn", doc.patient.mrn, "--json").stdout) == []
    assert len(json_lines(invoke_cli(config_path, "search", "", "--mrn", "7654321", "--json").stdout)) == 1
    shown = json.loads(invoke_cli(config_path, "show", row["doc_id"], "--json").stdout)
    assert shown["history"][-1]["reason"] == "label of another patient"


def test_reassign_refuses_without_reason_and_bad_targets(tmp_path, config_path):
    doc_id = queued_document(tmp_path, config_path)
    wrong = invoke_cli(config_path, "reassign", doc_id, "--mrn", "1234567", "--reason", "x")
    assert wrong.returncode == 1 and "use review assign" in wrong.stderr
    bad_mrn = invoke_cli(config_path, "review", "assign", doc_id, "--mrn", "12AB")
    assert bad_mrn.returncode == 1 and "does not look like an MRN" in bad_mrn.stderr
    bad_type = invoke_cli(config_path, "review", "assign", doc_id, "--mrn", "1234567", "--type", "recipe")
    assert bad_type.returncode == 1 and "unknown document type" in bad_type.stderr
    unknown = invoke_cli(config_path, "show", "0123456789abcdef-1")
    assert unknown.returncode == 1 and "no document with id" in unknown.stderr


def test_a_move_cut_short_is_finished_by_reconcile(tmp_path, config_path):
    doc_id = queued_document(tmp_path, config_path)
    config = load_config(config_path)
    (old_json,) = config.review_dir.glob("*.json")
    invoke_cli(config_path, "review", "assign", doc_id, "--mrn", "1234567", check=True)
    # Put the old pair back, as if the move had crashed before removing it.
    new_json = next(config.archive_dir.glob("1234567/*.json"))
    shutil.copy(new_json.with_suffix(".pdf"), old_json.with_suffix(".pdf"))
    queued = json.loads(new_json.read_text())
    queued["history"] = queued["history"][:1]
    old_json.write_text(json.dumps(queued))
    reconcile_index(config, open_index(config))
    assert [s.mrn for s in iter_sidecars(config)] == ["1234567"]
    assert not old_json.exists() and not old_json.with_suffix(".pdf").exists()


def test_a_document_is_found_where_the_index_says_and_by_scanning_when_it_lags(tmp_path, config_path, monkeypatch):
    from pipeline.archive import store as archive

    doc_id = queued_document(tmp_path, config_path)
    config = load_config(config_path)
    index = open_index(config)
    with monkeypatch.context() as patched:
        patched.setattr(archive, "iter_sidecar_paths", lambda config: iter(()))  # no scanning allowed
        assert archive.find_sidecar(config, doc_id, index).doc_id == doc_id
    index.delete([doc_id])  # the index lags: only the scan finds it now
    assert archive.find_sidecar(config, doc_id, index).doc_id == doc_id
    index.close()
