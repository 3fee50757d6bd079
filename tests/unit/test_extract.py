"""Identifier extraction on OCR-like text: a wrong MRN misfiles a record, so every
doubtful read must come back as no answer."""

from __future__ import annotations

import re

import pytest

from pipeline.core.config import DEFAULT_MRN_LABELS, ExtractionSettings
from pipeline.core.models import MrnCandidate
from pipeline.identify import extract
from pipeline.identify.extract import (
    extract_identifiers,
    find_dob,
    find_doc_date,
    find_mrn_candidates,
    find_name,
    parse_date,
)

S = ExtractionSettings()


def values(text: str, settings: ExtractionSettings = S) -> list[str]:
    return [c.value for c in find_mrn_candidates(1, text, settings)]


def only(text: str) -> MrnCandidate:
    found = find_mrn_candidates(1, text, S)
    assert len(found) == 1, found
    return found[0]


# ---------------------------------------------------------------- MRN labels

LABEL_SPELLINGS = [
    "MRN",
    "mrn",
    "MRN No",
    "MRN No.",
    "MRN Number",
    "M.R.N.",
    "M.R.N",
    "M. R. N.",
    "Medical Record Number",
    "Medical Record No.",
    "Medical Record No",
    "Medical Record #",
    "Medical Record Num.",
    "MEDICAL RECORD NUMBER",
    "Medical Record#",
    "Med Rec No",
    "Med. Rec. No.",
    "Med Rec #",
    "Medical Rec Number",
    "Med Record No.",
    "MedRec#",
    "MR#",
    "MR #",
    "MR No.",
    "MR Number",
    "Patient ID",
    "PATIENT ID",
    "Patient ID No.",
    "Pt ID",
    "Pt. ID",
    "Pt ID Number",
    "Hospital Number",
    "Hospital No.",
    "Unit Number",
    "Unit No",
    "Unit No.",
    "Chart Number",
    "Chart No.",
    "Chart #",
    "Chart#",
]


def test_every_default_label_has_a_spelling_under_test():
    for fragment in DEFAULT_MRN_LABELS:
        assert any(re.fullmatch(fragment, s, re.IGNORECASE) for s in LABEL_SPELLINGS), fragment


@pytest.mark.parametrize("label", LABEL_SPELLINGS)
@pytest.mark.parametrize("sep", [": ", ":", " ", " : ", " # ", " - "])
def test_every_label_spelling(label, sep):
    text = f"Springfield General\n{label}{sep}00482913\n"
    candidate = only(text)
    assert candidate.value == "00482913"
    assert candidate.raw == "00482913"
    assert candidate.label == label
    assert candidate.page_no == 1
    assert candidate.offset == text.index("00482913")
    assert candidate.confidence == 1.0
    assert candidate.corrected is False
    assert candidate.source == "text"


def test_label_glued_to_value():
    assert values("MRN00482913") == ["00482913"]
    assert values("MR#482913") == ["482913"]


@pytest.mark.parametrize(
    ("line", "value", "raw"),
    [
        ("MRN:00482913", "00482913", "00482913"),
        ("MRN : 0048 2913", "00482913", "0048 2913"),
        ("MRN: 0048-2913", "00482913", "0048-2913"),
        ("MRN: 00482913.", "00482913", "00482913"),
        ("MRN: 00482913,", "00482913", "00482913"),
        ("(MRN: 00482913)", "00482913", "00482913"),
        ("MRN: 00482913;  seen today", "00482913", "00482913"),
        ("MRN: 00482913 03/14/1962", "00482913", "00482913"),
        ("MRN: 0048 2913 DOB 03/14/1962", "00482913", "0048 2913"),
        ("MRN: 0048 2913 03/14/1962", "00482913", "0048 2913"),
        ('Unit No: 514002"', "514002", "514002"),
        ("MR#: \u201800482913\u2019", "00482913", "00482913"),
        ("MRN: 000123", "000123", "000123"),
    ],
)
def test_clean_reads_keep_leading_zeros(line, value, raw):
    candidate = only(line)
    assert (candidate.value, candidate.raw, candidate.corrected, candidate.confidence) == (value, raw, False, 1.0)


