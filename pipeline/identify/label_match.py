"""Labels as OCR reads them: "Med Ree No.", "MRWN", "DOR" for "Med Rec No.", "MRN", "DOB".

The configured label lists are regular expressions; each is spelt out into the
concrete labels it accepts, and a run of words on a page matches one when its letters,
once OCR's letter-shape confusions are folded together, are within a few edits of it.
A garbled label keeps its first letter, words of one or two letters ("No", "of") must be
exact, and it is only ever taken when nothing else reads as well: a distractor label
(account, encounter, FIN...) that matches at least as closely wins, as does a doc-date
label that matches more closely or a known non-label word (MRI, DOD) spelt exactly.
Pure functions throughout.
"""

from __future__ import annotations

import re
import re._parser as sre_parse  # type: ignore[import-not-found]  # the stdlib's own regex parser; no public equivalent
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from rapidfuzz.distance import Levenshtein

# Two-letter shapes OCR merges into one and back (rn/m, cl/d, vv/w), then the
# single-letter groups it mixes up (l/1/I, 0/O/D, e/c).
_PAIRS = (("rn", "m"), ("cl", "d"), ("vv", "w"))
_SHAPES = str.maketrans("1i|!0dc", "lllloo" + "e")
_TOKEN = re.compile(r"[A-Za-z0-9|!#]+")
_HAS_LETTER = re.compile(r"[A-Za-z#]")
# Between the words of one label: a space and stray dots or apostrophes, no cell break.
_GAP = re.compile(r"[.'\u2019_-]{0,2} ?[.'\u2019_-]{0,2}")
# "#" is a word of its own: "Chart #" is a label, "Chart" is not.
_WORDS = re.compile(r"[A-Za-z0-9]+|#")
_NOT_KEY = re.compile(r"[^A-Za-z0-9|!#]")
_MAX_SPELLINGS = 96  # per configured pattern; the defaults spell out to at most 64
_MIN_FUZZY_LETTERS = 3  # "RN" or "MR" one edit from "MRN" is another word, not a misread


@dataclass(frozen=True)
class LabelHit:
    """A label found with OCR noise, shaped like the re.Match the extractor reads."""

    kind: str
    begin: int
    finish: int
    text: str
    edits: int

    @property
    def lastgroup(self) -> str:
        return self.kind

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.finish

    def span(self) -> tuple[int, int]:
        return self.begin, self.finish

    def group(self, *_: object) -> str:
        return self.text


@dataclass(frozen=True)
class _Spelling:
    kind: str
    key: str  # letters and digits, shape-folded
    budget: int  # edits allowed: the sum over its words
    words: tuple[tuple[str, int], ...]  # each word's key and its own budget


@dataclass(frozen=True)
class Vocabulary:
    """Every concrete label spelling by the first letter of its key; ``wanted`` kinds are
    the ones returned, the others (and near-miss words) only compete."""

    by_first: dict[str, tuple[_Spelling, ...]]
    wanted: frozenset[str]
    longest: int  # most words in one spelling

    @property
    def every(self) -> Iterable[_Spelling]:
        return (s for group in self.by_first.values() for s in group)

    def __hash__(self) -> int:  # one vocabulary per configuration; identity is enough
        return id(self)


NEAR_MISS = "near-miss"
_DOC_DATE = "doc_date"  # the kind extract.py gives doc-date labels


def shape_key(text: str) -> str:
    """Lower-case letters and digits with OCR's look-alike shapes folded together."""
    key = _NOT_KEY.sub("", text)
    for pair, single in _PAIRS:  # lower-case shapes only: a printed "RN" is two letters
        key = key.replace(pair, single)
    return key.lower().translate(_SHAPES)


def word_budget(word: str, tolerance: int) -> int:
    """Edits one label word may carry: none under 3 letters, 1, or 2 from 8 letters on."""
    if tolerance <= 0 or len(word) < 3:
        return 0
    return 2 if tolerance >= 2 and len(word) >= 8 else 1


