"""Page images from older scanners (TIFF, PNG, JPEG) wrapped as a PDF, losslessly.

img2pdf embeds JPEG and CCITT G4 data as it is, so the archived page is the scanned
page bit for bit; each frame of a multi-page TIFF becomes a page, at its own
resolution (a fax's 204x98 dpi keeps its page size).
"""

from __future__ import annotations

import io
from pathlib import Path

import img2pdf
from PIL import Image, UnidentifiedImageError

from pipeline.core.config import IntakeSettings
from pipeline.core.errors import IntakeError

IMAGE_SUFFIXES = frozenset({".tif", ".tiff", ".png", ".jpg", ".jpeg"})
# Scanners that leave the resolution out of the file almost always scanned at this.
_ASSUMED_DPI = 300


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def image_to_pdf(source: Path, target: Path, settings: IntakeSettings) -> None:
    """Write ``source``'s frames as the pages of the PDF ``target``; raise IntakeError if it cannot be read."""
    has_dpi = _check_frames(source, settings)
    layout = None if has_dpi else img2pdf.get_fixed_dpi_layout_fun((_ASSUMED_DPI, _ASSUMED_DPI))
    try:
        data = img2pdf.convert(str(source), layout_fun=layout or img2pdf.default_layout_fun, nodate=True)
    except img2pdf.AlphaChannelError:
        data = img2pdf.convert(_without_alpha(source), layout_fun=layout or img2pdf.default_layout_fun, nodate=True)
    except (img2pdf.ImageOpenError, ValueError, OSError) as exc:
        raise IntakeError(f"image cannot be read ({exc})") from None
    target.write_bytes(data)


def _check_frames(source: Path, settings: IntakeSettings) -> bool:
    """Refuse unreadable images and pixel bombs from the header alone; True when every frame gives its dpi."""
    try:
        with Image.open(source) as image:
            has_dpi = True
            for frame in range(getattr(image, "n_frames", 1)):
                image.seek(frame)
                pixels = image.width * image.height
                if pixels > settings.max_page_pixels:
                    raise IntakeError(
                        f"page {frame + 1} is an image of {pixels:,} pixels, above the limit of "
                        f"{settings.max_page_pixels:,}: refused as a possible decompression bomb"
                    )
                has_dpi = has_dpi and bool(image.info.get("dpi"))
            return has_dpi
    except (UnidentifiedImageError, OSError, EOFError, Image.DecompressionBombError) as exc:
        raise IntakeError(f"image cannot be read ({exc})") from None


def _without_alpha(source: Path) -> list[bytes]:
    """Each frame flattened onto white as a PNG: scanned paper has no transparency to keep."""
    frames = []
    with Image.open(source) as image:
        for frame in range(getattr(image, "n_frames", 1)):
            image.seek(frame)
            flat = Image.new("RGB", image.size, "white")
            flat.paste(image.convert("RGBA"), mask=image.convert("RGBA").getchannel("A"))
            buffer = io.BytesIO()
            flat.save(buffer, "PNG", dpi=image.info.get("dpi", (_ASSUMED_DPI, _ASSUMED_DPI)))
            frames.append(buffer.getvalue())
    return frames
