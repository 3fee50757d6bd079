"""A document-type model learned from typed documents: training and prediction.

Features are TF-IDF blocks: word 1-2-grams and character 3-5-grams (robust to OCR
noise) of the first page's header band, weighted above the same blocks of the body.
A linear SVM scores the types and per-type Platt sigmoids, fitted on cross-validated
scores, turn the scores into probabilities. The fitted model is nothing but arrays
(vocabularies, idf weights, coefficients, sigmoid parameters), so it can be stored
without pickle and applied with a sparse product; model_store reads and writes it.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.svm import LinearSVC

HEADER_LINES = 12  # as many as the rules search for a top title
_BODY_CHARS = 6000  # the start of a document says what it is; long charts cost memory, not accuracy
_BODY_CHAR_NGRAM_CHARS = 1500
_C = 0.5
_FOLDS = 3
_TOP_CONFUSED = 5
_DIGITS = re.compile(r"\d")


@dataclass(frozen=True)
class Block:
    """One TF-IDF block of the feature vector."""

    part: str  # "header" | "body"
    analyzer: str  # "word" | "char_wb"
    ngrams: tuple[int, int]
    max_features: int
    weight: float


BLOCKS: tuple[Block, ...] = (
    Block("header", "word", (1, 2), 20_000, 2.0),
    Block("header", "char_wb", (3, 5), 30_000, 2.0),
    Block("body", "word", (1, 2), 60_000, 1.0),
    Block("body", "char_wb", (3, 5), 40_000, 1.0),
)


@dataclass(frozen=True)
class Example:
    doc_id: str
    doc_type: str
    texts: tuple[str, ...]  # page texts in order


@dataclass(frozen=True)
class Figures:
    """How well the model did in cross-validation over its own training set."""

    examples: int
    per_type: dict[str, int]
    left_out: dict[str, int]  # types with too few examples: left to the rules
    accuracy: float
    macro_f1: float
    f1_per_type: dict[str, float]
    confused: list[tuple[str, str, int]]  # (true type, predicted type, count), most first
    features: int
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "confused": [list(c) for c in self.confused]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Figures:
        return cls(**{**data, "confused": [tuple(c) for c in data["confused"]]})


@dataclass
class TypeModel:
    """A fitted model: plain arrays, applied to page texts."""

    classes: tuple[str, ...]
    vocabularies: tuple[tuple[str, ...], ...]  # one per block, term order = column order
    idf: tuple[np.ndarray, ...]
    coef: np.ndarray  # (classes, features) float32; one row when there are two classes
    intercept: np.ndarray
    platt_a: np.ndarray  # per class: p = 1 / (1 + exp(a * score + b))
    platt_b: np.ndarray
    blocks: tuple[Block, ...] = BLOCKS
    _analyzers: list[Callable[[str], list[str]]] = field(default_factory=list, repr=False)
    _columns: list[dict[str, int]] = field(default_factory=list, repr=False)

    def __post_init__(self) -> None:
        # Built once: scikit-learn's transform() rebuilds its analyzer on every call.
        self._analyzers = [_counter(block).build_analyzer() for block in self.blocks]
        self._columns = [{term: i for i, term in enumerate(vocab)} for vocab in self.vocabularies]

    def probabilities(self, documents: Sequence[Sequence[str]]) -> np.ndarray:
        """Calibrated probabilities, one row per document, columns in ``classes`` order."""
        parts = [document_parts(texts) for texts in documents]
        counts = [
            _count(analyze, columns, [p[b.part] for p in parts])
            for analyze, columns, b in zip(self._analyzers, self._columns, self.blocks, strict=True)
        ]
        return calibrated(self.decision(_features(self.blocks, self.idf, counts)), self.platt_a, self.platt_b)

    def decision(self, matrix: sp.csr_matrix) -> np.ndarray:
        scores = np.asarray(matrix @ self.coef.T, dtype=np.float64) + self.intercept
        return np.hstack([-scores, scores]) if len(self.classes) == 2 else scores

    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """The types of one document with their probabilities, most likely first."""
        row = self.probabilities([texts])[0]
        order = np.argsort(-row, kind="stable")
        return [(self.classes[i], float(row[i])) for i in order]


def _clean(text: str) -> str:
    # Numbers (dates, MRNs, doses) say little about the type and would swell the vocabulary.
    return _DIGITS.sub("0", text.lower())


def document_parts(texts: Sequence[str]) -> dict[str, str]:
    """The header band of the first page and the start of the whole text."""
    first = texts[0] if texts else ""
    header = "\n".join([line for line in first.splitlines() if line.strip()][:HEADER_LINES])
    body = "\n".join(texts)[:_BODY_CHARS]
    return {"header": _clean(header), "body": _clean(body)}


def _counter(block: Block, min_df: int = 1) -> CountVectorizer:
    text = block.analyzer == "word"
    return CountVectorizer(
        analyzer=block.analyzer,
        ngram_range=block.ngrams,
        lowercase=False,
        dtype=np.float32,
        min_df=min_df,
        max_features=block.max_features,
        # Character n-grams of the body only from its start: they are for OCR-damaged words,
        # and a whole chart's worth would cost more memory than they add.
        preprocessor=None if text or block.part == "header" else _char_window,
    )


def _count(analyze: Callable[[str], list[str]], columns: dict[str, int], texts: Sequence[str]) -> sp.csr_matrix:
    """Term counts over a fixed vocabulary (what CountVectorizer.transform gives)."""
    rows: list[int] = []
    cols: list[int] = []
    values: list[int] = []
    for row, text in enumerate(texts):
        found = Counter(columns[t] for t in analyze(text) if t in columns)
        rows += [row] * len(found)
        cols += found.keys()
        values += found.values()
    return sp.csr_matrix((np.array(values, dtype=np.float32), (rows, cols)), shape=(len(texts), len(columns)))


def _char_window(text: str) -> str:
    return text[:_BODY_CHAR_NGRAM_CHARS]


def _features(blocks: Sequence[Block], idf: Sequence[np.ndarray], counts: Sequence[sp.spmatrix]) -> sp.csr_matrix:
    """Sublinear TF-IDF per block, each block's rows of unit length times the block weight."""
    weighted = []
    for block, weights, matrix in zip(blocks, idf, counts, strict=True):
        matrix = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        np.log(matrix.data, out=matrix.data)
        matrix.data += 1
        matrix = matrix @ sp.diags(weights.astype(np.float32))
        norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
        norms[norms == 0] = 1
        weighted.append(sp.diags((block.weight / norms).astype(np.float32)) @ matrix)
    return sp.hstack(weighted, format="csr", dtype=np.float32)


