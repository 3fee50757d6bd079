"""Pages fed upside down or sideways: detected only where the OCR result says so.

Tesseract's orientation detection (OSD) costs most of an OCR pass, so it is not run
on every page. A page is suspect when most of its words are taller than wide (text
running up or down the page), or when it was read with low confidence AND almost
none of its words are common English words: upside-down text reads as garbage
("‘yyeaig Jo ssaupOUs"), while a merely noisy upright page still yields its "the",
"and", "of".
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from PIL import Image

from pipeline.core.models import Word

_MIN_WORDS = 15
_LOW_MEAN_CONF = 70.0
_MIN_COMMON_RATIO = 0.05
_COMMON = frozenset(
    ["the", "and", "of", "to", "a", "in", "is", "for", "with", "was", "on", "at", "by", "as", "from", "or", "be", "are", "this", "that", "no", "not", "he", "she", "his", "her", "patient", "date", "mg", "daily", "name"]
)  # fmt: skip
_OSD_MIN_CONFIDENCE = 2.0
_ROTATE = re.compile(r"Rotate:\s*(\d+)")
_CONFIDENCE = re.compile(r"Orientation confidence:\s*([\d.]+)")


def is_suspect(words: list[Word]) -> bool:
    """Whether an OCR result looks like a page that is not upright."""
    if len(words) < _MIN_WORDS:
        return False
    long_words = [w for w in words if len(w.text) >= 4]
    if long_words and sum(1 for w in long_words if w.height > w.width) > len(long_words) / 2:
        return True
    mean = sum(w.conf for w in words) / len(words)
    return mean < _LOW_MEAN_CONF and _common_ratio(words) < _MIN_COMMON_RATIO


def _common_ratio(words: list[Word]) -> float:
    tokens = [re.sub(r"[^a-z]", "", w.text.lower()) for w in words]
    tokens = [t for t in tokens if t]
    return sum(t in _COMMON for t in tokens) / max(1, len(tokens))


def parse_osd(output: str) -> int:
    """Clockwise degrees that make the page upright, 0 when OSD is unsure."""
    rotate, confidence = _ROTATE.search(output), _CONFIDENCE.search(output)
    if not rotate or not confidence or float(confidence.group(1)) < _OSD_MIN_CONFIDENCE:
        return 0
    degrees = int(rotate.group(1)) % 360
    return degrees if degrees in (90, 180, 270) else 0


def detect_rotation(image: Path, timeout: float) -> int:
    try:
        done = subprocess.run(
            ["tesseract", str(image), "-", "--psm", "0"], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return 0
    return parse_osd(done.stdout) if done.returncode == 0 else 0


def rotate_image(image: Path, clockwise: int) -> Path:
    """Write the upright image beside the original and return its path."""
    target = image.with_name(f"{image.stem}-r{clockwise}{image.suffix}")
    with Image.open(image) as original:
        original.rotate(-clockwise, expand=True).save(target)
    return target
