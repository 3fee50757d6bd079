"""A scanned page's own image, taken straight out of the PDF.

A scanner's page is one image painted over the whole page and nothing else. Such a
page has no text to look for, and when its image already has the resolution OCR
wants, decoding it gives the pixels pdftoppm would draw, for a fifth of the cost
(pdftoppm spends a quarter of a second per page redrawing it). Anything else (text,
vector marks, masks, an odd filter or colour space, another resolution, a turned page)
is left to pdftotext and pdftoppm, which handle every PDF.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pikepdf
from PIL import Image

# Operators of a page that only places one image: save, transform, draw, restore.
_PLACING_OPERATORS = frozenset({"q", "Q", "cm", "Do"})
_DECODABLE_FILTERS = frozenset({"/DCTDecode", "/FlateDecode", "/CCITTFaxDecode"})
_PLAIN_COLOUR_SPACES = frozenset({"/DeviceGray", "/DeviceRGB", "/CalGray", "/CalRGB"})
# An image counts as drawn at the wanted resolution within a half percent (a pixel or
# two of rounding across a page), and as placed on the page box within half a point.
_DPI_TOLERANCE = 0.005
_PLACEMENT_TOLERANCE_PT = 0.5


@dataclass(frozen=True)
class BareScan:
    """A page that is nothing but one image; ``image`` is that image in grayscale when it
    can stand in for a render at the wanted resolution, else None (render the page)."""

    image: Image.Image | None


def bare_scan(pdf_path: Path, page_no: int, dpi: int) -> BareScan | None:
    """The page as a bare scan, or None when it holds anything besides one image."""
    try:
        with pikepdf.open(pdf_path) as pdf:
            page = pdf.pages[page_no - 1]
            placed = _sole_image(page)
            if placed is None:
                return None
            matrix, xobject = placed
            fits = _drawn_at(page, matrix, xobject, dpi) and _plainly_encoded(xobject)
            return BareScan(_decoded(xobject) if fits else None)
    except Exception:
        # Whatever this reader cannot follow (a damaged or lying image, a decoder pikepdf
        # lacks, a structure too deep), pdftotext and pdftoppm still can: this is only a shortcut.
        return None


def _sole_image(page: pikepdf.Page) -> tuple[list[float], pikepdf.Object] | None:
    """The transformation and the image XObject of a page that only draws that image."""
    # A page of text or vector drawing is told apart from its resources, without
    # parsing what may be a long content stream.
    xobjects = page.resources.get("/XObject")
    if xobjects is None or len(xobjects) != 1:
        return None
    matrix, drawn = None, None
    for instruction in pikepdf.parse_content_stream(page):
        operands, name = instruction.operands, str(instruction.operator)
        if name not in _PLACING_OPERATORS:
            return None
        if name == "cm":
            if matrix is not None or drawn is not None:
                return None
            matrix = [float(value) for value in operands]
        elif name == "Do":
            if drawn is not None:
                return None
            drawn = page.resources.XObject[str(operands[0])]
    if matrix is None or drawn is None or drawn.get("/Subtype") != "/Image":
        return None
    return matrix, drawn


def _drawn_at(page: pikepdf.Page, matrix: list[float], xobject: pikepdf.Object, dpi: int) -> bool:
    """Whether the image fills the crop box upright, unturned, at ``dpi`` in both directions."""
    if int(page.obj.get("/Rotate", 0)) % 360 or float(page.obj.get("/UserUnit", 1)) != 1:
        return False
    width, b, c, height, left, bottom = matrix
    x0, y0, x1, y1 = (float(v) for v in page.cropbox)
    placed = (width, height, left, bottom)
    box = (x1 - x0, y1 - y0, x0, y0)
    if b or c or any(abs(p - q) > _PLACEMENT_TOLERANCE_PT for p, q in zip(placed, box, strict=True)):
        return False
    dpi_x = int(xobject.Width) * 72 / width
    dpi_y = int(xobject.Height) * 72 / height
    return all(abs(found - dpi) <= _DPI_TOLERANCE * dpi for found in (dpi_x, dpi_y))


def _plainly_encoded(xobject: pikepdf.Object) -> bool:
    """One filter Pillow decodes to exactly what a renderer would paint: no masks, no
    Decode array, 1- or 8-bit gray or RGB."""
    if any(key in xobject for key in ("/SMask", "/Mask", "/Decode")) or xobject.get("/ImageMask", False):
        return False
    filters = xobject.get("/Filter")
    if isinstance(filters, pikepdf.Array):
        filters = filters[0] if len(filters) == 1 else None
    if filters is not None and str(filters) not in _DECODABLE_FILTERS:
        return False
    return int(xobject.get("/BitsPerComponent", 0)) in (1, 8) and _plain_colour(xobject.get("/ColorSpace"))


def _plain_colour(space: pikepdf.Object | None) -> bool:
    if isinstance(space, pikepdf.Array):
        if len(space) != 2:
            return False
        if space[0] == "/ICCBased":
            return int(space[1].get("/N", 0)) in (1, 3)
        space = space[0]
    return space is not None and str(space) in _PLAIN_COLOUR_SPACES


def _decoded(xobject: pikepdf.Object) -> Image.Image:
    image = pikepdf.PdfImage(cast(pikepdf.Stream, xobject)).as_pil_image()  # an image XObject is a stream
    # Pillow decodes lazily: a damaged JPEG must fail here, where pdftoppm takes over.
    image.load()
    return image if image.mode == "L" else image.convert("L")