@pytest.mark.parametrize(
    ("line", "value", "raw"),
    [
        ("MRN: OO482913", "00482913", "OO482913"),
        ("MRN: 0O48Z913", "00482913", "0O48Z913"),
        ("MRN: oo482913", "00482913", "oo482913"),
        ("MRN: 0D482913", "00482913", "0D482913"),
        ("MRN: 0048S9I3", "00485913", "0048S9I3"),
        ("MRN: 0048B913", "00488913", "0048B913"),
        ("MRN: 00482G13", "00482613", "00482G13"),
        ("MRN: 0048l913", "00481913", "0048l913"),
        ("MRN: 0048|913", "00481913", "0048|913"),
        ("MRN: OO48 2913.", "00482913", "OO48 2913"),
    ],
)
def test_ocr_lookalikes_are_mapped_and_flagged(line, value, raw):
    candidate = only(line)
    assert (candidate.value, candidate.raw, candidate.corrected, candidate.confidence) == (value, raw, True, 0.8)


@pytest.mark.parametrize(
    "line",
    [
        "MRN: 00482913|",  # table rule glued to the number, or a last digit 1?
        "MRN: |00482913",
        "MRN: I00482913",
        "MRN: 0048291S",  # letter at the end: suffix or digit?
        "MRN: S0048291",  # letter at the start: prefix or digit?
        "MRN: OOO48291",  # too many letters to trust
        "MRN: OO48 Z913",
        "MRN: OOOOOO",
        "MRN: 00482913ABC",
        "MRN:123456DOB: 03/14/1962",
        "MRN: 123456 7890",  # one number or two?
        "MRN: 0048291 3",
        "MRN: 00 48 29 13",  # 004829 is a valid MRN too
        "MRN: 00482913/02",
        "MRN: 00482913-01",  # MRN with a visit suffix, or a 10-digit MRN?
        "MRN: 00482913 5",
        "MRN: 00482913-",
        "MRN: 12345",
        "MRN: 12345678901",
        "MRN: ________",
        "MRN:",
        "MRN: pending",
        "The MRN is 00482913",
        "MRNs 00482913",
    ],
)
def test_doubtful_reads_give_no_candidate(line):
    assert values(line) == []


@pytest.mark.parametrize(
    "line",
    [
        "MRN: 03/14/1962",
        "MRN: 03-14-1962",
        "MRN: 1962-03-14",
        "MRN: 14.03.1962",
        "MRN: 555-123-4567",
        "MRN: 555 123 4567",
        "MRN: 555 1234",
        "MRN: 123 45 6789",
        "MRN: 1-555-123-4567",
        "MRN: (555) 123-4567",
        "MRN: 123-4567",
        "MRN: 123-45-6789",
        "MRN: 62704-1234",
    ],
)
def test_dates_phones_ssns_and_zips_never_become_mrns(line):
    assert values(line) == []


DISTRACTORS = [
    "Account #: 88812345",
    "Acct No.: 88812345",
    "Acct: 88812345",
    "Patient Account No: 88812345",
    "Patient Account Number: 88812345",
    "Hospital Account #: 88812345",
    "Encounter No: 88812345",
    "Encounter #88812345",
    "Enc #: 88812345",
    "Visit #: 88812345",
    "Visit Number: 88812345",
    "FIN: 88812345",
    "FIN#88812345",
    "CSN: 88812345",
    "Billing #: 88812345",
    "Claim #: 88812345",
    "Invoice: 88812345",
    "Policy #: 88812345",
    "Group #: 88812345",
    "Member ID: 88812345",
    "Subscriber ID: 88812345",
    "Phone: (555) 123-4567",
    "Phone: 5551234567",
    "Tel. 555-123-4567",
    "Fax: 555.123.4567",
    "Pager: 8881234",
    "NPI: 1234567890",
    "DEA: AB1234563",
    "SSN: 123-45-6789",
    "SSN: 123456789",
    "Social Security #: 123456789",
    "License #: 88812345",
    "Order #: 88812345",
    "Accession #: 88812345",
    "Specimen #: 88812345",
    "Requisition: 88812345",
    "Room: 4412",
    "Bed 2",
    "Zip: 62704",
    "Springfield, IL 62704-1234",
    "Call 555-123-4567",
    "DOB: 03/14/1962",
    "Date of Service: 04/02/2024",
    "88812345",
]


