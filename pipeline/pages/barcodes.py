"""Barcodes on a page: patient labels, separator sheets, form-type codes.

A barcode is printed by a machine from the registration system, so its MRN is far more
reliable than OCR of the same digits; but it carries no label, so only values that fit
the MRN pattern (optionally prefixed "MRN") are taken as MRNs.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np
import zxingcpp
from PIL import Image

from pipeline.core.errors import MedarchiveError
from pipeline.core.models import BarcodeRead
from pipeline.pages.clean import thresholded

_MRN_PREFIX = re.compile(r"MRN[ \t]*[:#-]?[ \t]*", re.IGNORECASE)
# ISO/IEC 16388 modifiers zxing-cpp reports when a Code 39's mod-43 check character
# validated and was left in the text (plain and full-ASCII).
_CHECKED_CODE39 = frozenset({"]A1", "]A5"})
# Codes found by their finder patterns (QR, DataMatrix, Aztec...) in any orientation.
# Linear and stacked codes (PDF417) are read along rows, so only with the page turned
# too; turning it for the others costs a third of the whole read and finds nothing more.
_ANY_ORIENTATION = frozenset(
    f
    for f in zxingcpp.barcode_formats_list(zxingcpp.BarcodeFormats(zxingcpp.BarcodeFormat.AllMatrix))
    if "PDF417" not in f.name
)
# (for codes found in any orientation?, binarizer, try_rotate)
_PASSES = (
    (False, zxingcpp.Binarizer.LocalAverage, True),
    (True, zxingcpp.Binarizer.LocalAverage, False),
    (True, zxingcpp.Binarizer.FixedThreshold, False),
)


_ZXING_MAX_SIDE = 65535


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
    if not formats or min(image.size) < 1:
        return []
    gray = image if image.mode == "L" else image.convert("L")
    if max(gray.size) > _ZXING_MAX_SIDE:  # a strip of a page many feet long: zxing-cpp refuses it
        gray = gray.reduce(-(-max(gray.size) // _ZXING_MAX_SIDE))
    wanted = _formats(tuple(formats))
    reads: dict[tuple[str, str], BarcodeRead] = {}
    for any_orientation, binarizer, try_rotate in _PASSES:
        subset = [f for f in wanted if (f in _ANY_ORIENTATION) == any_orientation]
        if not subset:
            continue
        found = zxingcpp.read_barcodes(
            gray,
            formats=zxingcpp.BarcodeFormats(subset),
            try_rotate=try_rotate,
            try_invert=False,
            binarizer=binarizer,
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
    rest = reading[prefix.end() :] if prefix else ""
    return rest if pattern.fullmatch(rest) else None


def is_separator(reads: Iterable[BarcodeRead], separator_value: str, patch_bars: bool = False) -> bool:
    """A separator barcode; with ``patch_bars``, the patch-T bar pattern alone is one too."""
    return any(patch_bars if read.format == PATCH_T_FORMAT else separator_value in read.readings for read in reads)


# ---------------------------------------------------------------- separator sheets, whole page

# A patch-T sheet found by its bars is reported as a read of this pseudo-format.
PATCH_T_FORMAT = "PatchT"
_SEPARATOR_FORMATS = ("Code39", "Code128", "QRCode")
_PAGE_SHORT_INCHES = 8.4  # letter and A4 alike, near enough for bar widths
_BAR_PPI = 50  # the bar pattern is looked for at this resolution
_OVERVIEW_PPI = 150  # the first, cheap barcode pass over the whole page
# Kodak patch T from the paper's edge inward: narrow bar, gap, wide bar, gap, narrow bar,
# gap, wide bar. Narrow is 0.08 in, wide 0.20 in; scans blur, stretch and skew them.
_PATCH_T = ("n", "n", "w", "n", "n", "n", "w")
_NARROW, _WIDE = (0.04, 0.13), (0.14, 0.30)
_EDGE_INCHES = 1.6
_STRIP_INCHES = 1.0  # skew moves a bar by 0.03 in across one strip at 1.5 degrees


def separator_reads(page: Image.Image, formats: Sequence[str], separator_value: str) -> list[BarcodeRead]:
    """Separator evidence anywhere on a page whose barcodes are otherwise read in a band.

    A patch-T bar pattern along any edge is reported as a PATCH_T_FORMAT read. The
    separator barcode (Code 39, Code 128 or QR, either way up) is looked for once on the
    page subsampled to about 150 dpi, and at full resolution only when the bars say this
    is a patch sheet. Reads of any other value are dropped: a label low on a page of text
    is not looked for here. About 0.07 s a page, a thirtieth of its OCR.
    """
    if min(page.size) < _PAGE_SHORT_INCHES * _BAR_PPI / 4:
        return []  # a sliver, not a sheet of paper
    gray = page if page.mode == "L" else page.convert("L")
    pixels = np.asarray(gray)
    ppi = min(pixels.shape) / _PAGE_SHORT_INCHES
    bars = max(1, round(ppi / _BAR_PPI))
    found = (
        [BarcodeRead(separator_value, PATCH_T_FORMAT, 0, 0)]
        if has_patch_t(pixels[::bars, ::bars] < 128, ppi / bars)
        else []
    )
    wanted = _formats(tuple(f for f in formats if f in _SEPARATOR_FORMATS))
    if not wanted:
        return found
    step = max(1, int(ppi // _OVERVIEW_PPI), -(-max(pixels.shape) // _ZXING_MAX_SIDE))
    overview = zxingcpp.read_barcodes(
        np.ascontiguousarray(pixels[::step, ::step]),
        formats=zxingcpp.BarcodeFormats(wanted),
        try_rotate=False,
        try_invert=False,
        binarizer=zxingcpp.Binarizer.LocalAverage,
        text_mode=zxingcpp.TextMode.Plain,
    )
    reads = [BarcodeRead(b.text, b.format.name, *(step * v for v in _top_left(b.position))) for b in overview]
    if not any(separator_value in r.readings for r in reads) and found:
        reads = _separator_code(gray, pixels, [f.name for f in wanted], separator_value)
    return found + [r for r in reads if separator_value in r.readings]


def _separator_code(
    gray: Image.Image, pixels: np.ndarray, formats: list[str], separator_value: str
) -> list[BarcodeRead]:
    """The code of a sheet whose bars say it is a separator, at full resolution; then, if a
    toner streak down the page hides it, on the page cut at several grey levels, where a
    streak lighter than the printed bars drops out."""
    reads = read_barcodes(gray, formats)
    for cut in () if any(separator_value in r.readings for r in reads) else thresholded(pixels):
        reads = read_barcodes(Image.fromarray(cut), formats)
        if any(separator_value in r.readings for r in reads):
            break
    return reads


def has_patch_t(dark: np.ndarray, ppi: float) -> bool:
    """Whether the patch-T bars run along an edge of the page (``dark``: True where ink),
    read from that edge inward, whichever way up the sheet was fed."""
    edges = (dark, dark[::-1], dark.T, dark.T[::-1])
    return any(_edge_has_patch_t(edge, ppi) for edge in edges)


def _edge_has_patch_t(dark: np.ndarray, ppi: float) -> bool:
    depth = min(dark.shape[0], round(_EDGE_INCHES * ppi))
    strip = max(2, round(_STRIP_INCHES * ppi))
    width = dark.shape[1]
    centres = (width // 4, width // 2, 3 * width // 4)
    hits = sum(
        _runs_match(dark[:depth, max(0, c - strip // 2) : c + strip // 2].mean(axis=1) >= 0.5, ppi) for c in centres
    )
    return hits >= 2  # a smudge or a torn corner may spoil one strip


def _runs_match(bar_rows: np.ndarray, ppi: float) -> bool:
    """Whether the rows, outward to inward, hold the patch-T runs after white paper."""
    changes = np.flatnonzero(np.diff(bar_rows.astype(np.int8))) + 1
    bounds = [0, *changes.tolist(), len(bar_rows)]
    runs = [(bool(bar_rows[a]), (b - a) / ppi) for a, b in itertools.pairwise(bounds)]
    for i, (is_bar, _) in enumerate(runs):
        if not is_bar or (i > 0 and runs[i - 1][1] < 0.1):
            continue  # the pattern starts with a bar after clear paper
        window = runs[i : i + len(_PATCH_T)]
        if len(window) == len(_PATCH_T) and all(
            lo <= size <= hi
            for (_, size), kind in zip(window, _PATCH_T, strict=True)
            for lo, hi in [_NARROW if kind == "n" else _WIDE]
        ):
            return True
    return False


def doc_type_from(reads: Iterable[BarcodeRead], mapping: dict[str, str]) -> str | None:
    """The document type the page's barcodes name; None when none does or two disagree."""
    types = {mapping[value] for read in reads for value in read.readings if value in mapping}
    return types.pop() if len(types) == 1 else None
