"""A page read by where its words sit, not by the order a text layer or OCR lists them.

Forms printed by other systems (a CMS-1500 claim) put small print first in reading
order and their title in the middle of it; their fields are boxes with a small label
at the top and the value below. From word boxes (OCR TSV, or pdftotext -bbox for a
text layer) this finds the lines a person sees: titles by size and position, and the
value of a label inside its box. Pure: words in, strings out.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import median

from pipeline.core.models import Word

# Words further apart than this many line heights belong to different fields (form boxes).
_FIELD_GAP = 2.5
# Words whose vertical centres are this close (in line heights) sit on one row.
_SAME_ROW = 0.5
# A title is at least this much taller than the page's usual word, in the top part of the page.
_TITLE_RATIO = 1.4
_TITLE_ZONE = 0.3
_MAX_TITLE_WORDS = 8
# A box's value sits below its label within this many label heights.
_VALUE_BELOW = 4.0
# Format hints printed in a label ("MM | DD | YY", "(Last Name, First Name)") are no value.
# OCR reads the bars between them as I or l ("MM|DDI|YY").
_HINT = re.compile(r"\([^)]*\)?|\b[MDYCIl1]{2,10}\b|[|/:]")


@dataclass(frozen=True)
class Line:
    """Words on one row that belong together (one field or one heading)."""

    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        return " ".join(w.text for w in self.words)

    @property
    def left(self) -> int:
        return min(w.left for w in self.words)

    @property
    def right(self) -> int:
        return max(w.left + w.width for w in self.words)

    @property
    def top(self) -> int:
        return min(w.top for w in self.words)

    @property
    def bottom(self) -> int:
        return max(w.top + w.height for w in self.words)

    @property
    def height(self) -> float:
        return float(median(w.height for w in self.words))


def _centre(word: Word) -> float:
    return word.top + word.height / 2


def lines_of(words: Sequence[Word]) -> list[Line]:
    """The page's lines top to bottom, a row cut where a gap says another field starts."""
    rows: list[list[Word]] = []
    for word in sorted((w for w in words if w.height > 0 and w.text.strip()), key=_centre):
        row = rows[-1] if rows else None
        if row and abs(_centre(word) - median(_centre(w) for w in row)) <= _SAME_ROW * max(
            word.height, median(w.height for w in row)
        ):
            row.append(word)
        else:
            rows.append([word])
    found = []
    for row in rows:
        row.sort(key=lambda w: w.left)
        height = median(w.height for w in row)
        segment = [row[0]]
        for word in row[1:]:
            previous = segment[-1]
            if word.left - (previous.left + previous.width) > _FIELD_GAP * height:
                found.append(Line(tuple(segment)))
                segment = []
            segment.append(word)
        found.append(Line(tuple(segment)))
    return sorted(found, key=lambda line: (line.top, line.left))


def title_lines(words: Sequence[Word]) -> list[str]:
    """Lines printed larger than the page's usual word near its top, largest first."""
    lines = lines_of(words)
    if not lines:
        return []
    usual = median(w.height for line in lines for w in line.words)
    top, bottom = min(line.top for line in lines), max(line.bottom for line in lines)
    zone = top + _TITLE_ZONE * (bottom - top)
    titles = [
        line
        for line in lines
        if line.top <= zone and line.height >= _TITLE_RATIO * usual and len(line.words) <= _MAX_TITLE_WORDS
    ]
    return [line.text for line in sorted(titles, key=lambda line: -line.height)]


def _overlaps(label: Line, below: Line) -> bool:
    """``below`` starts under the label's box: at its left edge, or under its text."""
    slack = 2 * label.height
    return label.left - slack <= below.left <= label.right


def value_below(lines: Sequence[Line], index: int) -> str | None:
    """The text of the nearest line under ``lines[index]`` inside the same box, if any."""
    label = lines[index]
    reach = label.bottom + _VALUE_BELOW * max(label.height, 1.0)
    under = [
        line
        for line in lines[index + 1 :]
        if line.top >= label.bottom - label.height / 2 and line.top <= reach and _overlaps(label, line)
    ]
    if not under:
        return None
    # The value's parts on that row (a date in boxes: "05  10  1961") read left to right.
    first = min(under, key=lambda line: (line.top, line.left))
    row = [line for line in under if abs(line.top - first.top) <= _SAME_ROW * max(first.height, line.height)]
    return " ".join(line.text for line in sorted(row, key=lambda line: line.left))


def rest_is_hint(text: str) -> bool:
    """Whether what follows a label on its line is only a format hint, not a value."""
    return not re.sub(r"\W", "", _HINT.sub(" ", text))
