"""Barcodes on a page: patient labels, separator sheets, form-type codes.

A barcode is printed by a machine from the registration system, so its MRN is far more
reliable than OCR of the same digits; but it carries no label, so only values that fit
the MRN pattern (optionally prefixed "MRN") are taken as MRNs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import zxingcpp
from PIL import Image

from pipeline.core.errors import MedarchiveError
from pipeline.core.models import BarcodeRead

_MRN_PREFIX = re.compile(r"MRN[ \t]*[:#-]?[ \t]*", re.IGNORECASE)
# ISO/IEC 16388 modifiers zxing-cpp reports when a Code 39's mod-43 check character
# validated and was left in the text (plain and full-ASCII).
_CHECKED_CODE39 = frozenset({"]A1", "]A5"})
# Codes found by their finder patterns (QR, DataMatrix, Aztec...) in any orientation.
# Linear and stacked codes (PDF417) are read along rows, so only with the page turned
# too; turning it for the others costs a third of the whole read and finds nothing more.
_ANY_ORIENTATION = frozenset(
    f for f in zxingcpp.barcode_formats_list(zxingcpp.BarcodeFormat.AllMatrix) if "PDF417" not in f.name
)
# (for codes found in any orientation?, binarizer, try_rotate)
_PASSES = (
    (False, zxingcpp.Binarizer.LocalAverage, True),
    (True, zxingcpp.Binarizer.LocalAverage, False),
    (True, zxingcpp.Binarizer.FixedThreshold, False),
)


class BarcodeError(MedarchiveError):
    """A configured barcode format name is unknown to zxing-cpp."""


@lru_cache(maxsize=16)
def _formats(names: tuple[str, ...]) -> tuple[zxingcpp.BarcodeFormat, ...]:
    formats = []
    for name in names:
        try:
            formats.append(zxingcpp.barcode_format_from_str(name))
        except ValueError:
            raise BarcodeError(
                f"unknown barcode format {name!r}; use names such as Code128, Code39, DataMatrix, QRCode"
            ) from None
    return tuple(formats)


def barcode_format(name: str) -> zxingcpp.BarcodeFormat:
    """The zxing-cpp format called ``name``; BarcodeError if there is none."""
    return _formats((name,))[0]


def read_barcodes(image: Image.Image, formats: Sequence[str]) -> list[BarcodeRead]:
    """Each distinct barcode (value and format) of the given formats on the page, top to bottom.

    zxing's local-average binarizer sees faded or grey print; for linear codes it also
    looks at the page turned 90 degrees (a page fed sideways, a label stuck on across the
    page). 2-D detectors find any orientation unturned, and are run a second time on a
    fixed threshold, which their finder patterns survive specks and dust with.
    Inverted codes are not looked for: nobody prints white-on-black labels on records.
    """
    if not formats:
        return []
    gray = image if image.mode == "L" else image.convert("L")
    wanted = _formats(tuple(formats))
    reads: dict[tuple[str, str], BarcodeRead] = {}
    for any_orientation, binarizer, try_rotate in _PASSES:
        subset = [f for f in wanted if (f in _ANY_ORIENTATION) == any_orientation]
        if not subset:
            continue
        found = zxingcpp.read_barcodes(
            gray, formats=subset, try_rotate=try_rotate, try_invert=False, binarizer=binarizer,
            text_mode=zxingcpp.TextMode.Plain,
        )
        for b in found:
            check_char = b.symbology_identifier in _CHECKED_CODE39
            read = BarcodeRead(b.text, b.format.name, *_top_left(b.position), check_char)
            reads.setdefault((read.value, read.format), read)
    return sorted(reads.values(), key=lambda r: (r.top, r.left, r.value))


def _top_left(position: zxingcpp.Position) -> tuple[int, int]:
    corners = (position.top_left, position.top_right, position.bottom_left, position.bottom_right)
    return max(0, min(p.x for p in corners)), max(0, min(p.y for p in corners))


def mrn_values(reads: Iterable[BarcodeRead], mrn_pattern: str) -> list[str]:
    """Distinct barcode values that are an MRN, "MRN00482913" and "MRN: 00482913" included.

    A read counts only when exactly one of its readings is an MRN: with a Code 39 check
    character that fits both ways ("999990002" under \\d{6,10}) it is a guess, and dropped.
    """
    pattern = re.compile(mrn_pattern)
    values = []
    for read in reads:
        valid = {m for reading in read.readings if (m := _mrn(reading, pattern))}
        if len(valid) == 1 and (value := valid.pop()) not in values:
            values.append(value)
    return values


def _mrn(reading: str, pattern: re.Pattern[str]) -> str | None:
    if pattern.fullmatch(reading):
        return reading  # the pattern may include the prefix itself
    prefix = _MRN_PREFIX.match(reading)
    rest = reading[prefix.end():] if prefix else ""
    return rest if pattern.fullmatch(rest) else None


def is_separator(reads: Iterable[BarcodeRead], separator_value: str) -> bool:
    return any(separator_value in read.readings for read in reads)


def doc_type_from(reads: Iterable[BarcodeRead], mapping: dict[str, str]) -> str | None:
    """The document type the page's barcodes name; None when none does or two disagree."""
    types = {mapping[value] for read in reads for value in read.readings if value in mapping}
    return types.pop() if len(types) == 1 else None
