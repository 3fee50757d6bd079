"""`medarchive classifier train/status`, the nightly retrain and what clerks teach it.

The archive is written directly as text-only sidecars (no OCR): the classifier reads
nothing else.
"""

from __future__ import annotations

import json
import logging
import random
from datetime import datetime, timedelta

import pytest
from click.testing import CliRunner

from pipeline.archive.sidecar import (
    HistoryEvent,
    PageRecord,
    Sidecar,
    SourceRef,
    write_sidecar,
)
from pipeline.archive.store import sidecar_path
from pipeline.cli.main import cli
from pipeline.core.config import load_config
from pipeline.core.fsutil import ensure_dir
from pipeline.core.models import PageText
from pipeline.identify import model_store
from pipeline.identify.documents import SourceFacts, build_documents
from pipeline.identify.training import (
    NotEnoughExamples,
    labelled_set,
    maybe_retrain,
    train_and_store,
)
from pipeline.samples.typed_texts import make_text
from tests.conftest import write_config

TYPES = ("operative_report", "consultation", "progress_note", "lab_result")
MRN = "1234567"


def medarchive(config_path, *args: str) -> str:
    """The CLI in this process (the subprocess costs seconds of imports a call); exit 0 expected."""
    result = CliRunner().invoke(cli, ["--config", str(config_path), *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def archive_text(
    config, n: int, doc_type: str, pages: tuple[str, ...], cues: tuple[str, ...], confidence: float = 0.9
) -> str:
    doc_id = f"{n:016x}-1"
    folder = ensure_dir(config.archive_dir / MRN)
    pdf = folder / f"undated_{doc_type}_{doc_id}.pdf"
    pdf.write_bytes(b"%PDF-1.4\n% placeholder: the classifier reads only the sidecar\n")
    write_sidecar(
        sidecar_path(pdf),
        Sidecar(
            doc_id=doc_id,
            status="filed",
            doc_type=doc_type,
            path=pdf.relative_to(config.root).as_posix(),
            sha256="0" * 64,
            source=SourceRef(f"in-{n}.pdf", f"{n:064x}", (1,)),
            mrn=MRN,
            type_confidence=confidence,
            type_cues=cues,
            page_texts=tuple(PageRecord(i + 1, text, "text-layer") for i, text in enumerate(pages)),
            history=(HistoryEvent("2026-01-01T00:00:00+00:00", "test", "filed"),),
        ),
    )
    return doc_id


@pytest.fixture
def archive(tmp_path):
    """40 titled documents of four types (labelled), 4 the model typed and 4 keywords typed (not)."""
    path = write_config(tmp_path, classification={"min_examples": 30, "min_examples_per_type": 3})
    config = load_config(path)
    ensure_dir(config.root)
    rng = random.Random(7)
    ids: dict[str, list[str]] = {"titled": [], "model": [], "keywords": []}
    for n in range(48):
        doc_type = TYPES[n % 4]
        doc = make_text(rng, doc_type, untitled=0.0)
        kind = "titled" if n < 40 else "model" if n < 44 else "keywords"
        cues = {"titled": (f"title:{doc.title}",), "model": ("model:0.91",), "keywords": ("keyword:plan",)}[kind]
        ids[kind].append(archive_text(config, n, doc_type, doc.pages, cues, 0.91))
    return path, config, ids


def test_cold_start_rules_alone_until_enough_examples(tmp_path):
    path = write_config(tmp_path)
    assert "none yet; the rules alone decide (0 labelled" in medarchive(path, "classifier", "status")
    # A MedarchiveError: main() prints its message on one line and exits 1.
    refused = CliRunner().invoke(cli, ["--config", str(path), "classifier", "train"])
    assert isinstance(refused.exception, NotEnoughExamples)
    assert str(refused.exception).startswith("0 labelled document(s)")
    assert not model_store.model_path(load_config(path)).exists()


def test_train_and_status_through_the_cli(archive):
    path, config, ids = archive
    trained = json.loads(medarchive(path, "classifier", "train", "--json"))
    figures = trained["figures"]
    assert figures["examples"] == 40 and figures["per_type"] == dict.fromkeys(sorted(TYPES), 10)
    assert 0 <= figures["accuracy"] <= 1 and 0 <= figures["macro_f1"] <= 1
    assert model_store.model_path(config).stat().st_mode & 0o777 == 0o600
    status = json.loads(medarchive(path, "classifier", "status", "--json"))
    assert status["usable"] and status["labelled_now"] == 40 and not status["changed_since"]
    assert status["training_hash"] == labelled_set(config).digest
    text = medarchive(path, "classifier", "status")
    assert "cross-validated: accuracy" in text and "operative_report" in text
    assert "type source: model, 0.91" in medarchive(path, "show", ids["model"][0])
    assert "type source: title: " in medarchive(path, "show", ids["titled"][0])


def test_a_clerks_correction_changes_the_next_training_set(archive):
    path, config, ids = archive
    before = labelled_set(config)
    doc_id = ids["keywords"][0]  # typed by keywords: not an example until a clerk types it
    medarchive(
        path,
        "--user",
        "jsmith",
        "reassign",
        doc_id,
        "--mrn",
        MRN,
        "--type",
        "consultation",
        "--reason",
        "it is a consultation",
    )
    after = labelled_set(config)
    assert after.digest != before.digest and len(after.examples) == len(before.examples) + 1
    assert [e.doc_type for e in after.examples if e.doc_id == doc_id] == ["consultation"]
    assert "type source: clerk: jsmith" in medarchive(path, "show", doc_id)


def test_the_nightly_retrain_runs_once_a_day_and_only_when_the_set_changed(archive):
    _, config, _ = archive
    night = datetime(2026, 3, 2, 2, 30)
    assert "retrained on 40 documents" in maybe_retrain(config, night)
    model = model_store.model_path(config)
    first = model.stat().st_mtime_ns
    assert maybe_retrain(config, night + timedelta(hours=3)) is None  # not due again before tomorrow
    assert maybe_retrain(config, night + timedelta(days=1)) is None  # due, but nothing changed
    assert model.stat().st_mtime_ns == first
    archive_text(config, 99, "lab_result", make_text(random.Random(1), "lab_result").pages, ("title:Lab Report",))
    assert "retrained on 41 documents" in maybe_retrain(config, night + timedelta(days=2))


def test_too_few_of_a_type_or_in_all_is_refused_with_the_reason(archive):
    _, config, _ = archive
    strict = config.model_copy(
        update={"classification": config.classification.model_copy(update={"min_examples": 500})}
    )
    with pytest.raises(NotEnoughExamples, match="min_examples = 500"):
        train_and_store(strict)


def test_filing_uses_the_trained_model_and_a_broken_one_falls_back_to_the_rules(archive, caplog):
    _, config, _ = archive
    train_and_store(config)
    untitled = make_text(random.Random(11), "lab_result", untitled=1.0)
    pages = [PageText(n + 1, text, "text-layer") for n, text in enumerate(untitled.pages)]
    source = SourceFacts("in.pdf", "ab" * 32)
    (doc,) = build_documents(pages, source, config, None)
    assert doc.classification.cues[0].startswith("model:") and doc.classification.doc_type == "lab_result"
    model_store.model_path(config).write_bytes(b"not a model")
    with caplog.at_level(logging.WARNING, logger="medarchive.classifier"):
        (doc,) = build_documents(pages, source, config, None)
        build_documents(pages, source, config, None)
    assert not doc.classification.cues[0].startswith("model:")
    assert len([r for r in caplog.records if "ignored" in r.message]) == 1
