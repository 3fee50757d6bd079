"""The learned document-type model: deterministic training, a file that is never unpickled,
titles first, the model's probability as the confidence, and where a type came from."""

from __future__ import annotations

import builtins
import logging
import random

import numpy as np
import pytest

from pipeline.archive.sidecar import HistoryEvent, Placement, Sidecar, SourceRef
from pipeline.core.config import ClassificationSettings, DocTypeRule, load_config
from pipeline.core.models import UNCLASSIFIED, Classification
from pipeline.identify import model_store
from pipeline.identify.classify import classify, review_reason
from pipeline.identify.learned import Example, train
from pipeline.identify.type_source import TypeSource, trusted_type, type_source
from pipeline.samples.typed_texts import make_text

TYPES = ("operative_report", "consultation", "progress_note", "lab_result")
SETTINGS = ClassificationSettings()


def examples(count: int, seed: int, untitled: float = 0.4) -> list[Example]:
    rng = random.Random(seed)
    docs = [make_text(rng, TYPES[n % len(TYPES)], untitled=untitled) for n in range(count)]
    return [Example(f"{seed:08x}{n:08x}-1", d.doc_type, d.pages) for n, d in enumerate(docs)]


@pytest.fixture(scope="module")
def trained():
    return train(examples(80, seed=1), min_per_type=3)


class Fixed:
    """A stand-in model that always answers the same."""

    def __init__(self, *ranked: tuple[str, float]) -> None:
        self.ranked = list(ranked)

    def predict(self, texts):
        return self.ranked


def test_training_is_deterministic_and_learns(trained):
    model, figures = trained
    again, figures_again = train(examples(80, seed=1), min_per_type=3)
    assert np.array_equal(model.coef, again.coef) and model.vocabularies == again.vocabularies
    assert {**figures.to_json(), "seconds": 0} == {**figures_again.to_json(), "seconds": 0}
    assert figures.per_type == dict.fromkeys(sorted(TYPES), 20)
    held_out = examples(40, seed=2, untitled=1.0)  # no titles at all: the body decides
    right = sum(model.predict(e.texts)[0][0] == e.doc_type for e in held_out)
    assert right >= 36, f"{right} of 40 untitled documents typed right"


def test_types_with_too_few_examples_are_left_to_the_rules():
    data = examples(40, seed=3)
    rare = [e for e in data if e.doc_type != "lab_result"] + [e for e in data if e.doc_type == "lab_result"][:2]
    model, figures = train(rare, min_per_type=3)
    assert "lab_result" not in model.classes and figures.left_out == {"lab_result": 2}


def test_the_stored_model_predicts_as_trained_and_is_private(tmp_path, trained):
    config = load_config(_config(tmp_path))
    model, figures = trained
    path = model_store.save(config, model, figures, "abc123")
    assert path.stat().st_mode & 0o777 == 0o600
    stored = model_store.read(path)
    texts = examples(4, seed=9)
    assert np.allclose(
        stored.model.probabilities([e.texts for e in texts]), model.probabilities([e.texts for e in texts])
    )
    assert stored.training_hash == "abc123" and stored.figures == figures


def _config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data_root: data\n")
    return path


def test_a_corrupt_file_means_rules_only_with_one_warning(tmp_path, caplog):
    config = load_config(_config(tmp_path))
    model_store.model_dir(config).mkdir(parents=True)
    model_store.model_path(config).write_bytes(b"PK\x03\x04 not really a zip")
    model_store.model_path(config).chmod(0o600)
    with caplog.at_level(logging.WARNING, logger="medarchive.classifier"):
        assert model_store.current(config) is None
        assert model_store.current(config) is None
    assert len([r for r in caplog.records if "ignored" in r.message]) == 1


def test_a_model_from_another_scikit_learn_is_ignored(tmp_path, trained, caplog, monkeypatch):
    config = load_config(_config(tmp_path))
    model_store.save(config, *trained, "abc")
    monkeypatch.setattr(model_store, "_sklearn_version", lambda: "0.0.1")
    with caplog.at_level(logging.WARNING, logger="medarchive.classifier"):
        assert model_store.current(config) is None
    assert "scikit-learn" in caplog.text and "rules alone" in caplog.text


def test_a_file_holding_a_pickle_is_never_unpickled(tmp_path):
    class Boom:
        def __reduce__(self):
            return (exec, ("import builtins; builtins.medarchive_boom = True",))

    config = load_config(_config(tmp_path))
    model_store.model_dir(config).mkdir(parents=True)
    with open(model_store.model_path(config), "wb") as handle:
        np.savez(handle, header=np.array([Boom()], dtype=object))
    with pytest.raises(model_store.ModelUnusable):
        model_store.read(model_store.model_path(config))
    assert not hasattr(builtins, "medarchive_boom")


def test_a_file_others_can_write_is_ignored(tmp_path, trained):
    config = load_config(_config(tmp_path))
    path = model_store.save(config, *trained, "abc")
    path.chmod(0o666)
    with pytest.raises(model_store.ModelUnusable, match="others can write"):
        model_store.read(path)


def test_a_confident_title_decides_over_the_model():
    text = "Riverside General Hospital\nOPERATIVE REPORT\nPatient: DOE, JANE\n\nProcedure: appendectomy\n"
    result = classify([text], SETTINGS, Fixed(("consultation", 0.99), ("operative_report", 0.01)))
    assert result.doc_type == "operative_report" and result.cues[0] == "title:Operative Report"


