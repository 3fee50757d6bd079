"""Document type from page text: a printed title first, then the learned model or keywords.

A title heading at the top of the first page decides almost alone; a heading further
down (a discharge summary quoting a consultation) only leans, a title inside a sentence
barely counts, and keywords let a page with no heading still get a type. A type that
does not clearly beat the runner-up is reported "unclassified".

When a model learned from the archive is given (see learned.py), a confident top title
still decides; otherwise the model does, and its calibrated probability is the
confidence.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from rapidfuzz import fuzz, process

from pipeline.core.config import ClassificationSettings
from pipeline.core.models import UNCLASSIFIED, Classification
from pipeline.identify.type_source import model_cue

_TOP_LINES = 12
_TOP_TITLE = 8.0
_LATER_HEADING = 2.0
_MENTION = 0.5
_KEYWORD_CAP = 5.0  # keywords alone may not outweigh a top title
_PHRASE_WEIGHT = 1.5
_WORD_WEIGHT = 1.0
_SATURATION = 3.0
_HEADING_RATIO = 88.0
_SHORT_TITLE = 6  # normalised titles shorter than this must match exactly
_MAX_HEADING_WORDS = 8
_MAX_CUES = 6

# OCR reads letters as digits inside words ("Operat1ve", "0PERATIVE").
_DIGIT_AS_LETTER = str.maketrans("0123456789", "oizeasgtbg")
_WORD = re.compile(r"[a-z0-9]+")


def _normalise(line: str) -> str:
    text = line.lower().replace("&", " and ").replace("\u211e", "rx")
    return " ".join(w if w.isdigit() else w.translate(_DIGIT_AS_LETTER) for w in _WORD.findall(text))


def _key(phrase: str) -> str:
    # Words run together, so "follow-up", "follow up" and "followup" are one keyword.
    return "".join(_WORD.findall(phrase.lower()))


@dataclass(frozen=True)
class _Type:
    name: str
    weights: dict[str, float]  # keyword key -> weight
    labels: dict[str, str]  # keyword key -> keyword as configured, in configured order
    mentions: dict[str, str]  # title key -> title as configured


@dataclass(frozen=True)
class _Taxonomy:
    types: tuple[_Type, ...]
    titles: tuple[str, ...]  # normalised
    title_owner: tuple[tuple[str, str], ...]  # (type, title as configured), parallel to titles
    longest_title: dict[int, int]  # word count -> longest normalised title of that many words
    phrases: frozenset[str]  # every keyword and title key
    max_words: int


_Rules = tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]  # (type, titles, keywords)


def _types(rules: _Rules) -> tuple[_Type, ...]:
    sharing: dict[str, int] = {}
    for _, _, keywords in rules:
        for k in {_key(k) for k in keywords}:
            sharing[k] = sharing.get(k, 0) + 1
    types = []
    for name, titles, keywords in rules:
        keywords = [k for k in keywords if _key(k)]
        # Phrases say more than single words; a keyword several types share says less.
        weights = {
            _key(k): (_PHRASE_WEIGHT if len(_WORD.findall(k.lower())) > 1 else _WORD_WEIGHT) / sharing[_key(k)]
            for k in keywords
        }
        mentions = {_key(t): t for t in titles if _key(t)}
        types.append(_Type(name, weights, {_key(k): k for k in keywords}, mentions))
    return tuple(types)


@lru_cache(maxsize=8)
def _compile(rules: _Rules) -> _Taxonomy:
    types = _types(rules)
    owners = [(name, title) for name, titles, _ in rules for title in titles if _normalise(title)]
    titles = [_normalise(title) for _, title in owners]
    longest: dict[int, int] = {}
    for title in titles:
        longest[len(title.split())] = max(longest.get(len(title.split()), 0), len(title))
    phrases = frozenset(k for t in types for k in (*t.weights, *t.mentions))
    max_words = max([len(_WORD.findall(p.lower())) for _, ts, ks in rules for p in (*ts, *ks)] or [1])
    return _Taxonomy(types, tuple(titles), tuple(owners), longest, phrases, max_words)


def _taxonomy(settings: ClassificationSettings) -> _Taxonomy:
    return _compile(tuple((name, tuple(rule.titles), tuple(rule.keywords)) for name, rule in settings.types.items()))


def _phrases_in(text: str, tax: _Taxonomy) -> set[str]:
    """The keyword and title keys that occur in the text as runs of whole words."""
    words = _WORD.findall(text.lower())
    found = set()
    for i in range(len(words)):
        key = ""
        for word in words[i : i + tax.max_words]:
            key += word
            if key in tax.phrases:
                found.add(key)
    return found


def _best_title(text: str, tax: _Taxonomy) -> tuple[str, float, int] | None:
    return process.extractOne(text, tax.titles, scorer=fuzz.ratio, score_cutoff=_HEADING_RATIO)


def _title_hits(words: list[str], tax: _Taxonomy) -> list[tuple[str, float, int]]:
    """Titles matching the whole line, or leading a line they make at least half of."""
    norm = " ".join(words)
    candidates = [_best_title(norm, tax)]
    for n, longest in tax.longest_title.items():
        if n < len(words) and 2 * longest >= len(norm):
            hit = _best_title(" ".join(words[:n]), tax)
            candidates.append(hit if hit and 2 * len(hit[0]) >= len(norm) else None)
    return [c for c in candidates if c and (len(c[0]) >= _SHORT_TITLE or c[1] == 100)]


def _heading(line: str, tax: _Taxonomy) -> tuple[str, str] | None:
    """(type, title) when the line is a title heading ("PROGRESS NOTE 03/14/2024")."""
    if len(line.split()) > _MAX_HEADING_WORDS:
        return None
    words = _normalise(line).split()
    hits = _title_hits(words, tax)
    # OCR specks before a heading read as short words ("ae SOAP NOTE"); without them only
    # a long title counts, so a speck before a stray "Rx" makes no heading.
    junk = next((i for i, w in enumerate(words[:2]) if len(w) > 2), min(2, len(words)))
    if not hits and junk:
        hits = [h for h in _title_hits(words[junk:], tax) if len(h[0]) >= _SHORT_TITLE]
    if not hits:
        return None
    _, _, index = max(hits, key=lambda c: (c[1], len(c[0])))
    return tax.title_owner[index]


def _heading_scores(
    texts: Sequence[str], tax: _Taxonomy, titles: Sequence[str] = ()
) -> tuple[dict[str, float], dict[str, str]]:
    scores: dict[str, float] = {}
    cues: dict[str, str] = {}
    # A title printed large at the top is the title, wherever the text layer lists it.
    hit = next((h for line in titles if (h := _heading(line, tax))), None)
    if hit:
        scores[hit[0]], cues[hit[0]] = _TOP_TITLE, f"title:{hit[1]}"
    top_found = hit is not None
    for page_no, text in enumerate(texts):
        for line_no, line in enumerate(line for line in text.splitlines() if line.strip()):
            hit = _heading(line, tax)
            if not hit or hit[0] in scores:
                continue
            doc_type, title = hit
            if page_no == 0 and line_no < _TOP_LINES and not top_found:
                top_found = True
                scores[doc_type], cues[doc_type] = _TOP_TITLE, f"title:{title}"
            else:
                scores[doc_type], cues[doc_type] = _LATER_HEADING, f"heading:{title}"
    return scores, cues


def _scores(texts: Sequence[str], tax: _Taxonomy, titles: Sequence[str] = ()) -> dict[str, tuple[float, list[str]]]:
    headings, heading_cues = _heading_scores(texts, tax, titles)
    found = _phrases_in("\n".join(texts), tax)
    result = {}
    for t in tax.types:
        score = headings.get(t.name, 0.0)
        cues = [heading_cues[t.name]] if t.name in heading_cues else []
        mentioned = [title for k, title in t.mentions.items() if k in found]
        if not cues and mentioned:
            score += _MENTION
            cues.append(f"mention:{mentioned[0]}")
        raw = sum(w for k, w in t.weights.items() if k in found)
        score += _KEYWORD_CAP * (1 - math.exp(-raw / _KEYWORD_CAP))
        cues += [f"keyword:{label}" for k, label in t.labels.items() if k in found]
        result[t.name] = (score, cues)
    return result


def _confidence(best: float, runner_up: float) -> float:
    strength = 1 - math.exp(-best / _SATURATION)
    # Full confidence only when the runner-up scores at most half the winner.
    dominance = min(1.0, max(0.0, (best - runner_up) / (0.5 * best))) if best > 0 else 0.0
    return round(strength * dominance, 3)


class TypePredictor(Protocol):
    def predict(self, texts: Sequence[str]) -> list[tuple[str, float]]:
        """Types with their probabilities, most likely first."""


def classify(
    texts: Sequence[str],
    settings: ClassificationSettings,
    model: TypePredictor | None = None,
    titles: Sequence[str] = (),
) -> Classification:
    """The document type of a document given its page texts in order.

    ``titles`` are the first page's lines printed large at its top (layout.title_lines),
    largest first: the first that names a type is the top title.
    """
    rules = _by_rules(texts, settings, titles)
    if model is None or _title_decides(rules) or not any(t.strip() for t in texts):
        return rules
    return _by_model(model.predict(texts), rules, settings)


def _title_decides(rules: Classification) -> bool:
    return rules.doc_type != UNCLASSIFIED and bool(rules.cues) and rules.cues[0].startswith("title:")


def _by_model(
    ranked: list[tuple[str, float]], rules: Classification, settings: ClassificationSettings
) -> Classification:
    # A type dropped from the config since training is no answer.
    ranked = [(t, p) for t, p in ranked if t in settings.types]
    if not ranked:
        return rules
    (best, probability), runner_up = ranked[0], ranked[1][0] if len(ranked) > 1 else None
    confidence = round(probability, 3)
    context = [c for c in rules.cues if not c.startswith(("best:", "runner-up:"))]
    if confidence >= settings.min_confidence:
        return Classification(best, confidence, tuple([model_cue(probability), *context][:_MAX_CUES]))
    cues = [f"best:{best}", model_cue(probability), *([f"runner-up:{runner_up}"] if runner_up else []), *context]
    return Classification(UNCLASSIFIED, confidence, tuple(cues[:_MAX_CUES]))


def review_reason(found: Classification, settings: ClassificationSettings) -> str | None:
    """Why a document must wait for a clerk because of its type: its best guess is a type
    configured to be reviewed below some confidence, and it is below it."""
    guess = found.doc_type
    if guess == UNCLASSIFIED:
        guess = next((c.removeprefix("best:") for c in found.cues if c.startswith("best:")), "")
    rule = settings.types.get(guess)
    if rule is None or found.confidence >= rule.review_below:
        return None
    return (
        f"document type uncertain: {guess} at {found.confidence:.2f} "
        f"(classification.types.{guess}.review_below is {rule.review_below:g})"
    )


def _by_rules(texts: Sequence[str], settings: ClassificationSettings, titles: Sequence[str] = ()) -> Classification:
    scores = _scores(texts, _taxonomy(settings), titles)
    ranked = sorted(scores.items(), key=lambda item: item[1][0], reverse=True)
    best_type, (best, cues) = ranked[0]
    runner_type, (runner_up, _) = ranked[1] if len(ranked) > 1 else ("", (0.0, []))
    confidence = _confidence(best, runner_up)
    if confidence >= settings.min_confidence:
        return Classification(best_type, confidence, tuple(cues[:_MAX_CUES]))
    extra = [f"best:{best_type}"] if best > 0 else []
    extra += [f"runner-up:{runner_type}"] if runner_up > 0 else []
    return Classification(UNCLASSIFIED, confidence, tuple((extra + cues)[:_MAX_CUES]))
