"""Issue #25: one OCR read of an MRN never files by itself; doubt goes to review with candidates."""

import pytest

from pipeline.core.config import FilingSettings, RosterSettings
from pipeline.core.models import FiledPatient, Identifiers, MrnCandidate, PageText, Word
from pipeline.identify.decide import confusable_variants, decide, digit_confidences, mrns_to_look_up
from pipeline.identify.roster import Roster, RosterPatient, dob_agreement, name_agreement

SETTINGS = FilingSettings()
DOE = RosterPatient("00482913", "DOE", "JANE", "1962-03-14")
ROE = RosterPatient("00482918", "ROE", "RICHARD", "1950-01-01")
ROSTER = Roster([DOE, ROE])


def cand(value, page=1):
    return MrnCandidate(value=value, raw=value, label="MRN", page_no=page, offset=0)


def page(page_no=1, mrn_word="", confs=()):
    words = [Word("MRN:", 96), Word(mrn_word, 95, 200, 100, 180, 30, tuple(confs))] if mrn_word else []
    return PageText(page_no, f"MRN: {mrn_word}", "ocr", words=words)


def clean(mrn, page_no=1):
    return page(page_no, mrn, [99.0] * len(mrn))


def filed_jane(mrn="00482913", documents=3):
    return {mrn: FiledPatient(mrn, ("DOE, JANE",), ("1962-03-14",), documents)}


JANE = {"name": "DOE, JANE", "dob": "1962-03-14"}


# --- a one-digit misread ---------------------------------------------------------------------


def test_one_digit_misread_without_an_index_is_caught_by_the_archive():
    # 3 read as 9 with high confidence: the patient's earlier documents are under 00482913.
    ids = Identifiers([cand("00482919")], **JANE)
    decision = decide([clean("00482919")], ids, SETTINGS, history=filed_jane())
    assert (decision.status, decision.mrn) == ("review", None)
    assert decision.candidates == ("00482919", "00482913")
    assert "may be misread" in decision.reason


def test_one_digit_misread_without_an_index_or_history_is_not_filed():
    decision = decide([clean("00482919")], Identifiers([cand("00482919")], **JANE), SETTINGS, history={})
    assert decision.status == "review" and "nothing corroborates it" in decision.reason


def test_one_digit_misread_with_an_index_suggests_the_patient():
    ids = Identifiers([cand("00482919")], **JANE)
    decision = decide([clean("00482919")], ids, SETTINGS, RosterSettings(), ROSTER)
    assert decision.status == "review" and "not in the patient index" in decision.reason
    assert "00482913" in decision.candidates


def test_misread_into_another_patients_mrn_never_files():
    ids = Identifiers([cand("00482918")], **JANE)
    decision = decide([clean("00482918")], ids, SETTINGS, RosterSettings(), ROSTER)
    assert decision.status == "review" and "differ from the patient index" in decision.reason


# --- a confusable swap hitting a known MRN --------------------------------------------------


SAME_DAY = Roster(
    [RosterPatient("1000003", "LEE", "ANN", "1990-01-01"), RosterPatient("1000008", "KIM", "BO", "1990-01-01")]
)


def test_confusable_swap_to_a_patient_the_document_does_not_rule_out_goes_to_review():
    # Only the DOB is on the page, and both patients were born that day.
    ids = Identifiers([cand("1000003", 1), cand("1000003", 2)], dob="1990-01-01")
    decision = decide([clean("1000003", 1), clean("1000003", 2)], ids, SETTINGS, RosterSettings(), SAME_DAY)
    assert decision.status == "review" and decision.candidates == ("1000003", "1000008")


def test_confusable_swap_ruled_out_by_the_name_files():
    ids = Identifiers([cand("1000003")], name="LEE, ANN", dob="1990-01-01")
    decision = decide([clean("1000003")], ids, SETTINGS, RosterSettings(), SAME_DAY)
    assert (decision.status, decision.corroboration) == ("filed", ("patient_index:name", "patient_index:dob"))