@pytest.mark.parametrize("distractor", DISTRACTORS)
def test_distractor_before_real_mrn(distractor):
    text = f"{distractor}   MRN: 00482913\n"
    candidate = only(text)
    assert (candidate.value, candidate.offset) == ("00482913", text.index("00482913"))


@pytest.mark.parametrize("distractor", DISTRACTORS)
def test_distractor_after_real_mrn(distractor):
    assert values(f"MRN: 00482913   {distractor}\n") == ["00482913"]


@pytest.mark.parametrize("distractor", DISTRACTORS)
def test_distractor_on_its_own_line(distractor):
    assert values(f"Patient: DOE, JANE\n{distractor}\nMRN: 00482913\n") == ["00482913"]
    assert values(f"{distractor}\n") == []


def test_patient_id_is_an_mrn_but_patient_account_is_not():
    assert values("Patient ID: 123456") == ["123456"]
    assert values("Patient Account No: 123456") == []
    assert values("Patient Account ID: 123456") == []


@pytest.mark.parametrize(
    "line",
    [
        "MRN/Acct: 123456",
        "Acct/MRN: 123456",
        "MRN / Account #: 123456",
        "Account/MRN 123456",
        "MRN & Encounter: 123456",
        "Visit-MRN: 123456",
        "FIN MRN: 123456",
        "MRN or Acct: 123456",
    ],
)
def test_combined_labels_are_ambiguous_so_not_an_mrn(line):
    # The number could be either; filing under an account number would misfile.
    assert values(line) == []


@pytest.mark.parametrize(
    "qualifier",
    [
        "Mother's",
        "Mothers",
        "Mother",
        "Mother\u2019s",
        "MOTHER'S  ",
        "Baby's",
        "Previous",
        "Old",
        "Prior",
        "Merged",
        "Outside",
        "Outside Hospital",
        "External",
        "Guarantor",
        "Insured's",
        "Spouse",
    ],
)
def test_someone_elses_or_an_old_mrn_is_not_this_records(qualifier):
    assert values(f"{qualifier} MRN: 11111111") == []
    assert values(f"{qualifier} MRN: 11111111   MRN: 22222222") == ["22222222"]
    assert values(f"{qualifier} Medical Record Number\n11111111") == []


@pytest.mark.parametrize(
    "line",
    [
        "ST. MARY HOSPITAL     MRN: 00482913",
        "Springfield Clinic MRN: 00482913",
        "Patient MRN: 00482913",
        "Grandmother Jane   MRN: 00482913",
    ],
)
def test_letterhead_or_patient_before_the_label_is_no_qualifier(line):
    assert values(line) == ["00482913"]


def test_no_break_spaces_from_a_text_layer():
    text = "MRN:\xa00048\xa02913"
    candidate = only(text)
    assert (candidate.value, candidate.raw, candidate.offset) == ("00482913", "0048\xa02913", 5)


def test_value_right_below_a_label_line():
    text = "Patient Name          MRN           DOB\nDOE, JANE             00482913      03/14/1962\n"
    candidate = only(text)
    assert (candidate.value, candidate.offset, candidate.confidence) == ("00482913", text.index("00482913"), 0.7)
    assert candidate.label == "MRN"


def test_value_below_in_a_ruled_table():
    text = "| Patient Name | MRN      | DOB        |\n| DOE, JANE    | 00482913 | 03/14/1962 |\n"
    assert values(text) == ["00482913"]
    assert (find_name(text, S), find_dob(text, S)) == ("DOE, JANE", "1962-03-14")


def test_value_in_the_next_ruled_cell():
    assert values("| MRN | 00482913 |") == ["00482913"]
    assert values("| MRN |00482913 |") == []


def test_value_below_a_lone_label_even_after_a_blank_line():
    text = "Medical Record Number:\n\n00482913\n"
    candidate = only(text)
    assert (candidate.value, candidate.offset, candidate.confidence) == ("00482913", text.index("00482913"), 0.7)


def test_corrected_value_below_is_least_confident():
    candidate = only("MRN\nOO482913\n")
    assert (candidate.value, candidate.corrected, candidate.confidence) == ("00482913", True, 0.56)


def test_value_below_respects_columns():
    text = "Account #        MRN\n88812345         00482913\n"
    assert values(text) == ["00482913"]
    assert values("Account #        Visit\n88812345         00482913\n") == []


