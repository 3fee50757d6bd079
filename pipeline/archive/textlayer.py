"""Assemble one archived PDF: the original pages, untouched, each OCRed one carrying
tesseract's invisible text under its image so the archive is searchable in any viewer.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import pikepdf

from pipeline.core.models import PageText

# Display space → content space for each /Rotate (the page is shown turned
# clockwise; the text layer was made from what is shown): (a, b, c, d) of a PDF
# matrix, with the translation given as multiples of the box's width and height.
_UNROTATE = {
    0: ((1, 0, 0, 1), (0, 0)),
    90: ((0, 1, -1, 0), (1, 0)),
    180: ((-1, 0, 0, -1), (1, 1)),
    270: ((0, -1, 1, 0), (0, 1)),
}


def placement(box: Sequence[float], rotate: int, layer_size: tuple[float, float]) -> list[float]:
    """The cm matrix that lays a text page made from the rendered (rotated) crop box onto the page."""
    x0, y0, x1, y1 = (float(v) for v in box)
    width, height = abs(x1 - x0), abs(y1 - y0)
    shown_w, shown_h = (height, width) if rotate in (90, 270) else (width, height)
    sx, sy = shown_w / layer_size[0], shown_h / layer_size[1]
    (a, b, c, d), (ew, fh) = _UNROTATE[rotate]
    return [a * sx, b * sx, c * sy, d * sy, min(x0, x1) + ew * width, min(y0, y1) + fh * height]


def _graft(page: pikepdf.Page, layer_pdf: bytes, owner: pikepdf.Pdf) -> None:
    with pikepdf.open(io.BytesIO(layer_pdf)) as layer:
        layer_box = layer.pages[0].mediabox
        form = owner.copy_foreign(layer.pages[0].as_form_xobject())
    size = (float(layer_box[2]) - float(layer_box[0]), float(layer_box[3]) - float(layer_box[1]))
    rotate = int(page.obj.get("/Rotate", 0)) % 360
    matrix = placement([float(v) for v in page.cropbox], rotate, size)
    name = page.add_resource(form, pikepdf.Name.XObject, _free_name(page))
    ops = " ".join(f"{v:.6f}" for v in matrix)
    page.contents_add(f"q {ops} cm {name} Do Q\n".encode("ascii"), prepend=True)


def _free_name(page: pikepdf.Page) -> pikepdf.Name:
    """A resource name the page does not use yet, the same on every run (pikepdf's own are random)."""
    used = set(page.resources.get("/XObject", {}).keys())
    candidates = (f"/OCRText{n or ''}" for n in range(len(used) + 1))
    return pikepdf.Name(next(c for c in candidates if c not in used))


def build_pdf(source: Path, pages: Sequence[PageText], out_path: Path) -> None:
    """Write the pages of ``source`` named by ``pages`` (1-based) to ``out_path``."""
    with pikepdf.open(source) as src, pikepdf.new() as out:
        for page_text in pages:
            out.pages.append(src.pages[page_text.page_no - 1])
        for page, page_text in zip(out.pages, pages, strict=True):
            if page_text.rotation:
                page.obj.Rotate = (int(page.obj.get("/Rotate", 0)) + page_text.rotation) % 360
            if page_text.layer_pdf:
                _graft(page, page_text.layer_pdf, out)
        out.remove_unreferenced_resources()
        # A deterministic /ID: the same input pages always make the same bytes, so a run
        # resumed after a crash archives exactly what an uninterrupted one would.
        out.save(
            out_path,
            compress_streams=True,
            object_stream_mode=pikepdf.ObjectStreamMode.generate,
            deterministic_id=True,
        )
