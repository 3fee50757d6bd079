"""A second look at a page whose first OCR reading was poor.

Damaged paper (streaks, folds, faint print, pen and highlighter) reads as a few garbage
words where a person reads the page without trouble. Such a page is cleaned (``clean``)
and read again, and the better of the two readings kept. The header band, where the
MRN, name and date of birth sit, is read once more on its own at twice the resolution,
and again for digits only; the numbers in it are put to a vote across the readings.

Clean pages pay nothing: ``why_read_again`` is a pure test of the first reading, and a
page that passes it is never read twice.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from pipeline.core.models import Word
from pipeline.pages import clean
from pipeline.pages.ocr import OcrResult, ocr_image


@dataclass(frozen=True)
class SecondLookRules:
    """When a page is read again, and how its header is read (``ocr.second_look`` in the config)."""

    enabled: bool = True
    below_conf: float = 70.0
    min_wordlike_share: float = 0.6
    header_band: float = 0.35
    min_header_words: int = 3
    min_ink_share: float = 0.01
    header_scale: float = 1.5


@dataclass(frozen=True)
class SecondLook:
    """What the second look did to one page, for its sidecar."""

    why: str
    won: Literal["first", "cleaned"]
    header: Literal["page", "zonal"]
    votes: int  # numbers in the header the vote changed
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "why": self.why,
            "won": self.won,
            "header": self.header,
            "votes": self.votes,
            "seconds": round(self.seconds, 3),
        }


# ------------------------------------------------------------------ the trigger (pure)

_ABBREVIATION = r"(?:[A-Za-z]\.){1,4}"
_PART = r"[A-Z]?[a-z]+|[A-Z]+|[A-Z][a-z]*[A-Z][a-z]+"  # word, WORD, McClain
_WORD = rf"(?:{_PART})(?:['-](?:{_PART}))*"
_NUMBER = r"[#$]?\d[\d.,/:%-]*|\d{1,2}-[A-Za-z]{3}-\d{2,4}"
_WORDLIKE = re.compile(rf"[(\"']?(?:{_ABBREVIATION}|{_WORD}|{_NUMBER})[)\"'.,:;!?%]*")
_VOWEL = re.compile(r"[aeiouyAEIOUY]")


def is_wordlike(text: str) -> bool:
    """Whether an OCR word looks like a word, an abbreviation or a number rather than debris.

    Not a dictionary: names, drugs and codes are words too; what fails is the debris a
    streak or a fold makes (``|``, ``~``, ``fo]``, ``Il1i``, ``rnmnmn``).
    """
    if not _WORDLIKE.fullmatch(text):
        return False
    letters = re.sub(r"[^A-Za-z]", "", text)
    return len(letters) < 4 or letters.isupper() or bool(_VOWEL.search(letters))


def reading_score(words: Sequence[Word]) -> float:
    """How much readable text a reading holds: its word-like words' letters and digits,
    each weighted by the word's confidence.

    A reading that lost half the page scores below one that kept it at lower confidence,
    and debris read with high confidence counts for nothing. Characters, not words, are
    counted: a streak that splits each line into two blocks ("Patient Nam" | "e: Young")
    makes more words of the same print, and must not win over a reading of whole lines."""
    return sum(w.conf * sum(ch.isalnum() for ch in w.text) for w in words if is_wordlike(w.text)) / 100


def in_band(words: Sequence[Word], bottom: float) -> list[Word]:
    return [w for w in words if w.top + w.height / 2 < bottom]


@dataclass(frozen=True)
class PageMarks:
    """What the page's pixels say before any reading: its share of dark pixels (a blank
    page or print OCR took for a picture) and the dark streaks running down it."""

    ink_share: float
    streaks: int


def page_marks(gray: np.ndarray, ink: bool = True) -> PageMarks:
    """The page's marks, measured on it reduced to about 75 dpi (a few milliseconds).

    A streak is a run of columns well darker than the paper over more than half the page's height,
    away from its edges (where a scanner's lid or the paper's edge may show): a drum's
    toner streak, which makes tesseract take the text beside it for a picture. The ink is
    measured only when asked (``ink``): it matters only for a page OCR found no word on."""
    if min(gray.shape) < 8:
        return PageMarks(0.0, 0)
    small = cv2.resize(gray, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    paper = float(np.median(small))
    # Print is what is clearly darker than the paper, however faint: its darkest pixel in
    # each 4 x 4 cell (averaging would fade thin strokes), over a photocopy's grain smoothed.
    share = 0.0
    if ink:
        darkest = cv2.erode(cv2.GaussianBlur(gray, (0, 0), 1), np.ones((4, 4), np.uint8))[::4, ::4]
        share = float(np.mean(darkest < paper - 30))
    dark = np.mean(small < paper - 50, axis=0) > 0.5
    margin = max(1, small.shape[1] * 3 // 100)
    inner = dark[margin:-margin].astype(np.int8)
    streaks = int(np.count_nonzero(np.diff(inner) == 1) + (inner[:1] == 1).sum()) if inner.size else 0
    return PageMarks(share, streaks)


def why_read_again(words: Sequence[Word], page_height: int, marks: PageMarks, rules: SecondLookRules) -> str | None:
    """Why the first reading of a page is too poor to keep alone; None when it is good.

    A sparse page read well (a separator sheet, a page with a line or two) is not read
    again; a page with no words is, when it has ink enough to hold print.
    """
    if not rules.enabled:
        return None
    if not words:
        return "no text read" if marks.ink_share >= rules.min_ink_share else None
    if marks.streaks:
        return f"{marks.streaks} dark streak{'s' if marks.streaks > 1 else ''} down the page"
    mean = sum(w.conf for w in words) / len(words)
    if mean < rules.below_conf:
        return f"mean word confidence {mean:.0f}"
    share = sum(is_wordlike(w.text) for w in words) / len(words)
    if share < rules.min_wordlike_share:
        return f"few words read as words ({100 * share:.0f} %)"
    band = in_band(words, rules.header_band * page_height)
    if len(words) >= 4 * rules.min_header_words and len(band) < rules.min_header_words:
        return "header band empty"
    if band and sum(w.conf for w in band) / len(band) < rules.below_conf:
        return "header band garbled"
    # Pen across the MRN reads as one word of debris that tesseract hardly believes
    # (an ID such as a DEA number is no word either, but is read with confidence).
    if any(len(w.text) >= 4 and w.conf < rules.below_conf / 2 and not is_wordlike(w.text) for w in band):
        return "a garbled word in the header band"
    return None


# ------------------------------------------------------------------ the vote (pure)

_DIGITS = re.compile(r"\d")


def _digits(text: str) -> str:
    return "".join(_DIGITS.findall(text))


def _is_number(word: Word) -> bool:
    """A word that may be an MRN or a date: four digits or more, mostly digits."""
    digits = _digits(word.text)
    alnum = sum(c.isalnum() for c in word.text)
    return len(digits) >= 4 and len(digits) * 2 >= alnum


def _overlaps(a: Word, b: Word) -> bool:
    """Whether ``b`` covers at least half of ``a`` or ``a`` half of ``b`` (the same print)."""
    width = min(a.left + a.width, b.left + b.width) - max(a.left, b.left)
    height = min(a.top + a.height, b.top + b.height) - max(a.top, b.top)
    if width <= 0 or height <= 0:
        return False
    smaller = min(a.width * a.height, b.width * b.height)
    return smaller > 0 and width * height * 2 >= smaller


def _with_digits(text: str, digits: str) -> str:
    """``text`` with its digits replaced in order by ``digits`` (of the same count)."""
    it = iter(digits)
    return _DIGITS.sub(lambda _: next(it), text)


# The confidence a number gets when the readings of it disagree without a clear majority:
# below what any filing rule takes as a clear read, so it is held back, never filed on alone.
DISPUTED_CONF = 30.0


def vote_numbers(primary: Sequence[Word], others: Sequence[Sequence[Word]]) -> tuple[list[Word], int]:
    """The numbers of ``primary`` put to a vote across the other readings of the same band.

    For each number (four digits or more) of ``primary``, each other reading offers the
    digits of its words over the same print; offers two digits or more longer or shorter
    are fragments, not readings of it. The digit string most readings agree on wins (a
    tie keeps ``primary``'s). A majority by two readings or more settles the number, at
    the lowest confidence its backers gave; a closer vote (a colon read as a 4 in one
    reading, not in another) leaves it disputed, at ``DISPUTED_CONF`` at most, so the
    filing rules hold it back; the confidences of its characters go no higher than its own.
    Returns the words and how many numbers the vote changed.
    """
    voted, changed = [], 0
    for word in primary:
        if not _is_number(word):
            voted.append(word)
            continue
        own = _digits(word.text)
        offers = [(own, word.conf)]
        for reading in others:
            over = sorted((w for w in reading if _overlaps(word, w) and _digits(w.text)), key=lambda w: w.left)
            value = "".join(_digits(w.text) for w in over)
            if over and abs(len(value) - len(own)) <= 1:
                offers.append((value, min(w.conf for w in over)))
        tally = Counter(value for value, _ in offers).most_common()
        best = max(n for _, n in tally)
        winner = own if dict(tally)[own] == best else tally[0][0]
        runner_up = max((n for value, n in tally if value != winner), default=0)
        backers = min(conf for value, conf in offers if value == winner)
        rewritable = winner == own or len(winner) == len(own)
        if runner_up == 0:
            conf = word.conf
        elif best - runner_up >= 2 and rewritable:
            conf = backers
        else:
            conf = min(backers, DISPUTED_CONF)
        text = word.text
        if winner != own and rewritable:
            text, changed = _with_digits(word.text, winner), changed + 1
        if (text, conf) != (word.text, word.conf):
            # The characters' own confidences are the overruled reading's: a rewritten
            # number's digits are only as sure as its backers, a disputed one's no surer.
            confs = tuple(min(c, conf) for c in word.char_confs) if text == word.text else (conf,) * len(text)
            word = replace(word, text=text, conf=conf, char_confs=confs)
        voted.append(word)
    return voted, changed


# ------------------------------------------------------------------ text and words of a page (pure)


def _aligned_lines(text: str, words: Sequence[Word]) -> list[tuple[str, list[Word]]] | None:
    """Each line of tesseract's text with its words (the TSV's words come in the text's
    order); None when they do not line up."""
    lines, at = [], 0
    for line in text.splitlines():
        tokens = line.split()
        mine = list(words[at : at + len(tokens)])
        if [w.text for w in mine] != tokens:
            return None
        lines.append((line, mine))
        at += len(tokens)
    return lines if at == len(words) else None


def with_words(text: str, words: Sequence[Word], changed: Sequence[Word]) -> str:
    """``text`` with each token of ``words`` replaced by the matching word of ``changed``
    (the same words after the vote); unchanged when the two do not line up."""
    lines = _aligned_lines(text, words)
    if lines is None or len(changed) != len(words):
        return text
    replacements = iter(changed)
    out = []
    for line, mine in lines:
        for original in mine:
            new = next(replacements)
            if new.text != original.text:
                line = re.sub(rf"(?<!\S){re.escape(original.text)}(?!\S)", new.text.replace("\\", r"\\"), line, count=1)
        out.append(line)
    return "\n".join(out)


def split_at_band(text: str, words: Sequence[Word], bottom: float) -> tuple[str, list[Word]] | None:
    """The lines of a reading below the header band, as text and words; None when its text
    and words do not line up."""
    lines = _aligned_lines(text, words)
    if lines is None:
        return None
    body = [(line, mine) for line, mine in lines if not mine or len(in_band(mine, bottom)) < len(mine)]
    while body and not body[0][1]:
        body.pop(0)
    return "\n".join(line for line, _ in body), [w for _, mine in body for w in mine]


def between_lines(words: Sequence[Word], bottom: float, height: int) -> float:
    """The first row at or below ``bottom`` (within a twentieth of the page) that no word
    covers, so the header band does not cut a line of print in two."""
    covered = np.zeros(height + 1, bool)
    for w in words:
        covered[max(0, w.top) : max(0, w.top + w.height)] = True
    start = max(0, min(height, int(bottom)))
    free = np.flatnonzero(~covered[start : start + max(1, height // 20)])
    return float(start + free[0]) if free.size else bottom


# ------------------------------------------------------------------ the readings (tesseract)


@dataclass(frozen=True)
class _Page:
    """Where and how the page's readings are made."""

    dpi: int
    lang: str
    work: Path