@pytest.mark.parametrize(
    "text",
    [
        "MRN\n00482913 88812345\n",  # cell holds more than the number
        "MRN\n\n\n00482913\n",  # too far below
        "MRN:\nDOB: 03/14/1962\n",
        "MRN         DOB\n            00482913\n",  # under DOB, not MRN
        "MRN\n555-123-4567\n",
    ],
)
def test_doubtful_values_below_give_no_candidate(text):
    assert values(text) == []


def test_no_label_no_candidate():
    text = "Seen today. Reference 00482913 noted. Record 00482913 on file.\n00482913\n"
    assert values(text) == []


def test_every_occurrence_is_returned_in_order():
    text = "MRN: 00482913\nSome text\nMRN: 00482913\nChart #: 00482913\n"
    found = find_mrn_candidates(3, text, S)
    assert [(c.value, c.page_no, c.label) for c in found] == [
        ("00482913", 3, "MRN"),
        ("00482913", 3, "MRN"),
        ("00482913", 3, "Chart #"),
    ]
    assert [c.offset for c in found] == [m.start() for m in re.finditer("00482913", text)]


def test_two_different_mrns_are_both_returned():
    pages = [(1, "MRN: 00482913\nDISCHARGE SUMMARY\n"), (2, "Page 2\nMRN: 00512345\n")]
    identifiers = extract_identifiers(pages, S)
    assert [(c.value, c.page_no) for c in identifiers.mrn_candidates] == [("00482913", 1), ("00512345", 2)]
    assert identifiers.distinct_mrns == ["00482913", "00512345"]


def test_offsets_point_at_the_raw_text():
    text = "Account #: 88812345   MRN : 0048 2913\r\nPt ID: OO482913\r\n"
    for c in find_mrn_candidates(1, text, S):
        assert text[c.offset : c.offset + len(c.raw)] == c.raw


def test_configured_pattern_is_used_as_is():
    settings = ExtractionSettings(mrn_pattern=r"[A-Z]\d{7}")
    candidate = find_mrn_candidates(1, "MRN: A1234567", settings)[0]
    assert (candidate.value, candidate.corrected) == ("A1234567", False)
    assert values("MRN: 00482913", settings) == []


def test_configured_labels_are_used():
    settings = ExtractionSettings(mrn_labels=[r"Case\s+Ref"], not_mrn_labels=[r"Lot"])
    assert values("Case Ref: 123456   MRN: 654321", settings) == ["123456"]
    assert values("Lot/Case Ref: 123456", settings) == []


def test_patterns_are_compiled_once_per_settings():
    settings = ExtractionSettings(mrn_labels=["MRN", "Chart"])
    find_mrn_candidates(1, "MRN: 123456", settings)
    before = extract._compile.cache_info()
    for _ in range(5):
        find_mrn_candidates(1, "MRN: 123456", settings)
        find_name("Name: DOE, JANE", settings)
        find_dob("DOB: 03/14/1962", ExtractionSettings(mrn_labels=["MRN", "Chart"]))
    after = extract._compile.cache_info()
    assert after.misses == before.misses
    assert after.hits == before.hits + 15


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    "text",
    [
        "03/14/1962",
        "3/14/1962",
        "3-14-62",
        "03-14-1962",
        "1962-03-14",
        "1962/3/14",
        "03.14.1962",
        "March 14, 1962",
        "March 14 1962",
        "MARCH 14,1962",
        "Mar 14 1962",
        "Mar. 14, 1962",
        "14-Mar-1962",
        "14-MAR-62",
        "14 March 1962",
        "14 Mar 1962",
        "14Mar1962",
        "March 14th, 1962",
        "  03/14/1962. ",
    ],
)
def test_parse_date_formats(text):
    assert parse_date(text) == "1962-03-14"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("14/03/1962", "1962-03-14"),
        ("14.03.1962", "1962-03-14"),
        ("1.2.2024", "2024-02-01"),
        ("1962-03-14", "1962-03-14"),
        ("14 March 1962", "1962-03-14"),
        ("March 14, 1962", "1962-03-14"),
        ("03/14/1962", None),
    ],
)
def test_parse_date_day_first(text, expected):
    assert parse_date(text, "DMY") == expected


