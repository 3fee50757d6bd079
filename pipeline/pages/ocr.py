"""One page image → text, word confidences and a text-only PDF page, in ONE tesseract run.

Recognition is the whole cost of the product; running tesseract once per output
(text, TSV, PDF) would triple it.
"""

from __future__ import annotations

import csv
import os
import time
from dataclasses import dataclass
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


def ocr_image(
    image: Path, out_dir: Path, lang: str, dpi: int, timeout: float, *, psm: int = 3, options: str = ""
) -> OcrResult:
    """Recognise ``image`` once; read back the .txt, .tsv and text-only .pdf it wrote.

    ``options`` are more tesseract ``-c`` settings (a zonal re-read's character whitelist)."""
    base = out_dir / image.stem
    # preserve_interword_spaces keeps table columns apart, so a value under its label is found.
    config = f"--dpi {dpi} --psm {psm} -c preserve_interword_spaces=1 -c textonly_pdf=1 -c tessedit_create_tsv=1"
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
        layer = Path(f"{base}.pdf").read_bytes()
    except OSError as exc:
        raise OcrError(f"OCR produced no output ({exc.strerror})") from None
    return OcrResult(text, words, layer, seconds)
