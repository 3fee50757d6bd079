"""Damaged paper (issue 25) end to end, on a small seeded set: toner streaks, a copy of a
copy, faint print, pen and a fold. Never filed under the wrong patient; read a second time
where the first reading was poor, and a clean page never."""

from __future__ import annotations

import json
import random
from pathlib import Path

from pipeline.samples import damage
from pipeline.samples import scans as samples
from tests.conftest import document, invoke_cli, json_lines, scanned, write_config

DAMAGE = (("streaks", "photocopy"), ("streaks", "low_ink", "lighting"), ("streaks", "pen", "fold"))


def test_damaged_pages_are_filed_right_or_held_back_never_misfiled(tmp_path: Path) -> None:
    inbox = tmp_path / "in"
    inbox.mkdir()
    config = write_config(tmp_path)
    rng = random.Random(25)
    truth = {}
    for n, kinds in enumerate(DAMAGE):
        doc = document(2500 + n, samples.DOC_TYPES[n * 3], pages=1)
        page = samples.render_page(list(doc.pages[0]), rng=rng, skew_deg=0.4, heading_lines=doc.heading_lines)
        damaged, applied = damage.damage(page, rng, kinds)
        assert set(applied) == set(kinds)
        samples.write_scanned_pdf(inbox / f"damaged-{n}.pdf", [damaged], encoding="jpeg", dpi=(300, 300))
        truth[f"damaged-{n}.pdf"] = doc
    clean = document(2599, "progress_note", pages=1)
    scanned(inbox / "clean.pdf", clean, skew_deg=0.3, heading_lines=clean.heading_lines)
    truth["clean.pdf"] = clean

    invoke_cli(config, "ingest", str(inbox), check=True)
    rows = {r["source"]["file"]: r for r in json_lines(invoke_cli(config, "list", "--json", check=True).stdout)}
    assert set(rows) == set(truth)
    for name, doc in truth.items():
        row = rows[name]
        if row["status"] == "filed":
            assert row["mrn"] == doc.patient.mrn, f"{name} misfiled"
        else:
            assert row["review_reason"], f"{name} in review without a reason"
        pages = json.loads(invoke_cli(config, "show", row["doc_id"], "--json", check=True).stdout)["page_texts"]
        if name == "clean.pdf":
            assert row["status"] == "filed"
            assert "second_look" not in pages[0]  # a clean page pays nothing
        else:
            look = pages[0]["second_look"]
            assert "streak" in look["why"] and look["won"] in ("first", "cleaned") and look["seconds"] > 0
            assert pages[0]["text"].strip()
