"""The filing decision: exactly one clear MRN files; anything else is review with a reason."""

import pytest

from pipeline.core.config import FilingSettings
from pipeline.core.models import Decision, Identifiers, MrnCandidate, PageText, Word
from pipeline.identify.decide import decide, mrn_ocr_confidence

SETTINGS = FilingSettings()


def cand(value, page=1, confidence=1.0, raw=None):
    return MrnCandidate(value=value, raw=raw or value, label="MRN", page_no=page, offset=0, confidence=confidence)


def ocr_page(page_no=1, words=(), error=None):
    return PageText(
        page_no, " ".join(w.text for w in words), "none" if error else "ocr", words=list(words), error=error
    )


def test_one_mrn_read_once_by_ocr_is_not_filed_alone():
    # Stricter since issue #25: a single OCR read needs a second witness.
    decision = decide([ocr_page()], Identifiers([cand("00482913")]), SETTINGS)
    assert (decision.status, decision.mrn, decision.suggested_mrn) == ("review", None, "00482913")
    assert "read once by OCR and nothing corroborates it" in decision.reason


def test_one_mrn_in_the_text_layer_files():
    page = PageText(1, "MRN 00482913", "text-layer")
    decision = decide([page], Identifiers([cand("00482913")]), SETTINGS)
    assert (decision.status, decision.mrn, decision.corroboration) == ("filed", "00482913", ("text_layer",))


def test_same_mrn_on_several_pages_files():
    ids = Identifiers([cand("482913", 1), cand("482913", 2), cand("482913", 3)])
    decision = decide([ocr_page(1), ocr_page(2), ocr_page(3)], ids, SETTINGS)
    assert (decision.mrn, decision.corroboration) == ("482913", ("second_page",))


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


def test_confident_ocr_words_file_when_a_single_read_may():
    words = [Word("MRN:", 95), Word("00482913", 93), Word("Acct", 20), Word("99887766", 10)]
    alone = FilingSettings(second_witness=False)
    decision = decide([ocr_page(1, words)], Identifiers([cand("00482913")]), alone)
    assert (decision.status, decision.corroboration) == ("filed", ("single_read",))


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


# --- with a patient index (roster) and barcodes -----------------------------------------

from pipeline.core.config import RosterSettings  # noqa: E402
from pipeline.identify.roster import Roster, RosterPatient  # noqa: E402

ROSTER = Roster(
    [
        RosterPatient("00482913", "DOE", "JANE", "1962-03-14"),
        RosterPatient("00482918", "ROE", "RICHARD", "1950-01-01"),
        RosterPatient("5123456", "SMITH", "JOHN", "1980-07-04"),
        RosterPatient("5123457", "SMITH", "JOHN", "1991-02-02"),
        RosterPatient("7000001", "BROWN", "ALICE", "1975-05-05"),
    ]
)


def with_roster(ids, roster_settings=RosterSettings(), pages=None):
    return decide(pages or [ocr_page()], ids, SETTINGS, roster_settings, ROSTER)


def barcode(value, page=1):
    return MrnCandidate(value=value, raw=value, label="barcode", page_no=page, offset=0, source="barcode")


def test_roster_agreement_files():
    ids = Identifiers([cand("00482913")], name="DOE, JANE", dob="1962-03-14")
    assert with_roster(ids) == Decision("filed", "00482913", corroboration=("patient_index:name", "patient_index:dob"))


def test_name_alone_or_dob_alone_agreeing_files():
    assert with_roster(Identifiers([cand("00482913")], name="DOE, JANE")).status == "filed"
    assert with_roster(Identifiers([cand("00482913")], dob="1962-03-14")).status == "filed"


def test_disagreeing_dob_sends_to_review():
    decision = with_roster(Identifiers([cand("00482913")], name="DOE, JANE", dob="1962-07-15"))
    assert decision.status == "review"
    assert decision.reason == "the date of birth on the document differ from the patient index for MRN 00482913"


def test_another_patients_name_sends_to_review():
    decision = with_roster(Identifiers([cand("00482913")], name="ROE, RICHARD", dob="1962-03-14"))
    assert decision.status == "review" and "name" in decision.reason


def test_nothing_to_confirm_with_goes_to_review_with_the_suggestion():
    decision = with_roster(Identifiers([cand("00482913")]))
    assert decision.status == "review" and decision.suggested_mrn == "00482913"
    assert decision.candidates == ("00482913", "00482918")  # 3 and 8 look alike: ROE's MRN


