"""The filing decision: exactly one clear MRN files; anything else is review with a reason."""

import pytest

from pipeline.config import FilingSettings
from pipeline.decide import decide, mrn_ocr_confidence
from pipeline.models import Identifiers, MrnCandidate, PageText, Word

SETTINGS = FilingSettings()


def cand(value, page=1, confidence=1.0, raw=None):
    return MrnCandidate(value=value, raw=raw or value, label="MRN", page_no=page, offset=0, confidence=confidence)


def ocr_page(page_no=1, words=(), error=None):
    return PageText(page_no, " ".join(w.text for w in words), "none" if error else "ocr", words=list(words), error=error)


def test_one_mrn_files():
    decision = decide([ocr_page()], Identifiers([cand("00482913")]), SETTINGS)
    assert (decision.status, decision.mrn, decision.reason) == ("filed", "00482913", None)


def test_same_mrn_on_several_pages_files():
    ids = Identifiers([cand("482913", 1), cand("482913", 2), cand("482913", 3)])
    assert decide([ocr_page(1), ocr_page(2), ocr_page(3)], ids, SETTINGS).mrn == "482913"


def test_no_mrn_goes_to_review():
    decision = decide([ocr_page()], Identifiers([]), SETTINGS)
    assert decision.status == "review" and decision.mrn is None
    assert decision.reason == "no MRN found on any page"


def test_two_mrns_go_to_review_naming_both_and_their_pages():
    ids = Identifiers([cand("1111111", 1), cand("2222222", 3)])
    decision = decide([ocr_page(1), ocr_page(2), ocr_page(3)], ids, SETTINGS)
    assert decision.status == "review" and decision.mrn is None
    assert "1111111 (page 1)" in decision.reason and "2222222 (page 3)" in decision.reason


def test_leading_zeros_are_a_different_mrn():
    ids = Identifiers([cand("00482913", 1), cand("482913", 2)])
    assert decide([ocr_page(1), ocr_page(2)], ids, SETTINGS).status == "review"


def test_unreadable_page_sends_to_review_even_with_a_clear_mrn():
    pages = [ocr_page(1), ocr_page(2, error="OCR timed out after 180 s")]
    decision = decide(pages, Identifiers([cand("482913")]), SETTINGS)
    assert decision.status == "review"
    assert "page 2: OCR timed out after 180 s" in decision.reason


def test_low_ocr_confidence_of_the_mrn_words_sends_to_review():
    words = [Word("MRN:", 95), Word("0048", 91), Word("2913", 31)]
    decision = decide([ocr_page(1, words)], Identifiers([cand("00482913")]), SETTINGS)
    assert decision.status == "review"
    assert "low OCR confidence (31 < 60)" in decision.reason


def test_confident_ocr_words_file():
    words = [Word("MRN:", 95), Word("00482913", 93), Word("Acct", 20), Word("99887766", 10)]
    assert decide([ocr_page(1, words)], Identifiers([cand("00482913")]), SETTINGS).status == "filed"


def test_uncertain_extraction_sends_to_review():
    decision = decide([ocr_page()], Identifiers([cand("482913", confidence=0.4, raw="4B2913")]), SETTINGS)
    assert decision.status == "review"
    assert "'4B2913'" in decision.reason


@pytest.mark.parametrize("source", ["text-layer", "none"])
def test_non_ocr_pages_do_not_lower_mrn_confidence(source):
    page = PageText(1, "MRN 482913", source)
    assert mrn_ocr_confidence(cand("482913"), page) == 100.0


def test_ocr_confidence_reads_lookalike_letters():
    page = ocr_page(1, [Word("OO48", 40), Word("2913", 95)])
    assert mrn_ocr_confidence(cand("00482913"), page) == 40


def test_one_clear_reading_outweighs_a_doubtful_one_of_the_same_mrn():
    pages = [ocr_page(1, [Word("00482913", 95)]), ocr_page(2, [Word("00482913", 30)])]
    ids = Identifiers([cand("00482913", 1), cand("00482913", 2)])
    assert decide(pages, ids, SETTINGS).status == "filed"


def test_only_doubtful_readings_go_to_review():
    pages = [ocr_page(1, [Word("00482913", 41)]), ocr_page(2, [Word("00482913", 30)])]
    ids = Identifiers([cand("00482913", 1), cand("00482913", 2)])
    decision = decide(pages, ids, SETTINGS)
    assert decision.status == "review" and "page 1" in decision.reason