def test_without_a_title_the_model_decides_with_its_probability():
    text = "Riverside General Hospital\nPatient: DOE, JANE\n\nThank you for asking me to see this patient.\n"
    result = classify([text], SETTINGS, Fixed(("consultation", 0.934), ("progress_note", 0.05)))
    assert (result.doc_type, result.confidence, result.cues[0]) == ("consultation", 0.934, "model:0.93")
    assert type_source(_sidecar(result)).label == "model, 0.93"


def test_below_min_confidence_the_model_leaves_it_unclassified():
    result = classify(["Some page\nwith words\n"], SETTINGS, Fixed(("consultation", 0.41), ("progress_note", 0.39)))
    assert result.doc_type == UNCLASSIFIED and result.cues[:2] == ("best:consultation", "model:0.41")


def test_a_type_may_send_its_uncertain_documents_to_review():
    settings = SETTINGS.model_copy(update={"types": {**SETTINGS.types, "consent_form": DocTypeRule(review_below=0.8)}})
    sure = classify(["text\n"], settings, Fixed(("consent_form", 0.95)))
    unsure = classify(["text\n"], settings, Fixed(("consent_form", 0.7)))
    assert review_reason(sure, settings) is None
    assert "consent_form at 0.70" in review_reason(unsure, settings)
    assert review_reason(classify(["text\n"], SETTINGS, Fixed(("consent_form", 0.7))), SETTINGS) is None


def _sidecar(found: Classification, status: str = "filed", history=()) -> Sidecar:
    return Sidecar(
        doc_id="0123456789abcdef-1",
        status=status,
        doc_type=found.doc_type,
        path="x.pdf",
        sha256="0" * 64,
        source=SourceRef("x.pdf", "1" * 64),
        type_confidence=found.confidence,
        type_cues=found.cues,
        history=tuple(history),
    )


def test_trusted_types_come_from_titles_barcodes_and_clerks_never_from_the_model():
    titled = _sidecar(Classification("operative_report", 0.9, ("title:Operative Note", "keyword:surgeon")))
    modelled = _sidecar(Classification("consultation", 0.97, ("model:0.97",)))
    keyworded = _sidecar(Classification("consultation", 0.8, ("keyword:consulted",)))
    assert type_source(titled).label == "title: Operative Note"
    assert trusted_type(titled) == "operative_report"
    assert trusted_type(modelled) is None and trusted_type(keyworded) is None
    assert trusted_type(_sidecar(Classification("lab_result", 1.0, ("barcode:lab_result",)))) == "lab_result"
    assert trusted_type(_sidecar(Classification("operative_report", 0.9, ("title:Operative Note",)), "review")) is None
    corrected = _sidecar(
        Classification("progress_note", 0.97, ("model:0.97",)),
        history=[
            HistoryEvent(
                "2026-01-01T00:00:00+00:00",
                "jsmith",
                "reassign",
                "wrong type",
                Placement("1234567", "consultation", "filed"),
                Placement("1234567", "progress_note"),
            )
        ],
    )
    assert type_source(corrected) == TypeSource("clerk", "jsmith") and trusted_type(corrected) == "progress_note"


def test_type_source_labels_read_back():
    for label in ("title: Operative Note", "model, 0.93", "clerk: jsmith", "barcode: DT-LAB", "keywords, 0.71"):
        assert TypeSource.parse(label).label == label
    assert TypeSource.parse("something else") is None


def test_prediction_counts_terms_as_training_did(trained):
    from pipeline.identify.learned import BLOCKS, _count, _counter, document_parts

    model, _ = trained
    texts = [document_parts(e.texts)["body"] for e in examples(6, seed=4)]
    for block, vocab in zip(BLOCKS, model.vocabularies, strict=True):
        if block.part != "body":
            continue
        reference = _counter(block).set_params(vocabulary=vocab, max_features=None)
        columns = {t: i for i, t in enumerate(vocab)}
        assert (_count(reference.build_analyzer(), columns, texts) != reference.transform(texts)).nnz == 0


def test_features_are_scikit_learns_sublinear_tf_idf():
    from scipy import sparse
    from sklearn.feature_extraction.text import TfidfTransformer

    from pipeline.identify.learned import Block, _features, _idf

    counts = sparse.csr_matrix(np.array([[1, 0, 2, 0, 0], [0, 0, 1, 3, 0], [4, 0, 1, 0, 0]], dtype=np.float32))
    reference = TfidfTransformer(smooth_idf=True, sublinear_tf=True).fit(counts)
    assert np.allclose(_idf(counts), reference.idf_)
    one_block = (Block("body", "word", (1, 1), 10, 1.0),)
    ours = _features(one_block, [_idf(counts)], [counts]).toarray()
    assert np.allclose(ours, reference.transform(counts).toarray(), atol=1e-6)


def test_a_large_labelled_set_is_sampled_keeping_each_types_share():
    from pipeline.identify.learned import capped

    data = examples(60, seed=5)
    kept = capped(data, 30)
    assert [sum(e.doc_type == t for e in kept) for t in TYPES] == [7, 7, 7, 7]
    assert [e.doc_id for e in capped(list(reversed(data)), 30)] == [e.doc_id for e in kept]
    assert capped(data, 100) == data
