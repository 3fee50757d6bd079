"""The master patient index: loading, look-ups, and agreement of a document with a patient."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipeline.core.config import RosterColumns, RosterSettings
from pipeline.core.errors import MedarchiveError
from pipeline.identify.roster import (
    Roster,
    RosterError,
    RosterPatient,
    dob_agrees,
    luhn_valid,
    name_agrees,
)

HEADER = "mrn,last_name,first_name,dob"


def write_csv(tmp_path: Path, *lines: str, name: str = "roster.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def roster_of(*patients: tuple[str, str, str, str]) -> Roster:
    return Roster([RosterPatient(*p) for p in patients])


def patient(last: str, first: str, dob: str = "1962-03-14", mrn: str = "00482913") -> RosterPatient:
    return RosterPatient(mrn, last, first, dob)


# ---------------------------------------------------------------- loading


def test_load_reads_rows_into_normalised_patients(tmp_path):
    path = write_csv(tmp_path, HEADER, "00482913,Smith,John Albert,1962-03-14", "00519377, García ,José,2001-12-31")
    roster = Roster.load(path, RosterSettings())
    assert len(roster) == 2
    assert roster.get("00482913") == RosterPatient("00482913", "SMITH", "JOHN ALBERT", "1962-03-14")
    assert roster.get("00519377") == RosterPatient("00519377", "GARCÍA", "JOSÉ", "2001-12-31")
    assert roster.get("00482913").name == "SMITH, JOHN ALBERT"
    assert roster.get("99999999") is None


def test_load_uses_configured_columns_and_dob_format_with_bom(tmp_path):
    path = tmp_path / "export.csv"
    path.write_bytes('\ufeffPatient ID,Surname,Given,Birth\n"0048-2913",O\'Brien,Mary,03/14/1962\n'.encode())
    settings = RosterSettings(
        columns=RosterColumns(mrn="Patient ID", last_name="surname", first_name="Given", dob="BIRTH"),
        dob_format="%m/%d/%Y",
    )
    roster = Roster.load(path, settings)
    expected = RosterPatient("00482913", "O'BRIEN", "MARY", "1962-03-14")
    assert roster.get("00482913") == expected
    assert roster.get("0048 2913") == expected


def test_load_skips_blank_lines_and_identical_duplicates(tmp_path):
    path = write_csv(tmp_path, HEADER, "", "00482913,Smith,John,1962-03-14", ",,,", "00482913,SMITH,john,1962-03-14")
    roster = Roster.load(path, RosterSettings())
    assert len(roster) == 1


def test_missing_column_names_file_line_and_column(tmp_path):
    path = write_csv(tmp_path, "mrn,last_name,first,dob", "00482913,Smith,John,1962-03-14")
    with pytest.raises(RosterError) as err:
        Roster.load(path, RosterSettings())
    message = str(err.value)
    assert str(path) in message
    assert "line 1" in message
    assert "missing column 'first_name'" in message
    assert "'first'" in message  # what the file has instead


def test_bad_dob_names_line_column_and_value(tmp_path):
    path = write_csv(tmp_path, HEADER, "00482913,Smith,John,1962-03-14", "00519377,Lee,Ann,1962-02-30")
    with pytest.raises(RosterError) as err:
        Roster.load(path, RosterSettings())
    assert str(err.value) == (f"{path}: line 3: column 'dob': '1962-02-30' is not a date in the format '%Y-%m-%d'")


def test_dob_in_another_format_than_configured_is_an_error(tmp_path):
    path = write_csv(tmp_path, HEADER, "00482913,Smith,John,03/14/1962")
    with pytest.raises(RosterError, match=r"line 2: column 'dob': '03/14/1962'"):
        Roster.load(path, RosterSettings())


def test_duplicate_mrn_with_different_people_names_both_lines(tmp_path):
    path = write_csv(
        tmp_path,
        HEADER,
        "00482913,Smith,John,1962-03-14",
        "00519377,Lee,Ann,1970-01-01",
        "00482913,Smith,Jane,1962-03-14",
    )
    with pytest.raises(RosterError) as err:
        Roster.load(path, RosterSettings())
    assert str(err.value) == (
        f"{path}: line 4: MRN 00482913 is SMITH, JANE born 1962-03-14, "
        "but line 2 gives it to SMITH, JOHN born 1962-03-14"
    )


def test_shifted_row_is_an_error_not_a_wrong_name(tmp_path):
    path = write_csv(tmp_path, HEADER, "00482913,Smith, Jr,John,1962-03-14")
    with pytest.raises(RosterError, match=r"line 2: 5 fields where the header has 4"):
        Roster.load(path, RosterSettings())


@pytest.mark.parametrize(
    ("row", "column"),
    [
        (",Smith,John,1962-03-14", "mrn"),
        ("00482913, ,John,1962-03-14", "last_name"),
        ("00482913,Smith,John,", "dob"),
    ],
)
def test_empty_required_cell_is_an_error(tmp_path, row, column):
    path = write_csv(tmp_path, HEADER, row)
    with pytest.raises(RosterError, match=rf"line 2: column '{column}' is empty"):
        Roster.load(path, RosterSettings())


def test_empty_first_name_is_allowed(tmp_path):
    path = write_csv(tmp_path, HEADER, "00482913,Babygirl,,2024-05-01")
    expected = RosterPatient("00482913", "BABYGIRL", "", "2024-05-01")
    assert Roster.load(path, RosterSettings()).get("00482913") == expected


def test_unreadable_files_raise_roster_errors(tmp_path):
    with pytest.raises(RosterError, match="cannot read roster"):
        Roster.load(tmp_path / "absent.csv", RosterSettings())
    for empty in (b"", b"\n", "\ufeff\n00482913,Smith,John,1962-03-14\n".encode()):
        (tmp_path / "empty.csv").write_bytes(empty)
        with pytest.raises(RosterError, match="line 1: expected a header line"):
            Roster.load(tmp_path / "empty.csv", RosterSettings())
    latin1 = write_csv(tmp_path, HEADER, "00482913,Muñoz,Ana,1962-03-14", name="latin1.csv", encoding="latin-1")
    with pytest.raises(RosterError, match="is not UTF-8"):
        Roster.load(latin1, RosterSettings())
    assert issubclass(RosterError, MedarchiveError)


def test_load_handles_a_hundred_thousand_rows(tmp_path):
    rows = [HEADER] + [
        f"{i:08d},Last{i % 977},First{i % 313},19{i % 90 + 10}-0{i % 9 + 1}-1{i % 9}" for i in range(100_000)
    ]
    path = write_csv(tmp_path, *rows)
    started = time.perf_counter()
    roster = Roster.load(path, RosterSettings())
    assert time.perf_counter() - started < 30  # about 1-2 s; quadratic work would take hours
    assert len(roster) == 100_000
    assert roster.get("00054321") == RosterPatient("00054321", "LAST586", "FIRST172", "1961-07-16")


# ---------------------------------------------------------------- confusable MRNs


def test_confusable_finds_the_one_mrn_a_raw_read_spells_with_one_lookalike():
    roster = roster_of(("00482913", "SMITH", "JOHN", "1962-03-14"), ("00519377", "LEE", "ANN", "1970-01-01"))
    assert [p.mrn for p in roster.confusable("0O482913")] == ["00482913"]
    assert [p.mrn for p in roster.confusable("00S19377")] == ["00519377"]
    assert [p.mrn for p in roster.confusable("0O48 2913")] == ["00482913"]  # spacing as printed


def test_confusable_lists_every_neighbour_so_the_caller_sees_the_ambiguity():
    roster = roster_of(
        ("00482913", "SMITH", "JOHN", "1962-03-14"),
        ("D0482913", "JONES", "MARY", "1980-06-01"),
        ("I1234567", "BROWN", "AMY", "1990-01-01"),
        ("11234567", "GREEN", "TOM", "1991-01-01"),
    )
    assert [p.mrn for p in roster.confusable("O0482913")] == ["00482913", "D0482913"]
    assert [p.mrn for p in roster.confusable("l1234567")] == ["11234567", "I1234567"]


def test_confusable_is_empty_for_digit_slips_two_confusions_and_the_mrn_itself():
    roster = roster_of(
        ("00482913", "SMITH", "JOHN", "1962-03-14"),
        ("00482918", "JONES", "MARY", "1980-06-01"),
        ("00482917", "BROWN", "AMY", "1990-01-01"),
        ("00482912", "GREEN", "TOM", "1991-01-01"),
    )
    assert roster.confusable("00482913") == []  # 3/8, 3/7, 3/2 are digit slips: not counted
    assert roster.confusable("OO482913") == []  # two look-alikes are two confusions
    assert roster.confusable("00482919") == []
    assert roster.confusable("") == []


def test_confusable_never_returns_the_read_itself():
    roster = roster_of(("00482913", "SMITH", "JOHN", "1962-03-14"), ("O0482913", "JONES", "MARY", "1980-06-01"))
    assert [p.mrn for p in roster.confusable("00482913")] == ["O0482913"]


# ---------------------------------------------------------------- name and DOB look-up


def test_by_name_dob_matches_exactly_modulo_case_accents_and_punctuation():
    roster = roster_of(
        ("00482913", "SMITH", "JOHN ALBERT", "1962-03-14"),
        ("00519377", "O'BRIEN", "MARY", "1970-01-01"),
        ("00600001", "GARCÍA", "JOSÉ", "2001-12-31"),
        ("00600002", "SMITH-JONES", "ANN", "1980-05-05"),
    )
    assert [p.mrn for p in roster.by_name_dob("SMITH, JOHN", "1962-03-14")] == ["00482913"]
    assert [p.mrn for p in roster.by_name_dob("John A. Smith", "1962-03-14")] == ["00482913"]
    assert [p.mrn for p in roster.by_name_dob("OBRIEN, MARY", "1970-01-01")] == ["00519377"]
    assert [p.mrn for p in roster.by_name_dob("GARCIA, JOSE", "2001-12-31")] == ["00600001"]
    assert [p.mrn for p in roster.by_name_dob("SMITH JONES, ANN", "1980-05-05")] == ["00600002"]


def test_by_name_dob_tolerates_no_ocr_noise_and_no_other_dob():
    roster = roster_of(("00482913", "SMITH", "JOHN", "1962-03-14"))
    assert roster.by_name_dob("SMLTH, JOHN", "1962-03-14") == []
    assert roster.by_name_dob("SMITH, JOHN", "1962-03-15") == []
    assert roster.by_name_dob("SMITH, JON", "1962-03-14") == []
    assert roster.by_name_dob("SMITH", "1962-03-14") == []


def test_by_name_dob_returns_every_namesake_born_the_same_day():
    roster = roster_of(("00482913", "SMITH", "JOHN", "1962-03-14"), ("00700007", "Smith", "John", "1962-03-14"))
    assert sorted(p.mrn for p in roster.by_name_dob("SMITH, JOHN", "1962-03-14")) == ["00482913", "00700007"]


# ---------------------------------------------------------------- name agreement


@pytest.mark.parametrize(
    "doc_name",
    [
        "SMITH, JOHN",
        "Smith, John",
        "John Smith",
        "John A. Smith",
        "SMITH, JOHN A",
        "SMITH JR, JOHN",
        "SMlTH, J0HN",  # OCR: l for I, zero for O
        "5MITH, JOHN",
        "SMTH, JOHN",  # a letter lost in the scan
    ],
)
def test_name_agrees_despite_format_and_ocr_noise(doc_name):
    assert name_agrees(doc_name, patient("SMITH", "JOHN ALBERT")) is True


@pytest.mark.parametrize(
    ("doc_name", "last", "first"),
    [
        ("O'BRIEN, MARY", "OBRIEN", "MARY"),
        ("OBRIEN, MARY", "O'Brien", "Mary"),
        ("SMITH-JONES, MARY", "Smith Jones", "Mary"),
        ("DE LA CRUZ, MARIA", "de la Cruz", "María"),
        ("JOHNSON, MARY", "JOHNSTON", "MARY"),
        ("MONTGOMERY, CHRISTOPHER", "MONTGOMERIE", "CHRISTOPHER"),
    ],
)
def test_name_agrees_across_spellings_of_one_name(doc_name, last, first):
    assert name_agrees(doc_name, patient(last, first)) is True


@pytest.mark.parametrize(
    ("doc_name", "last", "first"),
    [
        ("JOHNSON, MARY", "JOHNSTON", "MARK"),  # similar names, different people
        ("SMITH, JANE", "SMITH", "JOHN"),  # same family
        ("SMITH, JOAN", "SMITH", "JOHN"),
        ("SMITH, FRANCES", "SMITH", "FRANCIS"),  # twins
        ("SMITH, DANIELA", "SMITH", "DANIEL"),
        ("SMITH, DANIEL", "SMITH", "DANIELA"),
        ("SMITH, CLARA", "SMITH", "CIARA"),
        ("SMITH, MARY", "SMITH", "MARY-ANN"),
        ("SMITH, MARY", "SMITH-JONES", "MARY"),
        ("SMYTHE, JOHN", "SMITH", "JOHN"),
        ("LI, MARY", "LEE", "MARY"),
        ("JOHN SMITH", "JOHN", "SMITH"),  # first and last the other way round
        ("SMITH, JOHN", "SMITH", ""),  # the roster has no first name to confirm
    ],
)
def test_name_disagrees_for_different_people(doc_name, last, first):
    assert name_agrees(doc_name, patient(last, first)) is False


@pytest.mark.parametrize("doc_name", [None, "", "   ", "SMITH", ", JOHN", "SMITH,"])
def test_name_agrees_is_none_without_a_full_name(doc_name):
    assert name_agrees(doc_name, patient("SMITH", "JOHN")) is None


def test_dob_agrees_only_on_the_exact_date():
    p = patient("SMITH", "JOHN", dob="1962-03-14")
    assert dob_agrees("1962-03-14", p) is True
    assert dob_agrees("1962-03-15", p) is False
    assert dob_agrees("1962-14-03", p) is False
    assert dob_agrees("1926-03-14", p) is False
    assert dob_agrees(None, p) is None


# ---------------------------------------------------------------- check digit


@pytest.mark.parametrize(
    ("mrn", "valid"),
    [
        ("79927398713", True),
        ("00482919", True),
        ("4539578763621486", True),
        ("79927398710", False),
        ("00482913", False),
        ("00428919", False),  # two digits swapped
        ("0048291O", False),
        ("0", False),
        ("", False),
        ("\u0660\u0661", False),  # other scripts' digits are not MRN digits
    ],
)
def test_luhn_valid(mrn, valid):
    assert luhn_valid(mrn) is valid
