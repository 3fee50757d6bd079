"""Cleaning a badly read page for a second reading, with OpenCV.

Runs only on pages whose first reading was poor (see ``second_look``). The steps, each a
whole-image OpenCV operation:

* flat field: the page divided by its own paper (a grey-level closing far wider than any
  stroke), which takes out uneven light, a spine's shadow, a photocopy's grey paper and
  highlighter bands, and stretches faint print to full contrast;
* adaptive binarisation (a Gaussian-weighted local threshold, Sauvola's idea) so faint and
  dark print both come out black on white;
* streak and rule removal: ink that runs straight for longer than any character (a drum's
  streak down the page, a fold's seam across it) is found by opening with a long line and
  whitened, and the strokes it cut are closed again;
* border removal: large blotches touching the edge of the scan (a copier's black margin);
* despeckle: connected specks smaller than a full stop go.

``binarised`` gives the clean black-and-white page; ``flattened`` the grey page before
thresholding, which the header's zonal reading scales up before its own threshold.
"""

from __future__ import annotations

import cv2
import numpy as np

_PAPER_INCHES = 0.12  # wider than a stroke of 14 pt bold, narrower than a line gap
_LINE_INCHES = 0.6  # longer than any character, also a heading's
_SPECK_INCHES = 0.012  # a full stop at 8 pt is larger
_BORDER_SHARE = 0.25
_STREAK_INCHES = 2.5  # longer than any barcode's bars, shorter than a drum's streak down the page  # a blotch on the edge this long (share of the page side) is a copier's margin


def _odd(n: float) -> int:
    return max(3, int(n) // 2 * 2 + 1)


def flattened(gray: np.ndarray, dpi: int) -> np.ndarray:
    """The page with its paper made evenly white and its print stretched to full contrast.

    The paper is the page's grey-level closing (print filled in with the paper around it),
    taken on the page smoothed first so that a photocopy's grain does not set it."""
    # The paper varies slowly: it is found at a quarter of the resolution, where the
    # reduction itself smooths the grain, and scaled back up.
    small = cv2.resize(gray, None, fx=0.25, fy=0.25, interpolation=cv2.INTER_AREA)
    size = _odd(_PAPER_INCHES * dpi / 4)
    paper = cv2.morphologyEx(small, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    paper = cv2.resize(cv2.GaussianBlur(paper, (0, 0), size / 2), (gray.shape[1], gray.shape[0]))
    flat = cv2.divide(gray, np.maximum(paper, 1), scale=255)
    low = float(np.percentile(flat[::4, ::4], 0.5))
    if low > 254:
        return flat
    return cv2.convertScaleAbs(flat, alpha=255 / (255 - low), beta=-low * 255 / (255 - low))


def without_streaks(flat: np.ndarray, dpi: int) -> np.ndarray:
    """The ``flattened`` page with its streaks and rules taken out as one more background.

    A closing along a line longer than any character fills print in with the paper
    around it but keeps a streak (a drum's, down the page; a fold's seam, across it),
    which is then divided out like uneven light: the streak turns to paper, and print
    that crosses it, darker than the streak, stays print."""
    length = _odd(_LINE_INCHES * dpi)
    for kernel in ((1, length), (length, 1)):
        streaks = cv2.morphologyEx(flat, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        flat = cv2.divide(flat, np.maximum(streaks, 1), scale=255)
    return flat


def threshold(flat: np.ndarray, dpi: int) -> np.ndarray:
    """Black print (0) on white paper (255) by a local threshold over about a sixth of an
    inch, set above the paper's own grain (a photocopy's, measured on the page) so that
    bare paper stays white."""
    smooth = cv2.GaussianBlur(flat, (0, 0), max(0.7, dpi / 300))
    sample = smooth[::4, ::4].astype(np.float32)
    grain = 1.4826 * float(np.median(np.abs(sample - cv2.GaussianBlur(sample, (0, 0), 3))))
    offset = max(8.0, 2 * grain)
    return cv2.adaptiveThreshold(smooth, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, _odd(dpi / 6), offset)


def without_lines(ink: np.ndarray, dpi: int) -> np.ndarray:
    """``ink`` (255 where printed) less the straight runs longer than any character."""
    length = _odd(_LINE_INCHES * dpi)
    lines = np.zeros_like(ink)
    for kernel in ((1, length), (length, 1)):
        run = cv2.morphologyEx(ink, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, kernel))
        lines = cv2.bitwise_or(lines, run)
    if not lines.any():
        return ink
    lines = cv2.dilate(lines, np.ones((3, 3), np.uint8))
    kept = cv2.bitwise_and(ink, cv2.bitwise_not(lines))
    # Rejoin strokes the removal cut: a letter's stem across a streak loses a few pixels.
    return cv2.morphologyEx(kept, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))


def without_specks_and_borders(ink: np.ndarray, dpi: int) -> np.ndarray:
    """``ink`` less the specks smaller than a full stop and the blotches along the scan's edge."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    height, width = ink.shape
    left, top = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    right, bottom = left + stats[:, cv2.CC_STAT_WIDTH], top + stats[:, cv2.CC_STAT_HEIGHT]
    on_edge = (left == 0) | (top == 0) | (right == width) | (bottom == height)
    long_side = np.maximum(stats[:, cv2.CC_STAT_WIDTH] / width, stats[:, cv2.CC_STAT_HEIGHT] / height)
    speck = stats[:, cv2.CC_STAT_AREA] < (_SPECK_INCHES * dpi) ** 2
    keep = ~(speck | (on_edge & (long_side > _BORDER_SHARE)))
    keep[0] = False  # the background
    return np.where(keep[labels], 255, 0).astype(np.uint8) if count > 1 else ink


def binarised(flat: np.ndarray, dpi: int) -> np.ndarray:
    """The ``flattened`` page cleaned for OCR: black print on white, without streaks, borders and specks."""
    ink = cv2.bitwise_not(threshold(without_streaks(flat, dpi), dpi))
    ink = without_specks_and_borders(without_lines(ink, dpi), dpi)
    return cv2.bitwise_not(ink)


def without_page_streaks(gray: np.ndarray, dpi: int) -> np.ndarray:
    """The grey page with the streaks that run down most of it divided out, and every
    shorter mark kept as it was: a barcode's bars, which ``binarised`` takes for rules,
    survive, and a streak across them no longer reads as one more bar."""
    length = _odd(_STREAK_INCHES * dpi)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1, length))
    streaks = cv2.morphologyEx(gray, cv2.MORPH_CLOSE, kernel)
    return cv2.divide(gray, np.maximum(streaks, 1), scale=255)


def thresholded(gray: np.ndarray, levels: tuple[int, ...] = (40, 70, 110, 150, 190)) -> list[np.ndarray]:
    """The page cut at several grey levels: a streak lighter than print vanishes at a low one,
    faded print survives at a high one. For barcode readers, which binarise once."""
    return [np.where(gray < level, 0, 255).astype(np.uint8) for level in levels]