def test_parse_date_month_first_rejects_day_first():
    assert parse_date("14/03/1962") is None
    assert parse_date("1.2.2024") == "2024-01-02"


def test_two_digit_years_take_the_most_recent_past_century():
    assert parse_date("3/14/62") == "1962-03-14"
    assert parse_date("1/2/05") == "2005-01-02"
    assert parse_date("1/2/99") == "1999-01-02"


@pytest.mark.parametrize(
    "text",
    [
        "02/30/2020",
        "13/01/2020",
        "00/10/2020",
        "2020-13-01",
        "2020-02-00",
        "March 32, 2020",
        "Feb 29 2023",
        "31-Apr-2020",
        "03/14-1962",
        "03/14/196",
        "1962",
        "03/14",
        "hello",
        "",
        "03/14/1962 extra",
        "Mayday 14 1962",
        "0003/14/1962",
        "03/14/0962",
    ],
)
def test_parse_date_rejects_impossible_or_partial_dates(text):
    assert parse_date(text) is None


def test_parse_date_accepts_leap_day():
    assert parse_date("Feb 29 2024") == "2024-02-29"


@pytest.mark.parametrize(
    "text",
    [
        "DOB: 03/14/1962",
        "DOB 03/14/1962",
        "D.O.B.: 3/14/1962",
        "D.O.B 3-14-62",
        "dob:03/14/1962",
        "Date of Birth: March 14, 1962",
        "Date of Birth - 14 Mar 1962",
        "Birth Date: 14-Mar-1962",
        "Birthdate: 1962-03-14",
        "Born: 14 March 1962",
        "Born 03/14/1962",
        "DOB (mm/dd/yyyy): 03/14/1962",
        "Patient DOB: 03/14/1962",
        "Name: DOE, JANE   DOB: 03/14/1962   MRN: 00482913",
        "MRN: 00482913 DOB: 03/14/1962 Sex: F",
        "Patient Name        DOB\nDOE, JANE           03/14/1962\n",
        "Date of Birth:\n03/14/1962\n",
        "DOB: 03 / 14 / 1962",
        "DOB\u00a0\u2013\u00a0Mar-14-1962",
        "D.0.B.: 03/14/1962",
        "D0B 03/14/1962",
        "D. O.B.: 1962- 03- 14\u00b0",
        "DOB: \u201803/14/1962",
    ],
)
def test_find_dob(text):
    assert find_dob(text, S) == "1962-03-14"


@pytest.mark.parametrize(
    "text",
    [
        "03/14/1962",
        "Mother's DOB: 03/14/1962",
        "Guarantor DOB: 03/14/1962",
        "Insured's Date of Birth: 03/14/1962",
        "DOB: 03/14/2999",  # in the future
        "DOB: 02/30/1962",
        "DOB: unknown",
        "DOB: 03/14/1962\nDOB: 04/15/1963",  # two different people or a misread
        "Date of Service: 04/02/2024",
        "Date: 04/02/2024",
    ],
)
def test_find_dob_none(text):
    assert find_dob(text, S) is None


def test_find_dob_same_date_twice_is_fine():
    assert find_dob("DOB: 03/14/1962\nDate of Birth: March 14, 1962", S) == "1962-03-14"


def test_find_dob_day_first():
    assert find_dob("DOB: 14/03/1962", ExtractionSettings(date_order="DMY")) == "1962-03-14"
    assert find_dob("DOB: 14/03/1962", S) is None