def spellings(pattern: str) -> list[str]:
    """The concrete strings a label pattern accepts, with optional parts both ways.

    Repeats are spelt once or not at all, character classes by their first member, so
    a pattern of the kind the config holds ("Med(?:ical)?\\.?\\s*Rec...") gives a few
    dozen spellings; the count is capped.
    """
    return sorted(_expand(sre_parse.parse(pattern, re.IGNORECASE)))[:_MAX_SPELLINGS]


def _expand(items: Iterable[tuple[Any, Any]]) -> set[str]:
    out = {""}
    for op, arg in items:
        options = _expand_one(op, arg)
        out = {a + b for a in out for b in options}
        if len(out) > _MAX_SPELLINGS:
            out = set(sorted(out)[:_MAX_SPELLINGS])
    return out


def _expand_one(op: object, arg: Any) -> set[str]:
    name = str(op)
    if name == "LITERAL":
        return {chr(arg)}
    if name == "IN":
        return {_class_member(arg)}
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _, sub = arg
        inner = _expand(sub)
        if inner <= {"", " "}:
            return {" "}  # "MR\s*No" glued or spaced has the same key; the space keeps its words apart
        counts = {low, max(low, 1)} if low <= 1 else {low}
        return {s * n for s in inner for n in counts}
    if name == "SUBPATTERN":
        return _expand(arg[-1])
    if name == "ATOMIC_GROUP":
        return _expand(arg)
    if name == "BRANCH":
        return set().union(*(_expand(alt) for alt in arg[1]))
    if name == "CATEGORY":
        return {" " if "SPACE" in str(arg) else "0" if "DIGIT" in str(arg) else "a"}
    return {""}  # anchors, lookarounds, back references: no letters of their own


def _class_member(members: Iterable[tuple[Any, Any]]) -> str:
    for op, arg in members:
        if str(op) == "LITERAL":
            return chr(arg)
        if str(op) == "RANGE":
            return chr(arg[0])
        if str(op) == "CATEGORY":
            return " " if "SPACE" in str(arg) else "0"
    return " "


def vocabulary(
    kinds: Sequence[tuple[str, Sequence[str]]],
    wanted: Iterable[str],
    near_misses: Sequence[str],
    tolerance: int,
) -> Vocabulary:
    """The spellings of every kind's patterns; near-miss words compete with no tolerance."""
    by_first: dict[str, dict[tuple[str, str], _Spelling]] = {}
    longest = 1
    entries = [(kind, s) for kind, patterns in kinds for p in patterns for s in spellings(p)]
    entries += [(NEAR_MISS, w) for w in near_misses]
    for kind, text in entries:
        words = tuple(
            (k, 0 if kind == NEAR_MISS else word_budget(k, tolerance))
            for w in _WORDS.findall(text)
            if (k := shape_key(w))
        )
        key = "".join(k for k, _ in words)
        if not key:
            continue
        longest = max(longest, len(words))
        spelling = _Spelling(kind, key, sum(b for _, b in words), words)
        slot = by_first.setdefault(key[0], {})
        known = slot.get((kind, key))
        if known is None or known.budget < spelling.budget:
            slot[(kind, key)] = spelling
    return Vocabulary({first: tuple(s.values()) for first, s in by_first.items()}, frozenset(wanted), longest)


@dataclass(frozen=True)
class _Match:
    words: int
    edits: int
    spelling: _Spelling


def _matches(key: str, words: int, spellings: Iterable[_Spelling]) -> list[_Match]:
    found = []
    for s in spellings:
        # A near-miss word competes only spelt exactly: "DOR" is as close to DOD as to
        # DOB, and is a garbled DOB when a date follows it.
        budget = s.budget if len(key) >= _MIN_FUZZY_LETTERS else 0
        if abs(len(key) - len(s.key)) > budget:
            continue
        if key == s.key + "s":
            continue  # a plural ("MRNs 0048, 0051") lists numbers, it labels none
        edits = Levenshtein.distance(key, s.key, score_cutoff=budget)
        by_word = _word_by_word(key, s.words) if 0 < edits <= budget else edits
        if edits <= budget and by_word is not None:
            found.append(_Match(words, by_word, s))
    return found