def test_unknown_mrn_goes_to_review():
    decision = with_roster(Identifiers([cand("9999999")], name="DOE, JANE", dob="1962-03-14"))
    assert (decision.status, decision.reason) == ("review", "MRN 9999999 is not in the patient index")


def test_one_ocr_confusion_away_with_matching_name_and_dob_is_corrected():
    ids = Identifiers([cand("7000007", raw="700000l")], name="BROWN, ALICE", dob="1975-05-05")
    decision = with_roster(ids)
    assert (decision.status, decision.mrn) == ("filed", "7000001")
    assert "corrected to 7000001" in decision.corrections[0]


def test_confusion_without_matching_patient_is_not_corrected():
    ids = Identifiers([cand("7000007", raw="700000l")], name="DOE, JANE", dob="1962-03-14")
    assert with_roster(ids).status == "review"


def test_no_mrn_but_name_and_dob_of_one_patient_is_only_suggested_by_default():
    ids = Identifiers([], name="DOE, JANE", dob="1962-03-14")
    decision = with_roster(ids)
    assert (decision.status, decision.suggested_mrn) == ("review", "00482913")
    allowed = with_roster(ids, RosterSettings(file_by_name_and_dob=True))
    assert (allowed.status, allowed.mrn) == ("filed", "00482913") and allowed.corrections


def test_same_name_different_dob_is_never_guessed():
    ids = Identifiers([], name="SMITH, JOHN", dob="1999-09-09")
    decision = with_roster(ids, RosterSettings(file_by_name_and_dob=True))
    assert decision.status == "review" and decision.suggested_mrn is None


def test_conflicting_mrns_never_fall_back_to_name_and_dob():
    ids = Identifiers([cand("1111111"), cand("2222222")], name="DOE, JANE", dob="1962-03-14")
    assert with_roster(ids, RosterSettings(file_by_name_and_dob=True)).status == "review"


def test_barcode_beats_a_doubtful_print():
    pages = [ocr_page(1, [Word("00482913", 20)])]
    ids = Identifiers([barcode("00482913"), cand("00482913")])
    assert decide(pages, ids, SETTINGS).mrn == "00482913"


def test_barcode_conflicting_with_print_goes_to_review():
    decision = decide([ocr_page()], Identifiers([barcode("00482913"), cand("00482918")]), SETTINGS)
    assert decision.reason == "barcode MRN 00482913 conflicts with printed MRN 00482918"


def test_two_barcode_mrns_go_to_review():
    decision = decide([ocr_page()], Identifiers([barcode("1111111"), barcode("2222222", 2)]), SETTINGS)
    assert decision.status == "review" and "conflicting barcode MRNs" in decision.reason


def test_check_digit_failure_goes_to_review():
    luhn = RosterSettings(check_digit="luhn")
    twice = [ocr_page(1), ocr_page(2)]
    assert (
        decide(twice, Identifiers([cand("79927398713", 1), cand("79927398713", 2)]), SETTINGS, luhn).status == "filed"
    )
    decision = decide(twice, Identifiers([cand("79927398714", 1), cand("79927398714", 2)]), SETTINGS, luhn)
    assert decision.status == "review" and "check digit" in decision.reason


# --- low-confidence MRNs corroborated by the patient index ------------------------------

from pipeline.identify.decide import CORROBORATED  # noqa: E402

BLURRED = [ocr_page(1, [Word("00482913", 57)])]  # the case: word confidence 57 < 60


def test_low_confidence_mrn_with_name_and_dob_of_its_patient_files_and_says_why():
    ids = Identifiers([cand("00482913")], name="DOE, JANE", dob="1962-03-14")
    decision = with_roster(ids, pages=BLURRED)
    assert decision == Decision(
        "filed", "00482913", corrections=(CORROBORATED,), corroboration=("patient_index:name", "patient_index:dob")
    )


def test_low_extractor_confidence_is_corroborated_the_same_way():
    ids = Identifiers([cand("00482913", confidence=0.56)], name="DOE, JANE", dob="1962-03-14")
    assert with_roster(ids).corrections == (CORROBORATED,)


def test_low_confidence_without_a_roster_stays_in_review():
    ids = Identifiers([cand("00482913")], name="DOE, JANE", dob="1962-03-14")
    decision = decide(BLURRED, ids, SETTINGS)
    assert decision.status == "review" and "low OCR confidence" in decision.reason