@pytest.mark.parametrize(
    "label",
    [
        "Date of Service",
        "Service Date",
        "DOS",
        "Report Date",
        "Date of Report",
        "Discharge Date",
        "Date of Discharge",
        "Admission Date",
        "Date of Admission",
        "Visit Date",
        "Date of Visit",
        "Procedure Date",
        "Date of Procedure",
        "Exam Date",
        "Date of Exam",
        "Collection Date",
        "Collected",
        "Date Signed",
        "Date",
    ],
)
def test_find_doc_date_labels(label):
    assert find_doc_date(f"DOB: 03/14/1962\n{label}: 04/02/2024 08:15\n", S) == "2024-04-02"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Admission Date: 03/01/2024    Discharge Date: 03/05/2024", "2024-03-05"),
        ("Date: 04/09/2024\nDate of Service: 04/02/2024", "2024-04-02"),
        ("Date: April 2, 2024\nDate: 04/09/2024", "2024-04-02"),
        ("DOS 4/2/24", "2024-04-02"),
        ("Report Date            MRN\n04/02/2024             00482913\n", "2024-04-02"),
        ("Birth Date: 03/14/1962   Date: 04/02/2024", "2024-04-02"),
        ("Collection Date/Time: 04/02/2024 08:15", "2024-04-02"),
        ("Date/Time: 04/02/2024 08:15", "2024-04-02"),
        ("Date Collected: 04/02/2024", "2024-04-02"),
        ("DOS \u2013 04/02/2024", "2024-04-02"),
        ("Date of Report: \u201c01/03/2025", "2025-01-03"),
        ("Date of Report: 01/03/2025\nDate of Report: ____\nDate: 01/09/2025", "2025-01-03"),
    ],
)
def test_find_doc_date_priority_and_forms(text, expected):
    assert find_doc_date(text, S) == expected


@pytest.mark.parametrize(
    "text",
    [
        "DOB: 03/14/1962",
        "Date of Birth: 03/14/1962",
        "Birth Date: 03/14/1962",
        "Birthdate: 03/14/1962",
        "Print Date: 04/02/2024",
        "Printed Date: 04/02/2024",
        "Next Appointment Date: 05/02/2024",
        "Payment Date: 05/02/2024",
        "Insurance Effective Date: 01/01/2024",
        "Last Visit Date: 01/02/2024",
        "Date: ____________",
        "Seen on 04/02/2024",
        "Birth. Date: \u2018October 18, 1965",  # OCR speck between "Birth" and "Date"
        "Date of. Birth 03/16/1935",
        "DOB: 03/14/1962\nDate: 03/14/1962",  # the birth date again: a misread label
        # The best label's date is unreadable: no answer rather than a lesser label's date.
        "Date of Report: 01/O3/2O25\nDate of Procedure: 01/01/2025",
        "Discharge Date: ____\nAdmission Date: 03/01/2024",
    ],
)
def test_find_doc_date_none_rather_than_the_birth_date(text):
    assert find_doc_date(text, S) is None