def test_confusable_swap_known_only_to_the_archive_goes_to_review():
    known = {"1000008": FiledPatient("1000008", (), ("1990-01-01",), 2)}
    ids = Identifiers([cand("1000003", 1), cand("1000003", 2)], dob="1990-01-01")
    decision = decide([clean("1000003", 1), clean("1000003", 2)], ids, SETTINGS, history=known)
    assert decision.status == "review" and decision.candidates == ("1000003", "1000008")


def test_a_barcode_is_not_second_guessed_by_confusable_digits():
    barcode = MrnCandidate("1000003", "1000003", "barcode", 1, 0, source="barcode")
    decision = decide(
        [clean("1000003")], Identifiers([barcode], dob="1990-01-01"), SETTINGS, RosterSettings(), SAME_DAY
    )
    assert (decision.status, decision.corroboration) == ("filed", ("barcode", "patient_index:dob"))


# --- a new archive -------------------------------------------------------------------------


def test_first_document_of_a_new_patient_with_a_clean_repeated_mrn_files():
    ids = Identifiers([cand("5550001", 1), cand("5550001", 2)], **JANE)
    decision = decide([clean("5550001", 1), clean("5550001", 2)], ids, SETTINGS, history={})
    assert (decision.status, decision.mrn, decision.corroboration) == ("filed", "5550001", ("second_page",))


def test_mrn_printed_twice_on_one_page_is_a_second_read():
    ids = Identifiers([cand("5550001"), MrnCandidate("5550001", "5550001", "MRN", 1, 400)])
    twice = clean("5550001")
    footer = [
        Word("MRN", 96, 150, 3000, 80, 30),
        *(Word(t, 95, 240 + 90 * k, 3000, 80, 30) for k, t in enumerate(("555", "0001"))),
    ]
    twice = PageText(1, f"{twice.text}\nMRN 555 0001", "ocr", words=[*twice.words, *footer])
    decision = decide([twice], ids, SETTINGS, history={})
    assert (decision.status, decision.corroboration) == ("filed", ("second_read",))


def test_the_same_print_read_twice_is_no_second_read():
    # A second look's header re-read beside a line the page's reading kept: one print, two readings.
    read = clean("5550001")
    again = Word("5550001", 93, 204, 98, 176, 31, (97.0,) * 7)
    ids = Identifiers([cand("5550001"), MrnCandidate("5550001", "5550001", "MRN", 1, 400)])
    decision = decide(
        [PageText(1, f"{read.text}\nMRN: 5550001", "ocr", words=[*read.words, again])], ids, SETTINGS, history={}
    )
    assert decision.status == "review" and "read once by OCR" in decision.reason


def test_first_document_of_a_new_patient_read_once_waits_for_a_clerk():
    decision = decide([clean("5550001")], Identifiers([cand("5550001")], **JANE), SETTINGS, history={})
    assert (decision.status, decision.suggested_mrn) == ("review", "5550001")


# --- the archive's history as the witness --------------------------------------------------


def test_earlier_documents_with_the_same_name_and_dob_corroborate_a_single_read():
    ids = Identifiers([cand("00482913")], **JANE)
    decision = decide([clean("00482913")], ids, SETTINGS, history=filed_jane())
    assert (decision.status, decision.mrn) == ("filed", "00482913")
    assert decision.corroboration == ("archive:name", "archive:dob")


def test_earlier_documents_with_the_dob_alone_corroborate():
    ids = Identifiers([cand("00482913")], dob="1962-03-14")
    assert decide([clean("00482913")], ids, SETTINGS, history=filed_jane()).corroboration == ("archive:dob",)


def test_earlier_documents_of_another_patient_send_to_review():
    ids = Identifiers([cand("00482913"), cand("00482913", 2)], name="ROE, RICHARD", dob="1950-01-01")
    decision = decide([clean("00482913"), clean("00482913", 2)], ids, SETTINGS, history=filed_jane())
    assert decision.status == "review"
    assert "differ from the 3 document(s) already filed under MRN 00482913" in decision.reason


def test_archive_history_can_be_turned_off():
    ids = Identifiers([cand("00482913")], **JANE)
    off = FilingSettings(archive_history=False)
    assert decide([clean("00482913")], ids, off, history=filed_jane()).status == "review"