def read_again(
    gray: np.ndarray,
    first: OcrResult,
    why: str,
    *,
    dpi: int,
    lang: str,
    work: Path,
    rules: SecondLookRules,
    time_left: Callable[[], float],
) -> tuple[OcrResult, SecondLook, np.ndarray]:
    """The page cleaned and read again, its header re-read and voted on; the better reading.

    Returns the reading kept (its ``seconds`` include every pass), what was done, and the
    cleaned page (for barcodes). ``time_left`` gives the page's remaining time before
    each pass and raises when there is none.
    """
    started = time.monotonic()
    page = _Page(dpi, lang, work)
    cleaned = clean.binarised(clean.flattened(gray, dpi), dpi)
    second = _read(page, cleaned, "page-clean", dpi, time_left())
    won: Literal["first", "cleaned"] = (
        "cleaned" if reading_score(second.words) > reading_score(first.words) else "first"
    )
    best = second if won == "cleaned" else first
    bottom = between_lines(best.words, rules.header_band * gray.shape[0], gray.shape[0])
    bands = {"first": in_band(first.words, bottom), "cleaned": in_band(second.words, bottom)}
    zonal, digits = _header_readings(page, cleaned, bottom, rules.header_scale, list(bands.values()), time_left)
    readings = {**bands, "zonal": zonal.words}
    body = split_at_band(best.text, best.words, bottom)
    use_zonal = body is not None and reading_score(zonal.words) > reading_score(readings[won])
    header_from: Literal["zonal", "page"] = "zonal" if use_zonal else "page"
    primary_key = "zonal" if use_zonal else won
    others = [words for key, words in readings.items() if key != primary_key] + [digits.words]
    voted, changes = vote_numbers(readings[primary_key], others)
    if use_zonal and body is not None:
        header_text = with_words(zonal.text.strip("\n"), zonal.words, voted)
        text = f"{header_text}\n\n{body[0]}\n" if body[0] else f"{header_text}\n"
        words = [*voted, *body[1]]
    else:
        at = {id(w): i for i, w in enumerate(readings[won])}
        words = [voted[at[id(w)]] if id(w) in at else w for w in best.words]
        text = with_words(best.text, best.words, words)
    spent = first.seconds + second.seconds + zonal.seconds + digits.seconds
    result = OcrResult(text, list(words), best.layer_pdf, spent)
    look = SecondLook(why, won, header_from, changes, time.monotonic() - started)
    return result, look, cleaned


