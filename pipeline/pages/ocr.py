"""One page image → text, word confidences and a text-only PDF page, in ONE tesseract run.

Recognition is the whole cost of the product; running tesseract once per output
(text, TSV, PDF) would triple it.
"""

from __future__ import annotations

import csv
import os
import re
import time
from dataclasses import dataclass, replace
from pathlib import Path

import pytesseract

from pipeline.core.models import Word

# Several OpenMP threads per tesseract fight over the cores that the other
# tesseract processes need: one thread each is several times faster overall.
os.environ["OMP_THREAD_LIMIT"] = "1"


class OcrError(Exception):
    """Recognition failed or timed out for one page."""


@dataclass(frozen=True)
class OcrResult:
    text: str
    words: list[Word]
    layer_pdf: bytes
    seconds: float

    @property
    def mean_conf(self) -> float | None:
        confs = [w.conf for w in self.words]
        return sum(confs) / len(confs) if confs else None


def parse_tsv(tsv: str) -> list[Word]:
    """Words (level 5 rows) with a real confidence from tesseract's TSV output."""
    words = []
    for row in csv.DictReader(tsv.splitlines(), delimiter="\t", quoting=csv.QUOTE_NONE):
        text = (row.get("text") or "").strip()
        try:
            conf = float(row.get("conf") or -1)
        except ValueError:
            continue
        if row.get("level") != "5" or not text or conf < 0:
            continue
        words.append(Word(text, conf, int(row["left"]), int(row["top"]), int(row["width"]), int(row["height"])))
    return words


# tesseract's own hOCR: a word span, then one span per character with its confidence.
_HOCR_WORD = re.compile(r"<span class='ocrx_word'[^>]*title='bbox (\d+) (\d+) \d+ \d+;[^>]*>(.*?)\n\s*</span>", re.S)
_HOCR_CHAR_CONF = re.compile(r"x_conf ([0-9.]+)")


def char_confidences(hocr: str) -> dict[tuple[int, int], tuple[float, ...]]:
    """Per-character confidences of the words with a digit, by the word's top-left corner."""
    found = {}
    for m in _HOCR_WORD.finditer(hocr):
        body = m.group(3)
        if any(ch.isdigit() for ch in re.sub(r"<[^>]*>", "", body)):
            found[(int(m.group(1)), int(m.group(2)))] = tuple(float(c) for c in _HOCR_CHAR_CONF.findall(body))
    return found


def with_char_confidences(words: list[Word], hocr: str) -> list[Word]:
    """``words`` with the character confidences of the same recognition run attached."""
    confs = char_confidences(hocr)
    return [
        replace(w, char_confs=c) if (c := confs.get((w.left, w.top))) and len(c) == len(w.text) else w for w in words
    ]


def ocr_image(
    image: Path, out_dir: Path, lang: str, dpi: int, timeout: float, *, psm: int = 3, options: str = ""
) -> OcrResult:
    """Recognise ``image`` once; read back the .txt, .tsv and text-only .pdf it wrote.

    ``options`` are more tesseract ``-c`` settings (a zonal re-read's character whitelist)."""
    base = out_dir / image.stem
    # preserve_interword_spaces keeps table columns apart, so a value under its label is found.
    # The hOCR with character boxes is written by the same recognition (no second run):
    # its per-character confidences show which digit of an MRN is doubtful.
    config = (
        f"--dpi {dpi} --psm {psm} -c preserve_interword_spaces=1 -c textonly_pdf=1 -c tessedit_create_tsv=1"
        " -c tessedit_create_hocr=1 -c hocr_char_boxes=1"
    )
    config = f"{config} {options}".strip()
    started = time.monotonic()
    try:
        pytesseract.pytesseract.run_tesseract(str(image), str(base), "txt pdf", lang, config=config, timeout=timeout)
    except RuntimeError as exc:
        if "timeout" in str(exc).lower():
            raise OcrError(f"OCR timed out after {timeout:.0f} s") from None
        raise OcrError(f"OCR failed ({str(exc).strip()[:160]})") from None
    except pytesseract.TesseractError as exc:
        raise OcrError(f"OCR failed ({str(exc.message).strip()[:160]})") from None
    seconds = time.monotonic() - started
    try:
        text = Path(f"{base}.txt").read_text(encoding="utf-8", errors="replace")
        words = parse_tsv(Path(f"{base}.tsv").read_text(encoding="utf-8", errors="replace"))
        words = with_char_confidences(words, Path(f"{base}.hocr").read_text(encoding="utf-8", errors="replace"))
        layer = Path(f"{base}.pdf").read_bytes()
    except OSError as exc:
        raise OcrError(f"OCR produced no output ({exc.strerror})") from None
    return OcrResult(text, words, layer, seconds)
