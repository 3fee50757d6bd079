"""Labels as OCR garbles them: read where only a label fits, never where a distractor
(account, encounter, FIN, MRI, date of death...) reads as well."""

from __future__ import annotations

import string

import pytest

from pipeline.core.config import (
    DEFAULT_NOT_MRN_LABELS,
    ExtractionSettings,
    FilingSettings,
)
from pipeline.core.models import PageText
from pipeline.identify import label_match
from pipeline.identify.decide import decide
from pipeline.identify.extract import (
    extract_identifiers,
    find_dob,
    find_mrn_candidates,
    find_name,
)

S = ExtractionSettings()


def mrns(text: str, settings: ExtractionSettings = S) -> list[str]:
    return [c.value for c in find_mrn_candidates(1, text, settings)]


# ---------------------------------------------------------------- garbled labels are read


@pytest.mark.parametrize(
    "label",
    [
        "Med Ree No.",
        "MRWN:",
        "MRM:",
        "Medlcal Record Nurnber:",
        "Medical Recard No.",
        "Med. Rec No",
        "Patlent lD:",
        "Pt lD:",
        "Chart Nurnber:",
        "Unit N0.",
        "Hospita1 Number:",
        "M R N:",
        "MedRee No",
        "Medical Record Nunber",
        "Chart #",
        "Hosptial No.",
    ],
)
def test_garbled_mrn_labels_are_read(label):
    assert mrns(f"Springfield General\n{label} 57629388\n") == ["57629388"]


def test_the_issue_examples():
    assert mrns("Med Ree No. 57629388") == ["57629388"]
    assert mrns("MRWN: 0435 6886") == ["04356886"]
    assert find_dob("DOR: Apr 14, 1935", S) == "1935-04-14"


def test_a_garbled_label_is_kept_as_printed_in_the_candidate():
    (candidate,) = find_mrn_candidates(1, "Name: Ann Lee    MRWN: 57629388", S)
    assert candidate.label == "MRWN"
    assert candidate.raw == "57629388"


@pytest.mark.parametrize("label", ["DOR:", "D0R:", "Date of Blrth:", "Birth Dale:", "Birthdale:", "DO8:"])
def test_garbled_dob_labels_are_read(label):
    assert find_dob(f"{label} 03/14/1962", S) == "1962-03-14"


@pytest.mark.parametrize("label", ["Patlent Narne:", "Pt Narne:", "Narne:", "Patient Nane:", "Patients Name:"])
def test_garbled_name_labels_are_read(label):
    assert find_name(f"{label} Ann Lee", S) == "LEE, ANN"


def test_a_garbled_header_reads_the_cell_below():
    text = "Patlent Narne        Med Ree No.      DOR\nLEE, ANN             57629388         03/14/1962\n"
    ids = extract_identifiers([(1, text)], S)
    assert (ids.name, ids.dob, ids.distinct_mrns) == ("LEE, ANN", "1962-03-14", ["57629388"])


# ---------------------------------------------------------------- near misses are not


def _one_edit(word: str) -> set[str]:
    out = set()
    for i in range(len(word) + 1):
        out.update(word[:i] + c + word[i:] for c in string.ascii_letters)
        if i < len(word):
            out.add(word[:i] + word[i + 1 :])
            out.update(word[:i] + c + word[i + 1 :] for c in string.ascii_letters)
    return out


def test_no_one_edit_garble_of_a_distractor_label_becomes_an_mrn_label():
    words = {s.strip() for p in DEFAULT_NOT_MRN_LABELS for s in label_match.spellings(p)}
    assert {"Acct", "Account", "FIN", "CSN", "NPI", "Encounter"} <= words
    taken = [g for w in sorted(words) for g in _one_edit(w) if mrns(f"{g}: 57629388")]
    assert taken == []


@pytest.mark.parametrize(
    "line",
    [
        "Acet: 57629388",
        "Aect No: 57629388",
        "Acct Nurnber: 57629388",
        "Encounter Nunber: 57629388",
        "MSN: 57629388",  # one edit from CSN and from MRN: the distractor wins the tie
        "MIN: 57629388",  # FIN or MRN
        "MRI: 57629388",
        "MRI No: 57629388",
        "MRA # 57629388",
        "Mrs. 57629388",
        "MRNs 57629388",
        "RN: 57629388",
        "MR 57629388",
        "Chart: 57629388",
        "Hospital: 57629388",
        "Patients: 57629388",
        "Medical: 57629388",
        "Mother's MRWN: 57629388",
        "Guarantor Med Ree No. 57629388",
        "Acct/MRWN: 57629388",
    ],
)
def test_near_misses_give_no_mrn(line):
    assert mrns(line) == []