# ---------------------------------------------------------------- names


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Patient Name: DOE, JANE", "DOE, JANE"),
        ("Patient Name: Doe, Jane M.", "DOE, JANE"),
        ("PATIENT NAME: DOE, JANE MARIE", "DOE, JANE"),
        ("Name: DOE, JANE   DOB: 03/14/1962   MRN: 123456", "DOE, JANE"),
        ("Name: DOE, JANE DOB: 03/14/1962 MRN: 123456", "DOE, JANE"),
        ("Name: Jane Doe Sex F Age 62", "DOE, JANE"),
        ("Name: Jane Doe, 62 y/o", "DOE, JANE"),
        ("Patient: Jane M. Doe", "DOE, JANE"),
        ("Patient: JANE DOE", "DOE, JANE"),
        ("Pt Name: Jane Doe", "DOE, JANE"),
        ("Pt. Name: DOE,JANE", "DOE, JANE"),
        ("Patient's Name: Jane Doe", "DOE, JANE"),
        ("Name of Patient: Jane Doe", "DOE, JANE"),
        ("Patient Name   Jane Doe", "DOE, JANE"),
        ("Patient Name:      DOE, JANE      MRN: 00482913", "DOE, JANE"),
        ("Patient Name: O'BRIEN, PATRICK", "O'BRIEN, PATRICK"),
        ("Patient Name: Patrick O\u2019Brien", "O'BRIEN, PATRICK"),
        ("Name: SMITH-JONES, MARY ANN", "SMITH-JONES, MARY"),
        ("Name: Mary-Kate Smith-Jones", "SMITH-JONES, MARY-KATE"),
        ("Patient: John Smith Jr.", "SMITH, JOHN"),
        ("Patient: SMITH JR, JOHN", "SMITH, JOHN"),
        ("Patient: Smith, John A III", "SMITH, JOHN"),
        ("Patient: Mrs. Jane Doe", "DOE, JANE"),
        ("Patient: Maria de la Cruz", "DE LA CRUZ, MARIA"),
        ("Patient: DE LA CRUZ, MARIA", "DE LA CRUZ, MARIA"),
        ("Patient: Ludwig van Beethoven", "VAN BEETHOVEN, LUDWIG"),
        ("Patient Name          MRN          DOB\nDOE, JANE             00482913     03/14/1962", "DOE, JANE"),
        ("Patient Name:\nDOE, JANE\n", "DOE, JANE"),
        ("Attending: Dr. A. Brown\nPatient: DOE, JANE", "DOE, JANE"),
        ("Patient Name: DOE, JANE\nPatient: Jane Doe", "DOE, JANE"),
        ("Patient: SANCHEZ, DANIEL K a \u2018Visit # 2666957", "SANCHEZ, DANIEL"),
        ("Name: Flores, Mark \u2018Date of Birth: 03/28/1934", "FLORES, MARK"),
        ("Patient: ANDERSON, \u2018MARK P. Patient ID 5780389", "ANDERSON, MARK"),
        ("Patient Name: \u201cCynthia S. Allen - \u201cMedical Record Number 584861", "ALLEN, CYNTHIA"),
        ("Patient: Laura Torres \u2014 \u201cMedical Record Number: 274102.", "TORRES, LAURA"),
        ("Name: WHITE, REBECCA\u2018T.. \u2018Patient ID: 496033", "WHITE, REBECCA"),
        ("Patient: Jos\u00e9 M\u00fcller", "M\u00dcLLER, JOS\u00c9"),
    ],
)
def test_find_name(text, expected):
    assert find_name(text, S) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Patient Account #: 88812345",
        "Patient Account: DOE JANE",
        "Name of physician: John Smith",
        "Patient Signature: ______________",
        "Patient Signature: Jane Doe",
        "Attending: Dr. John Smith",
        "Physician Name: John Smith",
        "Referring Physician Name: John Smith",
        "Provider Name: John Smith",
        "Name: Dr. John Smith",
        "Name: John Smith, MD",
        "Name: John Smith MD",
        "Emergency Contact Name: John Doe",
        "Insured's Name: John Doe",
        "Mother's Name: Mary Doe",
        "Guarantor Name: John Doe",
        "Payer Name: Acme Health",
        "Insurance Company Name: Acme Health",
        "Patient/Guardian Name: John Doe",
        "Drug Name: Amoxicillin Clavulanate",
        "Patient Name: ____________",
        "Patient Name: (print)",
        "Name: (Last, First, MI)",
        "Patient Name: Last, First",
        "Patient Name: Last First Middle",
        "Patient Name\nMed Rec No.\nBirth Date\nDavid Anderson\n00137209\n",
        "Patient Name\nAttending Physician\n",
        "Patient Name\nDOB 03/14/1962\n",
        "Patient: 62 year old male",
        "Patient: Jane",
        "Name: J. Doe",
        "Patient was seen today by Dr. Smith",
        "Patient: was seen today for follow up",
        "Patient Name: DOE, JANE\nPatient: SMITH, JOHN",  # two people: unsure
        "Last Name: DOE   First Name: JANE",
        "Patient Name: D0E, JANE",
        "Patient: Jane Mary Ann Doe",
        "Name: DOE, JANE, SMITH",
        "Name: GREEN, ane",  # OCR misread of the given name
        "Name: MARTIN. LISA",  # comma read as a period: which is the surname?
        "Patient Name: Cynthia Ss. Allen",  # "Ss." ends a name as much as it is an initial
        "Patient: H Harris, Joseph",  # a speck before the surname
        "Patient: Smith, John MD",
        "Name: Or. John Smith",  # "Dr." misread
        "",
    ],
)
def test_find_name_none(text):
    assert find_name(text, S) is None


def test_a_garbled_label_ends_the_name_before_it():
    # "MRE" is MRN as OCR read it: the name stops there, and the number is the MRN.
    text = "Pt Name: Timothy Young. \u201cMRE 18147753"
    assert find_name(text, S) == "YOUNG, TIMOTHY"
    assert [c.value for c in find_mrn_candidates(1, text, S)] == ["18147753"]
    assert find_name(text, ExtractionSettings(label_tolerance=0)) is None


# ---------------------------------------------------------------- whole document

