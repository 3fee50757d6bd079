"""A letter-size page drawn top-down with reportlab: the cover sheets, letters and lists the archive prints.

One drawer for all of them, so every printed page has the same margins, fonts and the
confidentiality footer a records office expects on paper that leaves it.
"""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

from reportlab.lib.pagesizes import letter
from reportlab.lib.utils import simpleSplit
from reportlab.pdfgen.canvas import Canvas


class Sheet:
    """Lines go down the page from the top margin; ``footer`` and ``save`` end a page and the file."""

    def __init__(self, target: Path | BinaryIO, *, margin: float = 54, leading: float = 13) -> None:
        self.canvas = Canvas(str(target) if isinstance(target, Path) else target, pagesize=letter, pageCompression=1)
        self.width, self.height = letter
        self.margin, self.leading = margin, leading
        self.y = self.height - margin
        self.overflow = " ..."  # where a field cut short can be read in full

    def line(self, text: str, font: str = "Helvetica", size: float = 10, indent: float = 0) -> None:
        self.canvas.setFont(font, size)
        self.canvas.drawString(self.margin + indent, self.y, text)
        self.y -= self.leading

    def gap(self, lines: float = 1) -> None:
        self.y -= lines * self.leading

    def paragraph(self, text: str, font: str = "Helvetica", size: float = 10) -> None:
        """Wrapped to the text width."""
        for part in simpleSplit(text, font, size, self.width - 2 * self.margin):
            self.line(part, font, size)

    def field(self, label: str, value: str, max_lines: int = 4) -> None:
        """A bold label and its value beside it, wrapped; cut after ``max_lines`` with ``overflow``."""
        lines = simpleSplit(value or "-", "Helvetica", 10, self.width - 2 * self.margin - 110) or ["-"]
        if len(lines) > max_lines:
            lines = [*lines[: max_lines - 1], lines[max_lines - 1] + self.overflow]
        self.canvas.setFont("Helvetica-Bold", 10)
        self.canvas.drawString(self.margin, self.y, label)
        for text in lines:
            self.canvas.setFont("Helvetica", 10)
            self.canvas.drawString(self.margin + 110, self.y, text)
            self.y -= self.leading

    def rows_left(self, bottom: float, keep: int = 0) -> int:
        """How many more lines fit above ``bottom``, keeping ``keep`` of them for what must follow."""
        return max(0, int((self.y - bottom) // self.leading) - keep)

    def footer(self, text: str, at: float | None = None) -> None:
        """The small print at the foot of the page, then a new page."""
        self.canvas.setFont("Helvetica-Oblique", 8)
        self.canvas.drawString(self.margin, self.margin / 2 if at is None else at, text)
        self.canvas.showPage()
        self.y = self.height - self.margin

    def save(self) -> None:
        self.canvas.save()