@pytest.mark.parametrize(
    "name, dob, suggested",
    [
        ("DOE, JANE", None, "00482913"),  # name alone: a clerk may confirm it
        (None, "1962-03-14", "00482913"),  # DOB alone
        ("DOE, JANE", "1962-03-15", None),  # DOB one day off: the digits are suspect
        ("ROE, RICHARD", "1962-03-14", None),  # another patient's name
        ("DOE, JANET", "1962-03-14", None),  # first name must be exact
    ],
)
def test_low_confidence_needs_both_name_and_dob_to_agree(name, dob, suggested):
    decision = with_roster(Identifiers([cand("00482913")], name=name, dob=dob), pages=BLURRED)
    assert decision.status == "review" and decision.mrn is None
    assert "low OCR confidence" in decision.reason
    assert decision.suggested_mrn == suggested


def test_low_confidence_unknown_mrn_goes_to_review():
    ids = Identifiers([cand("9999999")], name="DOE, JANE", dob="1962-03-14")
    decision = with_roster(ids, pages=[ocr_page(1, [Word("9999999", 40)])])
    assert decision.status == "review" and "not in the patient index" in decision.reason


def test_low_confidence_mrn_of_another_patient_never_files():
    # 00482918 is ROE's; the page names DOE: a misread digit, not a corroboration.
    ids = Identifiers([cand("00482918")], name="DOE, JANE", dob="1962-03-14")
    decision = with_roster(ids, pages=[ocr_page(1, [Word("00482918", 40)])])
    assert decision.status == "review" and decision.mrn is None


def test_low_confidence_conflicting_mrns_stay_in_review():
    ids = Identifiers([cand("00482913"), cand("00482918")], name="DOE, JANE", dob="1962-03-14")
    decision = with_roster(ids, pages=BLURRED)
    assert decision.status == "review" and "conflicting" in decision.reason


# --- numbers printed without an MRN label -----------------------------------------------


def test_unlabelled_number_of_the_named_patient_files_with_a_note():
    ids = Identifiers([], name="DOE, JANE", dob="1962-03-14", unlabelled_mrns=["5551234567", "00482913"])
    decision = with_roster(ids)
    assert (decision.status, decision.mrn) == ("filed", "00482913")
    assert "no MRN label" in decision.corrections[0]


def test_unlabelled_numbers_are_no_evidence_without_a_roster():
    ids = Identifiers([], name="DOE, JANE", dob="1962-03-14", unlabelled_mrns=["00482913"])
    assert decide([ocr_page()], ids, SETTINGS).status == "review"


@pytest.mark.parametrize("name, dob", [("DOE, JANE", None), (None, "1962-03-14"), ("ROE, RICHARD", "1962-03-14")])
def test_unlabelled_number_needs_name_and_dob_of_its_patient(name, dob):
    ids = Identifiers([], name=name, dob=dob, unlabelled_mrns=["00482913"])
    assert with_roster(ids).status == "review"


def test_a_labelled_mrn_that_disagrees_wins_over_an_unlabelled_number():
    ids = Identifiers([cand("00482918")], name="DOE, JANE", dob="1962-03-14", unlabelled_mrns=["00482913"])
    decision = with_roster(ids)
    assert decision.status == "review" and decision.mrn is None
    barcoded = Identifiers([barcode("7000001")], name="DOE, JANE", dob="1962-03-14", unlabelled_mrns=["00482913"])
    assert with_roster(barcoded).status == "review"


def test_an_unreadable_labelled_mrn_also_blocks_unlabelled_numbers():
    ids = Identifiers([cand("00482918")], name="DOE, JANE", dob="1962-03-14", unlabelled_mrns=["00482913"])
    assert with_roster(ids, pages=[ocr_page(1, [Word("00482918", 30)])]).status == "review"


def test_unlabelled_numbers_of_two_matching_patients_go_to_review():
    twins = Roster(
        [RosterPatient("1000001", "LEE", "ANN", "1990-01-01"), RosterPatient("1000002", "LEE", "ANN", "1990-01-01")]
    )
    ids = Identifiers([], name="LEE, ANN", dob="1990-01-01", unlabelled_mrns=["1000001", "1000002"])
    decision = decide([ocr_page()], ids, SETTINGS, RosterSettings(), twins)
    assert decision.status == "review" and "2 patients" in decision.reason
