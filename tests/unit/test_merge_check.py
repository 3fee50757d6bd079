"""Which merges from the feed are applied, which wait for a clerk; the patient index's queue and history."""

from __future__ import annotations

import sqlite3

import pytest

from pipeline.ehr.merge_check import merge_hold_reason, unmerge_hold_reason
from pipeline.identify import patients as module
from pipeline.identify.patients import Patient, PatientIndex, PatientIndexError
from pipeline.stores.sqlite_backend import SqliteDatabase

DOE = Patient("1001", "DOE", "JOHN", "1980-01-02")
DOE_DUP = Patient("1002", "Doe", "John A", "1980-01-02")  # the same person registered twice
ROE = Patient("1003", "ROE", "RICHARD", "1975-02-03")


@pytest.mark.parametrize(
    ("policy", "prior", "survivor", "described", "held"),
    [
        ("verified", DOE_DUP, DOE, DOE, None),
        ("verified", ROE, DOE, DOE, "the name or date of birth of the retired MRN 1002"),
        ("verified", DOE_DUP, ROE, DOE, "the name or date of birth of MRN 1001 in the patient index differs"),
        ("verified", DOE_DUP, DOE, Patient("1001", "DOE", "JOHN", "1980-01-03"), "MRN 1001 in the patient index"),
        ("verified", DOE_DUP, None, DOE, "the surviving MRN 1001 is not in the patient index"),
        ("verified", None, DOE, DOE, "the retired MRN 1002 is not in the patient index"),
        ("verified", DOE_DUP, DOE, None, "no name and date of birth"),
        ("review", DOE_DUP, DOE, DOE, "merge_policy is review"),
        ("trust", ROE, None, None, None),
    ],
)
def test_merge_hold_reason(policy, prior, survivor, described, held):
    reason = merge_hold_reason(policy, "1002", "1001", prior, survivor, described)
    if held is None:
        assert reason is None
    else:
        assert held in reason and "RICHARD" not in reason and "JOHN" not in reason


def test_unmerges_wait_only_under_the_review_policy():
    assert unmerge_hold_reason("verified") is None and unmerge_hold_reason("trust") is None
    assert "every merge and unmerge" in unmerge_hold_reason("review")


@pytest.fixture
def index(tmp_path):
    patients = PatientIndex(SqliteDatabase(tmp_path / "patients.sqlite", module.SCHEMA), tmp_path)
    for p in (DOE, DOE_DUP, ROE):
        patients.upsert(p, changed_by="test")
    yield patients
    patients.close()


def test_a_held_merge_is_confirmed_once_and_a_rejected_one_keeps_its_reason(index):
    held, new = index.hold(
        "merge", "1003", "1001", patient=DOE, control_id="C1", requested_by="hl7:R@H", held_because="differs"
    )
    again, repeated = index.hold(
        "merge", "1003", "1001", patient=DOE, control_id="C2", requested_by="hl7:R@H", held_because="differs"
    )
    assert new and not repeated and again.id == held.id and index.survivor_of("1003") is None
    merge = index.confirm(held.id, user="clerk")
    assert (merge.prior, merge.survivor, merge.state) == ("1003", "1001", "moving")
    assert index.survivor_of("1003") == "1001" and index.review(held.id).merge_id == merge.id
    with pytest.raises(PatientIndexError, match="already confirmed by clerk"):
        index.confirm(held.id, user="clerk")
    other, _ = index.hold(
        "merge", "1002", "1001", patient=None, control_id=None, requested_by="hl7:R@H", held_because="x"
    )
    with pytest.raises(PatientIndexError, match="say why"):
        index.reject(other.id, user="clerk", reason=" ")
    assert index.reject(other.id, user="clerk", reason="two people").decision_reason == "two people"
    assert [r.id for r in index.reviews()] == [] and len(index.reviews(None)) == 2


def test_an_unmerge_gives_the_retired_mrn_back_and_restores_earlier_merges(index):
    index.upsert(Patient("1004", "DOE", "JOHN", "1980-01-02"))
    older, _ = index.record_merge("1004", "1002", survivor_patient=None, control_id="A", requested_by="r")
    merge, _ = index.record_merge("1002", "1001", survivor_patient=None, control_id="B", requested_by="r")
    assert index.survivor_of("1004") == "1001"
    unmerge = index.record_unmerge(merge, requested_by="clerk", control_id=None, reason="two people")
    assert (unmerge.kind, unmerge.undoes, index.merge(merge.id).undone_by) == ("unmerge", merge.id, unmerge.id)
    assert index.survivor_of("1002") is None and index.get("1002").status == "active"
    assert index.survivor_of("1004") == "1002"  # the earlier merge into 1002 leads to it again
    assert index.applied_merge("1001", "1002") is None and index.applied_merge("1002", "1004").id == older.id
    with pytest.raises(PatientIndexError, match="already undone"):
        index.record_unmerge(index.merge(merge.id), requested_by="clerk", control_id=None, reason=None)
    # A survivor merged onwards since: that later merge must be undone first.
    onward, _ = index.record_merge("1002", "1003", survivor_patient=None, control_id="C", requested_by="r")
    index.record_merge("1003", "1001", survivor_patient=None, control_id="D", requested_by="r")
    with pytest.raises(PatientIndexError, match="undo that merge first"):
        index.record_unmerge(onward, requested_by="clerk", control_id=None, reason=None)


def test_demographic_changes_keep_the_old_values(index):
    assert index.upsert(Patient("1001", "DOE-SMITH", "JOHN", "1980-01-02"), changed_by="hl7:R@H", source="M9") == (
        "updated"
    )
    assert index.upsert(Patient("1001", "DOE-SMITH", "JOHN", "1980-01-02"), changed_by="hl7:R@H") == "unchanged"
    [change] = index.history("1001")
    assert change.old == ("DOE", "JOHN", "1980-01-02", None) and change.new[0] == "DOE-SMITH"
    assert (change.changed_by, change.source) == ("hl7:R@H", "M9")
    assert index.history("1003") == []


def test_a_version_1_patient_index_opens_with_its_data(tmp_path):
    path = tmp_path / "patients.sqlite"
    old = sqlite3.connect(path)
    old.executescript(module._SCHEMA + "PRAGMA user_version = 1;")
    old.execute(
        "INSERT INTO patients (mrn, family, given, dob, updated_at, last_key, first_key) "
        "VALUES ('1001', 'DOE', 'JOHN', '1980-01-02', 'then', 'DOE', 'JOHN')"
    )
    old.execute(
        "INSERT INTO merges (prior, survivor, requested_by, state, received_at) VALUES ('1002', '1001', 'r', 'done', 'then')"
    )
    old.commit()
    old.close()
    index = PatientIndex(SqliteDatabase(path, module.SCHEMA), path)
    assert index.get("1001").family == "DOE" and index.merges()[0].kind == "merge"
    assert index.query("PRAGMA user_version")[0][0] == module.SCHEMA_VERSION == 2
    assert index.reviews() == [] and index.history("1001") == []
    index.close()
