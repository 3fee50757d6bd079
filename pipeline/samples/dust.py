"""How dusty a page is, for tests and benches that check the despeckling of generated scans."""

from __future__ import annotations

from PIL import Image

# The detector's own measure, so a test measures what despeckled() decides on.
from pipeline.pages.raster import _half_resolution, _specks_per_mpx


def speck_density(page: Image.Image, dpi: int) -> float:
    """Isolated dark dots per megapixel of a grayscale page: dark pixels whose surround is nearly white."""
    return _specks_per_mpx(_half_resolution(page, dpi), page)
