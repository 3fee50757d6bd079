"""Forms read by where their words sit: titles by size, values inside their label's box."""

from pipeline.core.config import ClassificationSettings, ExtractionSettings
from pipeline.core.models import Word
from pipeline.identify.classify import classify
from pipeline.identify.extract import layout_identifiers
from pipeline.identify.layout import lines_of, rest_is_hint, title_lines, value_below


def words(text, left, top, height=20, char=10):
    found, x = [], left
    for part in text.split(" "):
        if part:
            found.append(Word(part, 95, x, top, len(part) * char, height))
        x += (len(part) + 1) * char
    return found


SMALL_PRINT_FIRST = [
    *words("APPROVED BY NATIONAL UNIFORM CLAIM COMMITTEE", 100, 100),
    *words("CARRIER", 2300, 100),
    *words("HEALTH INSURANCE CLAIM FORM", 700, 170, height=50, char=28),
    *words("2. PATIENT'S NAME (Last Name, First Name, Middle Initial)", 100, 380),
    *words("4. INSURED'S NAME (Last Name, First Name)", 1460, 380),
    *words("MOSS, DOMINIC, K", 110, 420, height=32, char=18),
    *words("UNIVERSITY, STANFORD", 1470, 420, height=32, char=18),
    *words("3. PATIENT'S BIRTH DATE MM | DD | YY", 900, 380),
    *words("04", 910, 420, height=32, char=18),
    *words("17", 1000, 420, height=32, char=18),
    *words("1985", 1090, 420, height=32, char=18),
    *words("Claim details follow for the insurance payer", 100, 900),
]


def test_fields_side_by_side_are_separate_lines():
    texts = [line.text for line in lines_of(SMALL_PRINT_FIRST)]
    assert "MOSS, DOMINIC, K" in texts and "UNIVERSITY, STANFORD" in texts


def test_the_title_is_the_large_line_at_the_top():
    assert title_lines(SMALL_PRINT_FIRST)[0] == "HEALTH INSURANCE CLAIM FORM"
    assert title_lines([]) == []


def test_a_title_printed_large_decides_the_type_whatever_the_reading_order():
    text = "APPROVED BY NATIONAL UNIFORM CLAIM COMMITTEE\nCARRIER\nPLEASE DO NOT STAPLE\n" * 5
    text += "PICA HEALTH INSURANCE CLAIM FORM PICA and much more small print on one line"
    found = classify([text], ClassificationSettings(), titles=title_lines(SMALL_PRINT_FIRST))
    assert (found.doc_type, found.cues[0]) == ("insurance_billing", "title:Health Insurance Claim Form")


def test_the_patients_box_wins_over_the_insured_and_the_employer():
    assert layout_identifiers(SMALL_PRINT_FIRST, ExtractionSettings()) == ("MOSS, DOMINIC", "1985-04-17")


def test_a_value_beside_its_label_is_left_to_the_text_reading():
    beside = words("Patient Name: DOE, JANE", 100, 100)
    assert layout_identifiers(beside, ExtractionSettings()) == (None, None)


def test_value_below_stays_inside_the_labels_box():
    lines = lines_of(SMALL_PRINT_FIRST)
    insured = next(i for i, line in enumerate(lines) if line.text.startswith("4."))
    assert value_below(lines, insured) == "UNIVERSITY, STANFORD"


def test_format_hints_are_no_value():
    assert rest_is_hint(" (Last Name, First Name, Middle")
    assert rest_is_hint(" MM | DD | YY")
    assert not rest_is_hint(": DOE, JANE")