@pytest.mark.parametrize("line", ["DOD: 03/14/1962", "DOS: 03/14/1962", "D0S: 03/14/1962", "Mother's DOR: 03/14/1962"])
def test_near_miss_dates_are_no_birth_date(line):
    assert find_dob(line, S) is None


def test_a_garbled_doc_date_label_is_no_dob_when_it_reads_closer():
    # "DOS" exactly is the service date even though it is one edit from DOB.
    ids = extract_identifiers([(1, "DOB: 03/14/1962\nDOS: 05/02/2024")], S)
    assert (ids.dob, ids.doc_date) == ("1962-03-14", "2024-05-02")


def test_near_miss_words_come_from_the_config():
    assert mrns("MRI: 57629388") == []
    assert mrns("MRI: 57629388", ExtractionSettings(label_near_misses=[])) == ["57629388"]


def test_tolerance_zero_reads_labels_exactly():
    exact = ExtractionSettings(label_tolerance=0)
    assert mrns("Med Ree No. 57629388", exact) == []
    assert mrns("MRN: 57629388", exact) == ["57629388"]


def test_two_letter_words_must_be_exact():
    assert mrns("Med. Rec Na. 57629388") == []
    assert find_dob("Date ot Birth: 03/14/1962", S) is None


def test_tolerance_one_allows_one_edit_per_word_only():
    one = ExtractionSettings(label_tolerance=1)
    assert mrns("Hosptial No. 57629388", one) == []  # two edits in an 8-letter word
    assert mrns("Hosptial No. 57629388") == ["57629388"]
    assert mrns("MRWN: 57629388", one) == ["57629388"]


# ---------------------------------------------------------------- filing, both ways

FILING = FilingSettings()


def _decision(text: str):
    page = PageText(1, text, "text-layer")
    return decide([page], extract_identifiers([(1, text)], S), FILING)


def test_a_garbled_mrn_label_files_the_document():
    d = _decision("DISCHARGE SUMMARY\nPatient Name: Ann Lee    Med Ree No. 57629388\nDOR: 03/14/1962\n")
    assert (d.status, d.mrn) == ("filed", "57629388")


def test_a_garbled_account_label_never_files():
    d = _decision("DISCHARGE SUMMARY\nPatient Name: Ann Lee    Acet No: 57629388\nDOB: 03/14/1962\n")
    assert d.status == "review"
    assert d.reason == "no MRN found on any page"


def test_a_garbled_label_beside_a_conflicting_one_goes_to_review():
    d = _decision("MRN: 57629388\nMed Ree No. 57629399\n")
    assert d.status == "review"
    assert "conflicting MRNs" in d.reason


# ---------------------------------------------------------------- the matcher itself


def test_shape_key_folds_ocr_look_alikes():
    assert label_match.shape_key("Narne") == label_match.shape_key("Name")
    assert label_match.shape_key("Patlent lD") == label_match.shape_key("Patient ID")
    assert label_match.shape_key("Ree") == label_match.shape_key("Rec")
    assert label_match.shape_key("D0B") == label_match.shape_key("DOB")
    assert label_match.shape_key("MRN") != label_match.shape_key("MM")  # capitals are letters


def test_spellings_spell_out_optional_parts():
    spelt = label_match.spellings(r"MR\s*(?:#|No\.?)")
    assert {"MR #", "MR No", "MR No."} <= set(spelt)
    assert len(label_match.spellings(r"Med(?:ical)?\.?\s*Rec(?:ord)?\.?\s*(?:No\.?|Number|#)")) <= 96


def test_word_budget_grows_with_length():
    assert [label_match.word_budget(w, 2) for w in ("No", "MRN", "Record", "Hospital")] == [0, 1, 1, 2]
    assert label_match.word_budget("Hospital", 1) == 1
    assert label_match.word_budget("Hospital", 0) == 0