# --- per-character confidence --------------------------------------------------------------


LOW_8 = [99, 99, 99, 41, 99, 99, 99, 99]  # the fourth digit (8) is doubtful


def test_digit_confidences_follow_the_words_spelling_the_mrn():
    assert digit_confidences(cand("00482913"), page(1, "00482913", LOW_8))[3] == 41
    assert digit_confidences(cand("00482913"), page(1, "00482913")) == {}  # no character confidences


def test_a_low_confidence_digit_without_an_index_goes_to_review_with_the_candidates():
    known = {"00432913": FiledPatient("00432913", ("DOE, JANE",), ("1962-03-14",), 1)}
    ids = Identifiers([cand("00482913"), cand("00482913", 2)], **JANE)
    decision = decide([page(1, "00482913", LOW_8), page(2, "00482913", LOW_8)], ids, SETTINGS, history=known)
    assert decision.status == "review" and "digit 4 read with low confidence (41 < 75)" in decision.reason
    assert decision.candidates == ("00482913", "00432913")


def test_a_low_confidence_digit_with_name_and_dob_of_the_patient_files():
    ids = Identifiers([cand("00482913")], **JANE)
    decision = decide([page(1, "00482913", LOW_8)], ids, SETTINGS, RosterSettings(), ROSTER)
    assert (decision.status, decision.mrn) == ("filed", "00482913")


def test_a_low_confidence_digit_with_the_name_alone_is_review():
    ids = Identifiers([cand("00482913")], name="DOE, JANE")
    decision = decide([page(1, "00482913", LOW_8)], ids, SETTINGS, RosterSettings(), ROSTER)
    assert decision.status == "review" and "digit 4" in decision.reason


def test_one_clear_page_outweighs_a_doubtful_digit_elsewhere():
    ids = Identifiers([cand("5550001"), cand("5550001", 2)])
    low = [99, 99, 99, 30, 99, 99, 99]
    decision = decide([clean("5550001"), page(2, "5550001", low)], ids, SETTINGS, history={})
    assert (decision.status, decision.corroboration) == ("filed", ("second_page",))


# --- OCR-tolerant agreement with the patient index -----------------------------------------


@pytest.mark.parametrize(
    "name, dob, witnesses",
    [
        ("DOE, JAME", "1962-03-14", ("patient_index:dob", "patient_index:name:close")),
        ("DOE, JANE", "1962-08-14", ("patient_index:name", "patient_index:dob:close")),
    ],
)
def test_a_garbled_name_or_one_misread_dob_digit_still_agrees(name, dob, witnesses):
    ids = Identifiers([cand("00482913")], name=name, dob=dob)
    decision = decide([clean("00482913")], ids, SETTINGS, RosterSettings(), ROSTER)
    assert (decision.status, decision.corroboration) == ("filed", witnesses)


def test_both_only_nearly_agreeing_is_review():
    ids = Identifiers([cand("00482913")], name="DOE, JAME", dob="1962-08-14")
    decision = decide([clean("00482913")], ids, SETTINGS, RosterSettings(), ROSTER)
    assert decision.status == "review" and "only nearly agree" in decision.reason


def test_tolerance_off_is_the_old_exact_rule():
    ids = Identifiers([cand("00482913")], name="DOE, JAME", dob="1962-03-14")
    strict = FilingSettings(tolerant_agreement=False)
    assert decide([clean("00482913")], ids, strict, RosterSettings(), ROSTER).status == "review"


def test_a_near_name_that_is_the_twins_is_review():
    twins = Roster(
        [
            RosterPatient("2000001", "MOSS", "FRANCIS", "2001-05-05"),
            RosterPatient("2000002", "MOSS", "FRANCES", "2001-05-05"),
        ]
    )
    ids = Identifiers([cand("2000001")], name="MOSS, FRANCES", dob="2001-05-05")
    decision = decide([clean("2000001")], ids, SETTINGS, RosterSettings(), twins)
    assert decision.status == "review" and decision.candidates == ("2000001", "2000002")