FACE_SHEET = """ST. ELSEWHERE MEDICAL CENTER          Phone: (555) 123-4567   Fax: (555) 123-4568
1200 Harbor Road, Springfield, IL 62704
DISCHARGE SUMMARY
Patient Name: DOE, JANE M          MRN: OO482913          DOB: 03/14/1962
Patient Account #: 88812345        Encounter No: 4455667  Room: 4412
Admission Date: 03/01/2024         Discharge Date: 03/05/2024
Attending: Dr. Robert Brown, MD    NPI: 1234567890
Insurance: Acme Health   Policy #: 99887766   Group #: 12345
Hospital Course: Uneventful.
"""


def test_face_sheet():
    identifiers = extract_identifiers([(1, FACE_SHEET)], S)
    assert [(c.value, c.raw, c.label, c.corrected, c.confidence) for c in identifiers.mrn_candidates] == [
        ("00482913", "OO482913", "MRN", True, 0.8)
    ]
    assert identifiers.mrn_candidates[0].offset == FACE_SHEET.index("OO482913")
    assert (identifiers.name, identifiers.dob, identifiers.doc_date) == ("DOE, JANE", "1962-03-14", "2024-03-05")


def test_fields_come_from_the_first_page_that_has_them():
    pages = [
        (1, "FAX COVER\nDate: 04/09/2024\nPages: 3\n"),
        (2, "Patient: DOE, JANE\nDOB: 03/14/1962\nMRN: 00482913\nDate of Service: 04/02/2024\n"),
        (3, "Patient: SMITH, JOHN\nDOB: 01/01/1970\nMRN: 00482913\n"),
    ]
    identifiers = extract_identifiers(pages, S)
    assert (identifiers.name, identifiers.dob, identifiers.doc_date) == ("DOE, JANE", "1962-03-14", "2024-04-09")
    assert [(c.value, c.page_no) for c in identifiers.mrn_candidates] == [("00482913", 2), ("00482913", 3)]


@pytest.mark.parametrize(
    ("dates", "expected"),
    [
        ("DOB: 03/14/1962\nDate of Service: 04/02/2024", ("1962-03-14", "2024-04-02")),
        ("DOB: 04/02/2024\nDate of Service: 04/02/2024", ("2024-04-02", None)),
        ("DOB: 03/14/1962\nDate of Service: 04/02/1960", (None, None)),  # one of them is wrong
    ],
)
def test_birth_and_document_dates_are_checked_against_each_other(dates, expected):
    identifiers = extract_identifiers([(1, dates)], S)
    assert (identifiers.dob, identifiers.doc_date) == expected


def test_nothing_found():
    identifiers = extract_identifiers([(1, "Weekly lunch menu\nSoup of the day\n"), (2, "")], S)
    assert identifiers.mrn_candidates == []
    assert (identifiers.name, identifiers.dob, identifiers.doc_date) == (None, None, None)
    assert extract_identifiers([], S).mrn_candidates == []


# ---------------------------------------------------------------- unlabelled numbers (roster evidence)


def test_unlabelled_numbers_of_the_mrn_shape_are_gathered():
    from pipeline.identify.extract import find_unlabelled_mrns

    text = "JOHNSON, JAMES  33868828\nCall 555-123-4567 or 5551234567\nBorn 09/01/1992, 12.3456789 mg, 1234"
    assert find_unlabelled_mrns(text, S) == ["33868828", "5551234567"]


def test_unlabelled_numbers_leave_out_the_labelled_mrn():
    ids = extract_identifiers([(1, "MRN: 33868828\nRef 00482913\n"), (2, "33868828 page 2")], S)
    assert ids.distinct_mrns == ["33868828"]
    assert ids.unlabelled_mrns == ["00482913"]


def test_a_header_cell_with_ocr_specks_after_its_label_still_heads_its_column():
    text = (
        "Pt Name                            Unit No. \u00a9            .              DOB\n"
        "Carter, Timothy                     00487340                            1978-11-07\n"
    )
    ids = extract_identifiers([(1, text)], S)
    assert (ids.distinct_mrns, ids.name, ids.dob) == (["00487340"], "CARTER, TIMOTHY", "1978-11-07")
    # A word after the label is no speck: "Unit No. of the ward" heads nothing.
    assert values("Pt Name     Unit No. of ward\nCarter, Timothy     00487340\n") == []
