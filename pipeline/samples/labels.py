"""Barcode artwork for tests, benchmarks and demos: patient stickers and separator sheets.

Sizes follow what hospital printers produce: 10-mil (0.01 inch) bars and 20-mil 2-D
modules on labels, 20-mil codes on separator sheets.
"""

from __future__ import annotations

import random
from functools import lru_cache
from pathlib import Path

import numpy as np
import zxingcpp
from PIL import Image, ImageDraw, ImageFont

from pipeline.pages.barcodes import barcode_format

LETTER_INCHES = (8.5, 11.0)
_FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
_LINEAR = frozenset({"Code128", "Code39", "Code93", "Codabar", "ITF", "EAN13", "EAN8", "UPCA", "UPCE"})
_LABEL_PT = 9


@lru_cache(maxsize=16)
def _font(size_px: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = _FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if path.exists():
        return ImageFont.truetype(str(path), size_px)
    return ImageFont.load_default(size=size_px)


def barcode_image(value: str, format: str, module_px: int) -> Image.Image:
    """The symbol with its quiet zones, black on white, ``module_px`` pixels per module."""
    symbol = zxingcpp.create_barcode(value, barcode_format(format))
    pixels = np.asarray(symbol.to_image(scale=module_px, add_quiet_zones=True))  # one byte per pixel
    height, width = pixels.shape
    return Image.frombytes("L", (width, height), pixels.tobytes())


def patient_label(patient_mrn: str, name: str, dob: str, format: str = "Code128", dpi: int = 300) -> Image.Image:
    """A registration sticker: the MRN as a barcode, then name, MRN and DOB in print.

    Linear codes sit above the text, 2-D codes beside it, as on real labels.
    """
    linear = barcode_format(format).name in _LINEAR
    # 10-mil bars; 2-D modules of 20 mil, as label printers make them.
    code = barcode_image(patient_mrn, format, max(2, round(dpi / 100)) if linear else max(4, round(dpi / 50)))
    font_px = round(_LABEL_PT * dpi / 72)
    font = _font(font_px)
    lines = [name, f"MRN: {patient_mrn}", f"DOB: {dob}"]
    line_h = round(font_px * 1.3)
    text_w = max(round(font.getlength(line)) for line in lines)
    text_h = line_h * len(lines)
    pad = round(0.06 * dpi)
    if linear:
        size = (max(code.width, text_w) + 2 * pad, code.height + text_h + 2 * pad)
        code_xy, text_xy = (pad, pad), (pad, pad + code.height)
    else:
        size = (code.width + text_w + 3 * pad, max(code.height, text_h) + 2 * pad)
        code_xy, text_xy = (pad, pad), (2 * pad + code.width, pad)
    label = Image.new("L", size, 255)
    label.paste(code, code_xy)
    draw = ImageDraw.Draw(label)
    for k, line in enumerate(lines):
        draw.text((text_xy[0], text_xy[1] + k * line_h), line, font=font, fill=0)
    draw.rectangle((0, 0, size[0] - 1, size[1] - 1), outline=170)  # the sticker's edge shows on scans
    return label


def paste_label(page: Image.Image, label: Image.Image, xy: tuple[int, int]) -> Image.Image:
    """A copy of ``page`` with ``label`` stuck on at ``xy`` (the original is left alone)."""
    stuck = page.copy()
    stuck.paste(label, xy)
    return stuck


def separator_sheet(dpi: int = 300, value: str = "PATCHT") -> Image.Image:
    """A letter page that separates documents in a batch: "DOCUMENT SEPARATOR" and two codes.

    The same value is printed as Code 128 and as Code 39, so the sheet works whichever
    of the two the site's barcode formats list.
    """
    page = Image.new("L", (round(LETTER_INCHES[0] * dpi), round(LETTER_INCHES[1] * dpi)), 255)
    draw = ImageDraw.Draw(page)
    title, caption = _font(round(30 * dpi / 72), bold=True), _font(round(16 * dpi / 72))

    def centred(y: float, text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> None:
        draw.text(((page.width - font.getlength(text)) / 2, y * dpi), text, font=font, fill=0)

    centred(1.0, "DOCUMENT SEPARATOR", title)
    # Code 39 modules a multiple of 3 pixels: zxing's 3:1 downscaled pass then averages
    # speckle away instead of aliasing the narrow/wide ratio (4-5 px fail on dirty scans).
    code39_px = 3 * max(1, round(dpi / 150))
    for y, fmt, module in ((2.5, "Code128", round(dpi / 50)), (6.0, "Code39", code39_px)):
        code = barcode_image(value, fmt, module)
        page.paste(code, ((page.width - code.width) // 2, round(y * dpi)))
        centred(y + code.height / dpi + 0.2, value, caption)
    page.info["dpi"] = (dpi, dpi)
    return page


def scan_like(image: Image.Image, *, skew_deg: float = 0.0, noise: float = 0.0, seed: int = 0) -> Image.Image:
    """The image as a scanner returns it: turned by ``skew_deg`` and speckled.

    ``noise`` is the share of 2-pixel (at 300 dpi) cells turned black, and as many white.
    """
    page = image.convert("L")
    if skew_deg:
        page = page.rotate(skew_deg, resample=Image.Resampling.BICUBIC, fillcolor=255)
    if noise:
        rng = random.Random(seed)
        cell = max(1, round(page.width / 1275))
        grid = (-(-page.width // cell), -(-page.height // cell))
        for colour in (0, 255):
            mask = bytearray(grid[0] * grid[1])
            for i in rng.sample(range(len(mask)), round(noise * len(mask))):
                mask[i] = 255
            cells = Image.frombytes("L", grid, bytes(mask))
            specks = cells.resize((grid[0] * cell, grid[1] * cell), Image.Resampling.NEAREST)
            page.paste(colour, (0, 0, *page.size), specks.crop((0, 0, *page.size)))
    return page
