"""Placing a text layer made from the rendered page back onto the page's own space."""

import pytest

from pipeline.archive.textlayer import placement


def apply(m, x, y):
    a, b, c, d, e, f = m
    return (round(a * x + c * y + e, 6), round(b * x + d * y + f, 6))


def test_unrotated_page_scales_to_the_box():
    m = placement([0, 0, 612, 792], 0, (306, 396))
    assert apply(m, 0, 0) == (0, 0)
    assert apply(m, 306, 396) == (612, 792)


def test_box_offset_is_kept():
    m = placement([10, 20, 622, 812], 0, (612, 792))
    assert apply(m, 0, 0) == (10, 20)


@pytest.mark.parametrize(
    "rotate, shown_top_left, content_point",
    [
        # The shown page's top-left corner is the content's corner that turned there.
        (90, (0, 612), (0, 0)),
        (180, (0, 792), (612, 0)),
        (270, (0, 612), (612, 792)),
    ],
)
def test_rotated_pages_map_shown_corners_back(rotate, shown_top_left, content_point):
    shown = (792, 612) if rotate in (90, 270) else (612, 792)
    m = placement([0, 0, 612, 792], rotate, shown)
    assert apply(m, *shown_top_left) == content_point