@pytest.mark.parametrize(
    "doc, known, grade",
    [
        ("DOE, JANE", "DOE, JANE", "exact"),
        ("D0E, JANE", "DOE, JANE", "exact"),
        ("DOE, JAME", "DOE, JANE", "close"),
        ("ROE, RICHARD", "DOE, JANE", "differs"),
        (None, "DOE, JANE", None),
    ],
)
def test_name_agreement(doc, known, grade):
    assert name_agreement(doc, known) == grade


@pytest.mark.parametrize(
    "doc, grade",
    [("1962-03-14", "exact"), ("1962-03-19", "close"), ("1962-03-41", "differs"), ("1963-04-14", "differs")],
)
def test_dob_agreement(doc, grade):
    assert dob_agreement(doc, "1962-03-14") == grade


def test_confusable_variants_and_the_mrns_looked_up():
    assert confusable_variants("17", ["17"]) == ["11", "77"]
    assert "00482913" in confusable_variants("00482918", SETTINGS.confusable_digits)
    assert len(confusable_variants("000", ["17"], doubtful=[1])) == 9
    wanted = mrns_to_look_up([page(1, "00482913", LOW_8)], Identifiers([cand("00482913")]), SETTINGS)
    assert {"00482913", "00482918", "00412913"} <= wanted  # 8->1 only because digit 4 was doubtful


# --- the edges: tesseract's hOCR and the archive's sidecars ---------------------------------

HOCR = """<span class='ocr_line' id='line_1_1' title="bbox 104 108 809 146">
      <span class='ocrx_word' id='word_1_1' title='bbox 104 109 201 138; x_wconf 92'>
       <span class='ocrx_cinfo' title='x_bboxes 104 109 131 138; x_conf 98.9'>M</span>
       <span class='ocrx_cinfo' title='x_bboxes 139 109 161 138; x_conf 99.0'>N</span>
      </span>
      <span class='ocrx_word' id='word_1_2' title='bbox 221 108 290 138; x_wconf 70'>
       <span class='ocrx_cinfo' title='x_bboxes 221 108 241 138; x_conf 99.4'>4</span>
       <span class='ocrx_cinfo' title='x_bboxes 247 108 267 138; x_conf 38.5'>9</span>
       <span class='ocrx_cinfo' title='x_bboxes 271 109 290 138; x_conf 99.5'>1</span>
      </span>
"""


def test_character_confidences_come_from_the_same_runs_hocr():
    from pipeline.pages.ocr import char_confidences, with_char_confidences

    assert char_confidences(HOCR) == {(221, 108): (99.4, 38.5, 99.5)}  # words with a digit only
    words = with_char_confidences([Word("MN", 92, 104, 109), Word("491", 70, 221, 108)], HOCR)
    assert [w.char_confs for w in words] == [(), (99.4, 38.5, 99.5)]


def test_filed_patients_reads_the_sidecars_of_filed_documents(tmp_path):
    from pipeline.archive.history import filed_patients
    from pipeline.core.config import load_config
    from pipeline.core.fsutil import atomic_write_json
    from tests.conftest import write_config

    config = load_config(write_config(tmp_path))
    base = {"doc_type": "lab_report", "sha256": "0" * 64, "source": {"file": "a.pdf", "sha256": "1" * 64}}
    folder = config.archive_dir / "00482913"
    folder.mkdir(parents=True)
    for n, (name, dob) in enumerate([("DOE, JANE", "1962-03-14"), (None, "1962-03-14"), ("DOE, JAME", None)]):
        sidecar = {**base, "doc_id": f"d{n}", "status": "filed", "mrn": "00482913", "path": f"x{n}.pdf"}
        atomic_write_json(folder / f"x{n}.json", {**sidecar, "patient_name": name, "dob": dob})
    (folder / "broken.json").write_text("{")
    found = filed_patients(config, ["00482913", "00482918", "../etc"])
    assert list(found) == ["00482913"]
    assert set(found["00482913"].names) == {"DOE, JANE", "DOE, JAME"}
    assert (found["00482913"].dobs, found["00482913"].documents) == (("1962-03-14",), 3)