def _read(page: _Page, image: np.ndarray, name: str, dpi: int, timeout: float, **options: object) -> OcrResult:
    path = page.work / f"{name}.pgm"
    cv2.imwrite(str(path), image)
    return ocr_image(path, page.work, page.lang, dpi, timeout, **options)  # type: ignore[arg-type]


_DIGITS_ONLY = "-c tessedit_char_whitelist=0123456789/-."


def _header_readings(
    page: _Page,
    cleaned: np.ndarray,
    bottom: float,
    scale: float,
    readings: Sequence[Sequence[Word]],
    time_left: Callable[[], float],
) -> tuple[OcrResult, OcrResult]:
    """The cleaned header band read on its own at ``scale`` times the resolution, and its
    numbers (where any reading saw one) read again for digits only; boxes in page pixels."""
    big = cv2.resize(cleaned[: max(1, int(bottom))], None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    sharp = np.where(big < 128, 0, 255).astype(np.uint8)  # smooth edges at the new resolution
    dpi = round(page.dpi * scale)
    zonal = _scaled(_read(page, sharp, "band-text", dpi, time_left(), psm=6), 1 / scale)
    boxes: list[Word] = []
    for word in (w for reading in (zonal.words, *readings) for w in reading if _is_number(w)):
        if not any(_overlaps(word, taken) for taken in boxes):
            boxes.append(word)
    return zonal, _numbers_read(page, sharp, boxes, scale, time_left)


def _numbers_read(
    page: _Page, sharp: np.ndarray, boxes: Sequence[Word], scale: float, time_left: Callable[[], float]
) -> OcrResult:
    """The numbers' boxes cut from the band, stacked in one image and read once for digits."""
    if not boxes:
        return OcrResult("", [], b"", 0.0)
    crops, places, at = [], [], 0
    for box in boxes:
        pad = box.height * scale * 0.4
        left, top = max(0, int(box.left * scale - 2 * pad)), max(0, int(box.top * scale - pad))
        right, bottom = int((box.left + box.width) * scale + 2 * pad), int((box.top + box.height) * scale + pad)
        crop = sharp[top:bottom, left:right]
        if crop.size == 0:
            continue
        places.append((at, at + crop.shape[0], left, top))
        crops.append(crop)
        at += crop.shape[0] + int(2 * pad)
    if not crops:
        return OcrResult("", [], b"", 0.0)
    strip = np.full((at, max(c.shape[1] for c in crops)), 255, np.uint8)
    for crop, (start, end, _, _) in zip(crops, places, strict=True):
        strip[start:end, : crop.shape[1]] = crop
    read = _read(page, strip, "band-digits", round(page.dpi * scale), time_left(), psm=6, options=_DIGITS_ONLY)
    words = []
    for w in read.words:
        middle = w.top + w.height / 2
        place = next((p for p in places if p[0] <= middle < p[1]), None)
        if place is not None:
            start, _, left, top = place
            words.append(replace(w, left=w.left + left, top=w.top - start + top))
    return _scaled(OcrResult(read.text, words, b"", read.seconds), 1 / scale)


def _scaled(result: OcrResult, factor: float) -> OcrResult:
    words = [
        replace(
            w,
            left=round(w.left * factor),
            top=round(w.top * factor),
            width=round(w.width * factor),
            height=round(w.height * factor),
        )
        for w in result.words
    ]
    return OcrResult(result.text, words, result.layer_pdf, result.seconds)
