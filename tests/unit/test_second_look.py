"""The second look at badly read pages (issue 25): when it runs, how readings are
weighed and voted on, and the OpenCV cleaning it reads from."""

from __future__ import annotations

import random
from dataclasses import replace

import cv2
import numpy as np
import pytest
from PIL import Image

from pipeline.core.models import Word
from pipeline.pages import clean
from pipeline.pages.second_look import (
    DISPUTED_CONF,
    PageMarks,
    SecondLookRules,
    between_lines,
    is_wordlike,
    page_marks,
    reading_score,
    split_at_band,
    vote_numbers,
    why_read_again,
    with_words,
)
from pipeline.samples import damage

RULES = SecondLookRules()
HEIGHT = 3300  # a letter page at 300 dpi
INKED = PageMarks(0.05, 0)


def words_of(lines: list[str], conf: float = 95, top: int = 300, line_height: int = 60) -> list[Word]:
    """Words laid out line under line from ``top``, as tesseract reports them."""
    out = []
    for k, line in enumerate(lines):
        left = 150
        for token in line.split():
            out.append(Word(token, conf, left, top + k * line_height, 30 * len(token), 40))
            left += 30 * len(token) + 30
    return out


CLEAN_PAGE = [
    "Northgate Family Clinic",
    "DAILY PROGRESS NOTE",
    "Name: TAYLOR, LINDA S    M.R.N.: 00888599",
    "Date of Birth: 28-Apr-1941    Date of Service: 22-Jul-2024",
    "Subjective: Returns for a follow up visit of chronic kidney disease.",
    "Objective: BP 105/86, HR 93, Temp 100.5 F, RR 13, SpO2 93% on room air",
    "Plan: Continue metoprolol tartrate 25 mg daily. Return to clinic in 6 months.",
]


@pytest.mark.parametrize("word", ["Patient", "TAYLOR,", "M.R.N.:", "00888599", "28-Apr-1941", "(415)", "mg", "O'Brien"])
def test_words_numbers_and_abbreviations_read_as_words(word: str) -> None:
    assert is_wordlike(word)


@pytest.mark.parametrize("word", ["|", "~~", "fo]", "Il1i", "rnmnmn", "a$#", "=—"])
def test_debris_does_not(word: str) -> None:
    assert not is_wordlike(word)


def test_a_clean_page_is_never_read_again() -> None:
    assert why_read_again(words_of(CLEAN_PAGE), HEIGHT, INKED, RULES) is None


def test_a_sparse_or_blank_page_read_well_is_not_read_again() -> None:
    assert why_read_again(words_of(["PATCH T", "Separator sheet"]), HEIGHT, INKED, RULES) is None
    assert why_read_again([], HEIGHT, PageMarks(0.0005, 0), RULES) is None  # blank paper


@pytest.mark.parametrize(
    ("words", "marks", "why"),
    [
        ([], PageMarks(0.08, 0), "no text read"),  # print taken for a picture
        (words_of(CLEAN_PAGE), PageMarks(0.08, 2), "2 dark streaks down the page"),  # the text beside them lost
        (words_of(CLEAN_PAGE, conf=48), INKED, "mean word confidence 48"),
        (words_of(["|| ~~ fo] Il1i rnmnmn =— ;: |"] * 6), INKED, "few words read as words"),
        (words_of(CLEAN_PAGE[4:] * 3, top=1400), INKED, "header band empty"),
        ([*words_of(CLEAN_PAGE), Word("SSOTa0—", 0, 900, 420, 200, 40)], INKED, "a garbled word"),  # pen over the MRN
    ],
)
def test_a_poor_reading_is_read_again_and_says_why(words: list[Word], marks: PageMarks, why: str) -> None:
    assert (why_read_again(words, HEIGHT, marks, RULES) or "").startswith(why)