def _idf(counts: sp.spmatrix) -> np.ndarray:
    n = counts.shape[0]
    df = np.bincount(sp.csr_matrix(counts).indices, minlength=counts.shape[1])  # a CSR row's indices are its columns
    idf: np.ndarray = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
    return idf


def calibrated(scores: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per-type sigmoids of the scores, normalised to sum to one (as scikit-learn's sigmoid calibration)."""
    sig = 1.0 / (1.0 + np.exp(np.clip(scores * a + b, -500, 500)))
    if sig.shape[1] == 2:
        sig = np.column_stack([1 - sig[:, 1], sig[:, 1]])
    total = sig.sum(axis=1, keepdims=True)
    normalised: np.ndarray = np.divide(sig, total, out=np.full_like(sig, 1 / sig.shape[1]), where=total > 0)
    return normalised


def _platt(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sigmoid parameters per type, fitted on cross-validated scores."""
    fits = [_sigmoid(scores[:, k], y == k) for k in range(scores.shape[1])]
    return np.array([a for a, _ in fits]), np.array([b for _, b in fits])


def _sigmoid(f: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Platt's fit of p = 1 / (1 + exp(a f + b)): Newton steps on the log loss against his
    smoothed targets, which keep a perfectly separated type from reaching certainty."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    target = np.where(positive, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    theta = np.array([0.0, np.log((n_neg + 1) / (n_pos + 1))])

    def loss(t: np.ndarray) -> float:
        z = t[0] * f + t[1]
        return float(np.sum(target * np.logaddexp(0, z) + (1 - target) * np.logaddexp(0, -z)))

    current = loss(theta)
    for _ in range(100):
        p = 1 / (1 + np.exp(np.clip(theta[0] * f + theta[1], -500, 500)))
        g, w = target - p, p * (1 - p) + 1e-12
        gradient = np.array([g @ f, g.sum()])
        hessian = np.array([[w @ (f * f), w @ f], [w @ f, w.sum()]]) + 1e-12 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while scale > 1e-8 and loss(theta - scale * step) > current:
            scale /= 2
        theta = theta - scale * step
        previous, current = current, loss(theta)
        if previous - current < 1e-10 * max(1.0, abs(previous)):
            break
    return float(theta[0]), float(theta[1])


def capped(examples: Sequence[Example], limit: int) -> list[Example]:
    """At most ``limit`` examples, each type keeping its share; the same ones every time
    (ordered by a hash of the doc_id), so a retrain changes only what changed."""
    if len(examples) <= limit:
        return list(examples)
    by_type: dict[str, list[Example]] = {}
    for e in examples:
        by_type.setdefault(e.doc_type, []).append(e)
    kept = []
    for group in by_type.values():
        group.sort(key=lambda e: hashlib.sha256(e.doc_id.encode()).digest())
        kept += group[: max(1, limit * len(group) // len(examples))]
    return sorted(kept, key=lambda e: e.doc_id)


def usable(examples: Sequence[Example], min_per_type: int) -> tuple[list[Example], dict[str, int]]:
    """The examples of types with enough of them, and the counts of the types left out."""
    counts = Counter(e.doc_type for e in examples)
    left_out = {t: n for t, n in sorted(counts.items()) if n < min_per_type}
    return [e for e in examples if e.doc_type not in left_out], left_out


def _confused(y: np.ndarray, predicted: np.ndarray, classes: Sequence[str]) -> list[tuple[str, str, int]]:
    pairs = Counter((classes[t], classes[p]) for t, p in zip(y, predicted, strict=True) if t != p)
    return [(t, p, n) for (t, p), n in sorted(pairs.items(), key=lambda item: (-item[1], item[0]))[:_TOP_CONFUSED]]


def train(examples: Sequence[Example], *, min_per_type: int = 5, seed: int = 0) -> tuple[TypeModel, Figures]:
    """Fit the model on labelled examples (the same examples always give the same model)."""
    started = time.monotonic()
    kept, left_out = usable(sorted(examples, key=lambda e: e.doc_id), min_per_type)
    classes = tuple(sorted({e.doc_type for e in kept}))
    if len(classes) < 2:
        raise ValueError("a model needs at least two document types with enough examples")
    y = np.array([classes.index(e.doc_type) for e in kept])
    parts = [document_parts(e.texts) for e in kept]
    counters = [_counter(block, min_df=2 if len(kept) >= 50 else 1) for block in BLOCKS]
    counts = [c.fit_transform([p[b.part] for p in parts]) for c, b in zip(counters, BLOCKS, strict=True)]
    del parts
    idf = tuple(_idf(c) for c in counts)
    matrix = _features(BLOCKS, idf, counts)
    del counts
    svm = LinearSVC(C=_C, class_weight="balanced", random_state=seed)
    folds = StratifiedKFold(n_splits=min(_FOLDS, int(np.bincount(y).min())), shuffle=True, random_state=seed)
    scores = cross_val_predict(svm, matrix, y, cv=folds, method="decision_function")
    scores = np.column_stack([-scores, scores]) if scores.ndim == 1 else scores
    a, b = _platt(scores, y)
    predicted = calibrated(scores, a, b).argmax(axis=1)
    svm.fit(matrix, y)
    vocabularies = tuple(tuple(sorted(c.vocabulary_, key=c.vocabulary_.get)) for c in counters)
    model = TypeModel(classes, vocabularies, idf, svm.coef_.astype(np.float32), svm.intercept_.astype(np.float64), a, b)
    f1s = f1_score(y, predicted, average=None, labels=range(len(classes)))
    figures = Figures(
        examples=len(kept),
        per_type={t: int(n) for t, n in zip(classes, np.bincount(y, minlength=len(classes)), strict=True)},
        left_out=left_out,
        accuracy=round(float(accuracy_score(y, predicted)), 4),
        macro_f1=round(float(f1s.mean()), 4),
        f1_per_type={t: round(float(f), 4) for t, f in zip(classes, f1s, strict=True)},
        confused=_confused(y, predicted, classes),
        features=int(matrix.shape[1]),
        seconds=round(time.monotonic() - started, 2),
    )
    return model, figures
