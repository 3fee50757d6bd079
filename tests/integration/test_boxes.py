"""Paper originals in off-site boxes, end to end: label sheets read in real scans (and one that is
not), a box that cannot close while a document waits in review, the manifest, shipping, recall,
destruction only after the keep period and never under a legal hold, written to the chained log."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import pikepdf
import pytest

from pipeline.archive.audit import AuditLog
from pipeline.archive.dataroot import open_data_root
from pipeline.archive.store import iter_sidecars
from pipeline.core.config import load_config
from pipeline.paper import boxes as paper
from pipeline.records.retention import destruction_log
from pipeline.samples import scans as samples
from pipeline.samples.box_labels import with_box_label
from tests.conftest import invoke_cli, write_config
from tests.ehr_servers import file_document

BOX = "BOX-000123"


def test_label_sheets_in_scanned_batches(tmp_path: Path):
    config_path = write_config(tmp_path)
    inputs = tmp_path / "in"
    written = samples.write_sample_set(inputs, count=2, seed=3, box=BOX)
    covered = inputs / "covered.pdf"
    samples.write_sample_pdf(covered, samples.make_corpus(3, seed=9)[0], "scan", seed=1)
    with_box_label(covered, "BOX-000999", covered=True)
    result = invoke_cli(config_path, "ingest", str(inputs))
    assert result.returncode == 0, result.stderr
    config = load_config(config_path)
    by_file = {}
    for sidecar in iter_sidecars(config):
        by_file.setdefault(sidecar.source.file, []).append(sidecar)
    first = by_file[written[0][0].name]
    assert {(s.paper.box, s.paper.how) for s in first} == {(BOX, "label sheet")}
    # the label sheet is no page of any document: the documents hold exactly the sample's pages
    assert sum(s.pages for s in first) == len(written[0][1].pages)
    assert all(1 not in s.source.pages for s in first)
    assert all(s.paper is None for s in by_file[written[1][0].name])
    assert {(s.paper.box, s.paper.how) for s in by_file["covered.pdf"]} == {(None, "label unreadable")}

    listed = invoke_cli(config_path, "boxes", "list", check=True)
    assert BOX in listed.stdout and "box unknown: 1 document(s)" in listed.stdout
    shown = invoke_cli(config_path, "show", first[0].doc_id, check=True)
    assert f"paper original in box {BOX} (the box is open" in shown.stdout


@pytest.fixture
def config(tmp_path: Path):
    cfg = load_config(write_config(tmp_path, retention={"legal_holds": ["30000009"]}, boxes={"keep_paper_days": 90}))
    open_data_root(cfg)
    return cfg


def test_a_box_life_from_open_to_destroyed(config):
    filed = [file_document(config, n, mrn="30000001") for n in (1, 2)]
    waiting = file_document(config, 3, mrn=None)
    assigned = paper.assign(config, BOX, [s.doc_id for s in [*filed, waiting]], user="clerk")
    with pytest.raises(paper.BoxError, match=rf"still in review: {waiting.doc_id}"):
        paper.close(config, BOX, user="clerk")
    with pytest.raises(paper.BoxError, match="close it before it is shipped"):
        paper.ship(config, BOX, vendor="Iron Vault", user="clerk")
    (config.root / waiting.path).with_suffix(".json").unlink()  # resolved: filed elsewhere in real life
    manifest = paper.close(config, BOX, user="clerk")
    assert manifest.stat().st_mode & 0o777 == 0o600
    with pikepdf.open(manifest) as pdf:
        assert len(pdf.pages) == 1
    with pytest.raises(paper.BoxError, match="documents go only into an open box"):
        paper.assign(config, BOX, [filed[0].doc_id], user="clerk")
    paper.ship(config, BOX, vendor="Iron Vault", user="clerk")
    line = paper.paper_line(config, assigned[0])
    assert line is not None and line.startswith(f"paper original in box {BOX}, at Iron Vault since ")

    scanned = date.fromisoformat(filed[0].since[:10])
    with pytest.raises(paper.BoxError, match="paper is kept 90 days after the last scan"):
        paper.destroy(config, BOX, user="clerk", today=scanned + timedelta(days=89))
    paper.recall(config, BOX, reason="subpoena", requested_by="legal office", user="clerk")
    with pytest.raises(paper.BoxError, match="recalled"):
        paper.destroy(config, BOX, user="clerk", today=scanned + timedelta(days=200))
    paper.ship(config, BOX, vendor="Iron Vault", user="clerk")
    paper.destroy(config, BOX, user="clerk", today=scanned + timedelta(days=90))

    entries = list(destruction_log(config).entries())
    assert [(e["action"], e["box"], sorted(e["documents"])) for e in entries] == [
        ("paper destroyed", BOX, sorted(s.doc_id for s in filed))
    ]
    assert destruction_log(config).verify().ok
    actions = [e["action"] for e in AuditLog.for_config(config).entries() if e["action"].startswith("box.")]
    assert actions == ["box.assign", "box.close", "box.ship", "box.recall", "box.ship", "box.destroy"]
    history = [e.action for e in paper.view(config, BOX).events]
    assert history == ["box.assign", "box.close", "box.ship", "box.recall", "box.ship", "box.destroy"]


def test_paper_sealed_in_a_box_is_not_moved_to_another_and_unknown_documents_are_named(config):
    doc = file_document(config, 5, mrn="30000001")
    paper.assign(config, BOX, [doc.doc_id], user="clerk")
    paper.close(config, BOX, user="clerk")
    with pytest.raises(paper.BoxError, match=rf"{doc.doc_id} is in box {BOX}, which is closed"):
        paper.assign(config, "BOX-000777", [doc.doc_id], user="clerk")
    assert [d.doc_id for d in paper.view(config, BOX).documents] == [doc.doc_id]
    paper.ship(config, BOX, vendor="Iron Vault", user="clerk")
    paper.recall(config, BOX, reason="misfiled paper", requested_by="records office", user="clerk")
    paper.assign(config, "BOX-000777", [doc.doc_id], user="clerk")  # back on site: it may be taken out
    assert [d.doc_id for d in paper.view(config, "BOX-000777").documents] == [doc.doc_id]

    unknown = invoke_cli(config.path, "boxes", "assign", "BOX-000777", "0123456789abcdef-1")
    assert unknown.returncode == 1 and "no document with id 0123456789abcdef-1" in unknown.stderr
    missing = invoke_cli(config.path, "boxes", "show", "BOX-000888")
    assert missing.returncode == 1 and "no box BOX-000888" in missing.stderr
    for action in (["close"], ["ship", "--to", "Iron Vault"], ["recall", "--reason", "x", "--requested-by", "y"]):
        refused = invoke_cli(config.path, "boxes", action[0], "BOX-000888", *action[1:])
        assert refused.returncode == 1 and "BOX-000888" in refused.stderr, refused.stderr


def test_a_legal_hold_keeps_the_box_and_the_cli_says_why(config):
    held = file_document(config, 4, mrn="30000009")
    invoke_cli(config.path, "boxes", "assign", "BOX-000555", held.doc_id, check=True)
    invoke_cli(config.path, "boxes", "close", "BOX-000555", check=True)
    invoke_cli(config.path, "boxes", "ship", "BOX-000555", "--to", "Iron Vault", check=True)
    refused = invoke_cli(config.path, "boxes", "destroy", "BOX-000555", "--confirm")
    assert refused.returncode == 1
    assert "legal hold covers MRN 30000009" in refused.stderr
    assert invoke_cli(config.path, "boxes", "destroy", "BOX-000555").returncode != 0  # no --confirm
    bad = invoke_cli(config.path, "boxes", "assign", "CRATE-1", held.doc_id)
    assert bad.returncode == 1 and "is not a box label" in bad.stderr
    for action in (
        ["ship", "CRATE-1", "--to", "Iron Vault"],
        ["recall", "CRATE-1", "--reason", "x", "--requested-by", "y"],
    ):
        misnamed = invoke_cli(config.path, "boxes", *action)
        assert misnamed.returncode == 1 and "'CRATE-1' is not a box label" in misnamed.stderr, misnamed.stderr
    row = json.loads(invoke_cli(config.path, "boxes", "show", "BOX-000555", "--json", check=True).stdout)
    assert (row["state"], row["vendor"], row["documents"]) == ("shipped", "Iron Vault", 1)
