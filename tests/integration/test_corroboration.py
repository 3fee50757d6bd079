"""Issue #25 end to end, with the product's default (filing.second_witness on, no index):
a page read once waits for a clerk; a repeated MRN files and says why; once filed, the
patient's archive history is the witness for a later one-page document."""

import json

from tests.conftest import document, invoke_cli, json_lines, scanned, write_config


def test_second_witness_end_to_end(tmp_path):
    config = write_config(tmp_path, filing={"second_witness": True})
    once = document(7, pages=1)
    twice = document(7, pages=2)
    inputs = tmp_path / "in"
    inputs.mkdir()
    scanned(inputs / "a-once.pdf", once, seed=1)
    scanned(inputs / "b-twice.pdf", twice, seed=2)
    invoke_cli(config, "ingest", str(inputs), check=True)
    rows = {r["source"]["file"]: r for r in json_lines(invoke_cli(config, "list", "--json", check=True).stdout)}
    assert rows["a-once.pdf"]["status"] == "review"
    assert "nothing corroborates it" in rows["a-once.pdf"]["review_reason"]
    assert (rows["b-twice.pdf"]["status"], rows["b-twice.pdf"]["mrn"]) == ("filed", twice.patient.mrn)
    shown = invoke_cli(config, "show", rows["b-twice.pdf"]["doc_id"], check=True).stdout
    assert "corroborated: second_page" in shown
    sidecar = json.loads(invoke_cli(config, "show", rows["b-twice.pdf"]["doc_id"], "--json", check=True).stdout)
    assert sidecar["corroboration"] == ["second_page"]
    # The same patient's next one-page document: the filed one is its witness.
    later = tmp_path / "later"
    later.mkdir()
    scanned(later / "c-later.pdf", document(7, pages=1, doc_type="progress_note"), seed=3)
    invoke_cli(config, "ingest", str(later), check=True)
    rows = {r["source"]["file"]: r for r in json_lines(invoke_cli(config, "list", "--json", check=True).stdout)}
    assert (rows["c-later.pdf"]["status"], rows["c-later.pdf"]["mrn"]) == ("filed", twice.patient.mrn)
    shown = invoke_cli(config, "show", rows["c-later.pdf"]["doc_id"], check=True).stdout
    assert "corroborated: archive:" in shown