def test_a_number_read_at_middling_confidence_on_a_clean_page_is_not_enough() -> None:
    # Tesseract gives a clean page's dates and numbers 60-70 now and then; a doubtful
    # digit is the filing rules' business (per-character confidences), not a reason to
    # read every such page twice.
    words = words_of(CLEAN_PAGE)
    mrn = next(i for i, w in enumerate(words) if w.text == "00888599")
    words[mrn] = Word("00888599", 64, words[mrn].left, words[mrn].top, words[mrn].width, words[mrn].height)
    assert why_read_again(words, HEIGHT, INKED, RULES) is None
    assert why_read_again(words_of(CLEAN_PAGE, conf=40), HEIGHT, INKED, SecondLookRules(enabled=False)) is None


def test_the_better_reading_holds_more_confident_words_not_a_higher_mean() -> None:
    half = words_of(CLEAN_PAGE[:3], conf=96)  # lost most of the page
    whole = words_of(CLEAN_PAGE, conf=80)
    debris = words_of(["|| ~~ fo] Il1i"] * 10, conf=99)
    assert reading_score(whole) > reading_score(half)
    assert reading_score(debris) == 0


def test_a_reading_split_at_a_streak_does_not_beat_the_whole_lines() -> None:
    lines = ["Patient Name: Young, Richard    Med Rec No.: 6758493", "Date of Birth: December 17, 1971"]
    # tesseract reads the two blocks a little more confidently, less the letter under the streak
    split = ["Patient Na", "e: Young, Richard    Med Rec No.: 6758493", "Date of Birt", ": December 17, 1971"]
    assert reading_score(words_of(lines, conf=90)) > reading_score(words_of(split, conf=92))


def _at(text: str, conf: float, left: int = 600) -> Word:
    return Word(text, conf, left, 400, 240, 40)


def test_a_clear_majority_settles_a_number_at_its_backers_lowest_confidence() -> None:
    primary = [_at("MRN:", 95, 450), _at("00482918", 62)]
    others = [[_at("00482913", 80)], [_at("00482913", 71)], [_at("00482913", 90)]]
    (label, mrn), changed = vote_numbers(primary, others)
    assert label == primary[0]
    assert (mrn.text, mrn.conf, changed) == ("00482913", 71, 1)
    (same,), changed = vote_numbers([_at("00482913", 88)], [[_at("00482913", 80)], [_at("00482913", 70)]])
    assert (same, changed) == (_at("00482913", 88), 0)


def test_a_voted_number_keeps_no_digit_confidence_higher_than_its_own() -> None:
    sure = (99.0,) * 8
    primary = [replace(_at("00482918", 62), char_confs=sure)]
    others = [[_at("00482913", 80)], [_at("00482913", 71)], [_at("00482913", 90)]]
    (mrn,), _ = vote_numbers(primary, others)
    assert (mrn.text, mrn.char_confs) == ("00482913", (71.0,) * 8)  # not the overruled reading's 99s
    (disputed,), _ = vote_numbers([replace(_at("00482918", 90), char_confs=sure)], [[_at("00482913", 80)]])
    assert (disputed.text, disputed.char_confs) == ("00482918", (DISPUTED_CONF,) * 8)


@pytest.mark.parametrize(
    ("own", "offers", "text"),
    [
        ("00482918", ["00482913"], "00482918"),  # a tie keeps the primary's, disputed
        ("00482913", ["00482913", "00482918"], "00482913"),  # two to one is not clear enough
        ("00482918", ["00482913", "00482913", "0O482918"], "00482913"),  # 2:1:1 ("0O…" reads 7 digits)
        ("#4619203", ["619203", "619203", "619203"], "#4619203"),  # a colon read as 4: cannot be rewritten in place
    ],
)
def test_a_close_or_unrewritable_vote_leaves_the_number_disputed(own: str, offers: list[str], text: str) -> None:
    (mrn,), _ = vote_numbers([_at(own, 88)], [[_at(value, 85)] for value in offers])
    assert mrn.text == text
    assert mrn.conf <= DISPUTED_CONF  # the filing rules hold it back


def test_fragments_and_print_elsewhere_do_not_vote() -> None:
    (mrn,), _ = vote_numbers([_at("00482913", 88)], [[_at("0048", 99)], [_at("99999999", 99, left=1400)]])
    assert mrn == _at("00482913", 88)


