"""Damaged paper, made in code from a seed: what a records department's scanner is fed.

Copies of copies, toner streaks from a dirty drum, folds and curls, low ink, highlighter
and pen on the text, bleed-through from the back, uneven light and the shadow of a book
spine. Each effect works on a whole grayscale page with OpenCV and NumPy, at strengths a
person still reads without trouble: the point is pages that OCR reads badly, not pages
nobody could read.

The third-party augraphy package was tried for this: it pulls in the GUI build of OpenCV
(which replaces the headless one the workers use) and matplotlib, numba and scikit-image
for a test fixture, so the few effects needed are written here instead.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

import cv2
import numpy as np
from PIL import Image

Page = np.ndarray  # float32, 0 = ink, 255 = paper, one channel
_Effect = Callable[[Page, np.random.Generator], Page]


def _photocopy(page: Page, rng: np.random.Generator) -> Page:
    """Copy of a copy: each generation blurs a little, spreads toner, greys the paper and adds grain."""
    height, width = page.shape
    for _ in range(int(rng.integers(1, 4))):
        page = cv2.GaussianBlur(page, (0, 0), float(rng.uniform(0.8, 1.4)))
        # The copier's contrast curve: strokes thicken or thin, faint print darkens, paper stays paper.
        level, soft = float(rng.uniform(130, 190)), float(rng.uniform(12, 25))
        page = 255 / (1 + np.exp(-(page - level) / soft)) * (1 + np.exp(-(255 - level) / soft))
        toner = cv2.resize(rng.uniform(0, 25, (12, 9)).astype(np.float32), (width, height))
        page = page - toner * (page > 128) + rng.normal(0, rng.uniform(6, 14), page.shape).astype(np.float32)
    return page.astype(np.float32)


def _streaks(page: Page, rng: np.random.Generator) -> Page:
    """Dark toner streaks down the page from a dirty drum, of uneven darkness along their length."""
    height, width = page.shape
    dpi = width / 8.5
    darken = np.zeros(width, np.float32)
    for _ in range(int(rng.integers(2, 6))):
        centre = int(rng.uniform(0.05, 0.75) * width)  # across the text, where it hurts
        half = max(1, round(rng.uniform(0.01, 0.07) * dpi))
        darken[max(0, centre - half) : centre + half] = rng.uniform(120, 220)
    along = cv2.resize(rng.uniform(0.55, 1.0, (8, 1)).astype(np.float32), (1, height), interpolation=cv2.INTER_CUBIC)
    band = np.clip(along, 0, 1) * cv2.GaussianBlur(darken[np.newaxis, :], (0, 0), 1.5)
    return page - band


def _fold(page: Page, rng: np.random.Generator) -> Page:
    """A letter folded in three and flattened: the lines bend at the crease, which leaves a dark seam."""
    height, width = page.shape
    at = int(rng.uniform(0.15, 0.4) * height) if rng.random() < 0.6 else int(rng.uniform(0.6, 0.7) * height)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    lift = float(rng.uniform(0.006, 0.02)) * height
    bend = lift * np.exp(-(((ys - at) / (0.05 * height)) ** 2)) * np.sin(np.pi * xs / width)
    tilt = float(rng.uniform(-0.006, 0.006)) * (ys - at) * (ys > at)
    warped = cv2.remap(page, xs, ys + bend + tilt * xs / width, cv2.INTER_LINEAR, borderValue=255.0)
    seam = np.exp(-(((ys - at) / rng.uniform(2, 5)) ** 2)) * rng.uniform(50, 110)
    shade = np.where(ys > at, rng.uniform(0.9, 0.97), 1.0)
    return (warped * shade - seam).astype(np.float32)


def _low_ink(page: Page, rng: np.random.Generator) -> Page:
    """Faint print, fainter in patches where the cartridge ran dry."""
    height, width = page.shape
    patches = cv2.resize(
        rng.uniform(0.2, 0.55, (6, 4)).astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC
    )
    return 255 - (255 - page) * np.clip(patches, 0.25, 0.7)


def _highlighter(page: Page, rng: np.random.Generator) -> Page:
    """Strokes of highlighter over lines of text: a grey band once scanned in grayscale."""
    height, width = page.shape
    dpi = width / 8.5
    for _ in range(int(rng.integers(1, 4))):
        top = int(rng.uniform(0.05, 0.8) * height)
        left = int(rng.uniform(0.05, 0.4) * width)
        band = np.full((round(rng.uniform(0.16, 0.24) * dpi), int(rng.uniform(0.25, 0.55) * width)), 1.0, np.float32)
        band *= float(rng.uniform(0.62, 0.8))
        bottom, right = min(height, top + band.shape[0]), min(width, left + band.shape[1])
        page[top:bottom, left:right] *= band[: bottom - top, : right - left]
    return page


def _pen(page: Page, rng: np.random.Generator) -> Page:
    """Pen on the page: a circled line, an underline, a tick, a scribbled note in the margin."""
    height, width = page.shape
    dpi = width / 8.5
    ink = page.copy()
    for _ in range(int(rng.integers(2, 6))):
        thick = max(2, round(rng.uniform(0.01, 0.025) * dpi))
        colour = float(rng.uniform(20, 90))
        # Clerks mark the patient block more than anything: a third of marks land there.
        top = (0.12, 0.3) if rng.random() < 0.35 else (0.05, 0.85)
        x, y = int(rng.uniform(0.1, 0.75) * width), int(rng.uniform(*top) * height)
        if rng.random() < 0.5:
            axes = (int(rng.uniform(0.6, 1.6) * dpi), int(rng.uniform(0.12, 0.3) * dpi))
            cv2.ellipse(ink, (x, y), axes, float(rng.uniform(-5, 5)), 0, 340, colour, thick, cv2.LINE_AA)
        else:
            steps = rng.uniform(-0.06, 0.06, (6, 2)) * dpi + np.array([[0.3 * dpi, 0]])
            points = (np.array([x, y]) + np.cumsum(steps, axis=0)).astype(np.int32)
            cv2.polylines(ink, [points], False, colour, thick, cv2.LINE_AA)
    return ink


def _bleed_through(page: Page, rng: np.random.Generator) -> Page:
    """The back of the sheet showing through: mirrored, blurred, faint."""
    back = cv2.GaussianBlur(page[:, ::-1], (0, 0), float(rng.uniform(1.5, 3)))
    back = np.roll(back, int(rng.integers(-40, 40)), axis=0)
    strength = float(rng.uniform(0.12, 0.25))
    return page * (1 - strength * (1 - back / 255))


def _lighting(page: Page, rng: np.random.Generator) -> Page:
    """Uneven light: a gradient across the page and the shadow of a spine or a lifted edge."""
    height, width = page.shape
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    angle = float(rng.uniform(0, 2 * np.pi))
    ramp = (np.cos(angle) * xs / width + np.sin(angle) * ys / height) * rng.uniform(0.1, 0.25)
    edge = int(rng.integers(0, 4))
    distance = (xs, width - xs, ys, height - ys)[edge] / (width if edge < 2 else height)
    shadow = rng.uniform(0.35, 0.6) * np.exp(-distance / rng.uniform(0.04, 0.1))
    light = np.clip(1 - ramp + ramp.mean() - shadow, 0.3, 1.05)
    return page * light


EFFECTS: dict[str, _Effect] = {
    "photocopy": _photocopy,
    "streaks": _streaks,
    "fold": _fold,
    "low_ink": _low_ink,
    "highlighter": _highlighter,
    "pen": _pen,
    "bleed_through": _bleed_through,
    "lighting": _lighting,
}
# Applied in the order paper meets them: the sheet is printed (ink), marked, folded, copied, scanned.
_ORDER = ("low_ink", "highlighter", "pen", "bleed_through", "fold", "photocopy", "streaks", "lighting")


def damage(
    image: Image.Image, rng: random.Random, kinds: Sequence[str] | None = None
) -> tuple[Image.Image, tuple[str, ...]]:
    """``image`` with the effects ``kinds`` (two to four drawn at random when None), and the kinds applied.

    The same ``rng`` state gives the same pixels. The result is grayscale, with the
    image's resolution kept.
    """
    if kinds is None:
        kinds = rng.sample(sorted(EFFECTS), rng.randint(2, 4))
    unknown = set(kinds) - set(EFFECTS)
    if unknown:
        raise ValueError(f"unknown damage {sorted(unknown)}; choose from {sorted(EFFECTS)}")
    generator = np.random.default_rng(rng.getrandbits(64))
    page = np.asarray(image.convert("L"), np.float32).copy()
    applied = tuple(kind for kind in _ORDER if kind in kinds)
    for kind in applied:
        page = EFFECTS[kind](page, generator)
    result = Image.fromarray(np.clip(page, 0, 255).astype(np.uint8), "L")
    if "dpi" in image.info:
        result.info["dpi"] = image.info["dpi"]
    return result, applied