def _word_by_word(key: str, words: tuple[tuple[str, int], ...]) -> int | None:
    """The fewest edits spelling ``key`` as the words in turn, each within its own budget;
    None when there is no such reading ("Hospital" is not "Hospital No" minus a word)."""
    reach = {0: 0}  # position in key -> edits so far
    for word, budget in words:
        after: dict[int, int] = {}
        for at, spent in reach.items():
            for end in range(at + max(1, len(word) - budget), min(len(key), at + len(word) + budget) + 1):
                edits = Levenshtein.distance(key[at:end], word, score_cutoff=budget)
                if edits <= budget and spent + edits < after.get(end, budget + spent + 1):
                    after[end] = spent + edits
        if not after:
            return None
        reach = after
    return reach.get(len(key))


def _beaten(chosen: _Match, rivals: list[_Match]) -> bool:
    """A rival of another kind reads at least as well, and is not merely the start of the
    chosen label ("Date" before "Date of Birth", "Patient" before "Patient ID").

    A doc-date label must read strictly better: "DOR" is one edit from DOB and from DOS,
    and a service date taken for a birth date only ever disagrees with the patient index.
    """
    for r in rivals:
        if r.spelling.kind == chosen.spelling.kind or r.edits > chosen.edits:
            continue
        if r.spelling.kind == _DOC_DATE and r.edits == chosen.edits:
            continue
        if r.words < chosen.words and chosen.spelling.key.startswith(r.spelling.key):
            continue
        return True
    return False


def find_labels(line: str, vocab: Vocabulary, taken: Sequence[tuple[int, int]]) -> list[LabelHit]:
    """The wanted-kind labels of ``line`` outside the ``taken`` spans, left to right.

    At each word the longest run of words that spells a wanted label within its edit
    budget is taken, unless a rival reads as well; its words are then used up.
    """
    tokens = [m for m in _TOKEN.finditer(line) if _HAS_LETTER.search(m.group())]
    free = [not any(a < m.end() and m.start() < b for a, b in taken) for m in tokens]
    hits: list[LabelHit] = []
    i = 0
    while i < len(tokens):
        if not free[i]:
            i += 1
            continue
        keys: list[str] = []
        for j in range(i, min(len(tokens), i + vocab.longest + 1)):
            if j > i and not (free[j] and _GAP.fullmatch(line, tokens[j - 1].end(), tokens[j].start())):
                break
            keys.append(shape_key(line[tokens[i].start() : tokens[j].end()]))
        # A label is looked for among spellings of the same first letter; its rivals
        # (rarely needed) among all: "MSN" is as near CSN as MRN.
        wanted = [
            m
            for n, key in enumerate(keys, 1)
            for m in _matches(key, n, vocab.by_first.get(key[0], ()))
            if m.spelling.kind in vocab.wanted
        ]
        if not wanted:
            i += 1
            continue
        chosen = min(wanted, key=lambda m: (-m.words, m.edits))
        rivals = [m for n, key in enumerate(keys, 1) for m in _matches(key, n, vocab.every)]
        if _beaten(chosen, rivals):
            i += 1
            continue
        last = tokens[i + chosen.words - 1]
        end = last.end() + (line[last.end() : last.end() + 1] == ".")
        start = tokens[i].start()
        hits.append(LabelHit(chosen.spelling.kind, start, end, line[start:end], chosen.edits))
        i += chosen.words
    return hits


@lru_cache(maxsize=8192)  # a page's lines are scanned for MRN, name and DOB in turn
def cached_labels(line: str, vocab: Vocabulary, taken: tuple[tuple[int, int], ...]) -> tuple[LabelHit, ...]:
    return tuple(find_labels(line, vocab, taken))