def test_words_replaced_in_the_text_and_the_body_cut_below_the_band() -> None:
    lines = ["Clinic Note", "Name: DOE, JANE    MRN: 00482918", "", "Assessment: stable.", "Plan: return."]
    text = "\n".join(lines) + "\n"
    words = words_of([line for line in lines if line], top=300, line_height=200)
    changed = [Word("00482913", 50, *(w.left, w.top, w.width, w.height)) if w.text == "00482918" else w for w in words]
    assert "MRN: 00482913" in with_words(text, words, changed)
    assert with_words(text, words[:-1], changed[:-1]) == text  # words that do not line up change nothing
    body, below = split_at_band(text, words, 650)
    assert body == "Assessment: stable.\nPlan: return."
    assert [w.text for w in below] == ["Assessment:", "stable.", "Plan:", "return."]
    assert split_at_band(text, words[1:], 650) is None


def test_the_band_ends_between_lines_of_print() -> None:
    words = words_of(CLEAN_PAGE, top=300, line_height=60)  # lines 40 px high, 20 px apart
    cut = between_lines(words, 385, HEIGHT)  # inside the second line (360-400)
    assert cut == 400
    assert not any(w.top < cut < w.top + w.height for w in words)


# ------------------------------------------------------------------ cleaning


def _text_page(dpi: int = 300) -> np.ndarray:
    page = np.full((dpi * 3, dpi * 4), 255, np.uint8)
    for k, line in enumerate(("MRN 00482913", "DOE, JANE", "Progress note")):
        cv2.putText(page, line, (dpi // 3, dpi // 2 + k * dpi // 2), cv2.FONT_HERSHEY_SIMPLEX, dpi / 200, 0, 3)
    return page


def test_a_streak_down_the_page_is_removed_and_the_print_kept() -> None:
    page = _text_page()
    streaked = page.copy()
    streaked[:, 600:630] = 90  # a drum streak, 0.1 in wide, through the text
    cleaned = clean.binarised(clean.flattened(streaked, 300), 300)
    assert (cleaned[:, 600:630] == 0).mean() < 0.2  # the streak gone, save the strokes it crossed
    text = (page < 128)[:, :560]
    assert ((cleaned[:, :560] == 0) & text).sum() > 0.85 * text.sum()


def test_uneven_light_and_faint_print_come_out_black_on_even_white() -> None:
    page = _text_page().astype(np.float32)
    faint = 255 - (255 - page) * 0.3  # low ink
    light = np.linspace(0.55, 1.0, page.shape[1], dtype=np.float32)[np.newaxis, :]  # a shadow on the left
    flat = clean.flattened(np.clip(faint * light, 0, 255).astype(np.uint8), 300)
    paper = flat[page == 255]
    assert paper.mean() > 235 and np.percentile(paper, 5) > 200
    assert np.median(flat[page == 0]) < 100


def test_specks_and_a_copier_border_go() -> None:
    page = _text_page()
    page[:, :40] = 0  # black margin of a photocopy
    rng = np.random.default_rng(1)
    page[rng.integers(0, page.shape[0], 400), rng.integers(60, page.shape[1], 400)] = 0  # single-pixel specks
    cleaned = clean.binarised(clean.flattened(page, 300), 300)
    assert (cleaned[:, :40] == 0).mean() < 0.05
    spotless = clean.binarised(clean.flattened(_text_page(), 300), 300)
    assert (cleaned[:, 60:] == 0).sum() < (spotless[:, 60:] == 0).sum() * 1.05


def test_thresholds_drop_a_streak_lighter_than_print() -> None:
    page = _text_page()
    page[:, 600:630] = np.minimum(page[:, 600:630], 110)
    low = clean.thresholded(page, (70,))[0]
    assert (low[:, 600:630] == 0).mean() < 0.2


def test_streaks_are_counted_and_print_borders_and_forms_are_not() -> None:
    page = np.full((3300, 2550), 255, np.uint8)
    page[300:900:60, 150:2400] = 0  # lines of print
    assert page_marks(page) == PageMarks(pytest.approx(0.0, abs=0.02), 0)
    edges = page.copy()
    edges[:, :40] = 30  # the scanner lid beyond the paper's edge
    assert page_marks(edges).streaks == 0
    streaked = page.copy()
    streaked[:, 700:730] = 120
    streaked[200:3100, 1500:1512] = 160
    assert page_marks(streaked).streaks == 2
    coloured = np.full_like(page, 190)  # pink or yellow paper scans grey: not a streak
    coloured[300:900:60, 150:2400] = 20
    assert page_marks(coloured).streaks == 0


def test_faint_print_is_ink_enough_to_read_a_wordless_page_again() -> None:
    faint = np.full((3300, 2550), 245, np.uint8)
    for top in range(300, 2400, 60):
        faint[top : top + 24, 150:2400][:, (np.arange(2250) // 3) % 2 == 0] = 195  # print at a fifth of its ink
    marks = page_marks(faint)
    assert marks.ink_share >= RULES.min_ink_share
    assert why_read_again([], HEIGHT, marks, RULES) == "no text read"


# ------------------------------------------------------------------ the damage generator


def test_damage_is_seeded_and_names_what_it_did() -> None:
    page = Image.fromarray(_text_page())
    one, kinds = damage.damage(page, random.Random(5))
    two, again = damage.damage(page, random.Random(5))
    assert kinds == again and one.tobytes() == two.tobytes()
    assert 2 <= len(kinds) <= 4 and set(kinds) <= set(damage.EFFECTS)
    for kind in damage.EFFECTS:
        changed, applied = damage.damage(page, random.Random(1), [kind])
        assert applied == (kind,) and changed.size == page.size and changed.tobytes() != page.tobytes()
    with pytest.raises(ValueError, match="unknown damage"):
        damage.damage(page, random.Random(1), ["coffee"])


def test_a_second_look_that_fails_or_runs_out_of_time_keeps_the_first_reading(monkeypatch, tmp_path) -> None:
    from pathlib import Path

    from pipeline.pages import process
    from pipeline.pages.ocr import OcrError, OcrResult

    first = OcrResult("poor", words_of(CLEAN_PAGE, conf=30), b"", 1.0)
    task = process.PageTask(Path("x.pdf"), 1, True, 300, "eng", 60, 40)
    blank = np.full((HEIGHT, 2550), 255, np.uint8)
    for error, said in ((cv2.error("bad"), "failed (error)"), (OcrError("page timed out"), "out of time")):

        def fail(*args, error=error, **kwargs):
            raise error

        monkeypatch.setattr(process, "read_again", fail)
        result, look, cleaned = process._second_look(blank, first, task, tmp_path, process._Deadline(60))
        assert result is first and cleaned is None
        assert look is not None and look.won == "first" and look.why.endswith(said)


def test_a_separator_whose_code_is_crossed_by_streaks_is_still_read() -> None:
    from pathlib import Path

    from pipeline.pages import process
    from pipeline.samples import separators

    dpi = 200
    gray = np.asarray(separators.patch_t_image(dpi)).copy()
    code = np.flatnonzero(gray[gray.shape[0] // 2] < 128)  # the code's bars across the middle of the sheet
    for x in (code[0] + (code[-1] - code[0]) // 3, code[0] + 2 * (code[-1] - code[0]) // 3):
        gray[:, x - 4 : x + 4] = np.minimum(gray[:, x - 4 : x + 4], 40)  # a drum's streak down the whole page
    task = process.PageTask(Path("x.pdf"), 1, True, dpi, "eng", 60, 40, ("Code39", "Code128", "QRCode"))
    found = process._barcodes(Image.fromarray(gray), True, task.barcode_formats, task.separator_value)
    assert not any(r.format == "Code39" for r in found)  # the streaks read as bars: no code as scanned
    cleaned = clean.binarised(clean.flattened(gray, dpi), dpi)
    reads = process._barcodes_again(gray, cleaned, task)
    assert any(r.format == "Code39" and r.value == "PATCHT" for r in reads)
