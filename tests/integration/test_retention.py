"""Retention: rules per type, minors, legal holds, undated documents, and logged destruction."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from pathlib import Path

import pytest

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.archive.store import doc_id_for
from pipeline.core.config import Config, RetentionSettings
from pipeline.records.retention import (
    destruction_log,
    keep_until,
    purge,
    retention_report,
)

from .test_audit import (  # noqa: F401
    MRN,
    OTHER_MRN,
    add_document,
    audit_entries,
    index_archive,
    invoke,
    make_config,
    private_umask,
)

HELD_MRN = "00999111"
RULES = RetentionSettings(
    default_years=10, years_by_type={"lab_result": 5}, age_of_majority=18, minor_years_after_majority=3
)


@pytest.mark.parametrize(
    ("doc_type", "doc_date", "dob", "until", "rule"),
    [
        ("lab_result", date(2010, 6, 1), date(1960, 1, 1), date(2015, 6, 1), "lab_result: 5 years"),
        ("discharge_summary", date(2010, 6, 1), date(1960, 1, 1), date(2020, 6, 1), "default: 10 years"),
        # Seen at 10: kept until 21, longer than the type's 5 years.
        ("lab_result", date(2010, 6, 1), date(2000, 3, 15), date(2021, 3, 15), "minor at the time"),
        # Seen at 17: 21 comes before the type's 10 years, which win.
        ("discharge_summary", date(2010, 6, 1), date(1993, 1, 1), date(2020, 6, 1), "default: 10 years"),
        # Without a birth date the minor rule's latest possible end applies.
        ("lab_result", date(2010, 6, 1), None, date(2031, 6, 1), "no date of birth"),
        ("lab_result", date(2012, 2, 29), date(1960, 1, 1), date(2017, 2, 28), "lab_result"),
    ],
)
def test_keep_until(doc_type, doc_date, dob, until, rule):
    got, why = keep_until(doc_type, doc_date, dob, RULES)
    assert got == until and why.startswith(rule)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    config = make_config(
        tmp_path, retention={"default_years": 10, "years_by_type": {"lab_result": 5}, "legal_holds": [HELD_MRN]}
    )
    last_year = date.today().year - 1
    add_document(config, 1, doc_type="lab_result", doc_date="2001-01-01")  # due
    add_document(config, 2, mrn=OTHER_MRN, doc_date="1995-05-05", dob="1940-01-01")  # due
    add_document(config, 3, doc_type="discharge_summary", doc_date=f"{last_year}-01-01")  # kept: within 10 years
    add_document(config, 4, doc_date="2005-01-01", dob="2000-01-01")  # due: a minor, kept until 21
    add_document(config, 5, doc_date=f"{last_year}-01-01", dob=f"{last_year - 5}-01-01")  # kept: a minor
    add_document(config, 6, mrn=HELD_MRN, doc_date="1990-01-01")  # held
    add_document(config, 7, doc_date=None)  # undated
    add_document(config, 8, doc_date="1990-01-01", status="review")  # in review
    index_archive(config)
    return config


TODAY = date.today()


def _ids(items) -> set[str]:
    return {i.doc_id for i in items}


def _doc_id(seed: int) -> str:
    return doc_id_for(hashlib.sha256(f"input-{seed}".encode()).hexdigest(), 1)


def test_the_report_sorts_documents_by_why_they_are_or_are_not_destroyed(config: Config):
    report = retention_report(config, TODAY)
    assert _ids(report.due) == {_doc_id(1), _doc_id(2), _doc_id(4)}
    assert (
        _ids(report.held) == {_doc_id(6)}
        and _ids(report.undated) == {_doc_id(7)}
        and _ids(report.review) == {_doc_id(8)}
    )
    minor = next(i for i in report.due if i.doc_id == _doc_id(4))
    assert minor.keep_until == "2021-01-01" and minor.rule.startswith("minor at the time")


def test_the_report_command_lists_due_documents_and_the_others_separately(config: Config):
    result = invoke(config, "retention", "report", "--json")
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    buckets = {row["doc_id"]: row["bucket"] for row in rows}
    assert buckets[_doc_id(6)] == "held" and buckets[_doc_id(7)] == "undated" and buckets[_doc_id(8)] == "review"
    assert _doc_id(3) not in buckets and _doc_id(5) not in buckets
    text = invoke(config, "retention", "report")
    assert "on legal hold" in text.stderr and "undated" in text.stderr


def test_nothing_is_purged_without_confirm(config: Config):
    before = sorted(config.archive_dir.rglob("*"))
    result = invoke(config, "retention", "purge")
    assert result.exit_code == 1 and "nothing was removed" in str(result.exception)
    assert sorted(config.archive_dir.rglob("*")) == before
    assert not list(destruction_log(config).entries())


def test_purge_destroys_only_the_due_documents_and_logs_each(config: Config):
    due = _ids(retention_report(config, date.today()).due)
    assert due == {_doc_id(1), _doc_id(2), _doc_id(4)}
    result = invoke(config, "retention", "purge", "--confirm", user="Records Manager")
    assert result.exit_code == 0, result.exception
    archived = {p.stem.rsplit("_", 1)[-1] for p in config.root.glob("*/**/*.pdf")}
    assert archived == {_doc_id(n) for n in (3, 5, 6, 7, 8)}
    assert not due & {r.doc_id for r in open_index(config).stored()}
    ledger = list(destruction_log(config).entries())
    assert {e["doc_id"] for e in ledger} == due
    for entry in ledger:
        assert entry["user"] == "Records Manager" and entry["action"] == "destroyed" and entry["at"].endswith("+00:00")
        assert (
            entry["mrn"] in (MRN, OTHER_MRN) and entry["doc_type"] and entry["doc_date"] and len(entry["sha256"]) == 64
        )
        assert entry["rule"] and entry["keep_until"]
    assert destruction_log(config).verify().ok
    assert audit_entries(config, action="retention.purge")[0]["doc_ids"] == sorted(due)


def test_the_destruction_log_outlives_the_documents_and_shows_tampering(config: Config):
    invoke(config, "retention", "purge", "--confirm")
    assert invoke(config, "audit", "verify").exit_code == 0
    ledger = destruction_log(config).path
    lines = ledger.read_text().splitlines(keepends=True)
    ledger.write_text(lines[0] + lines[1].replace('"lab_result"', '"progress_note"') + "".join(lines[2:]))
    result = invoke(config, "audit", "verify")
    assert result.exit_code == 3 and "destruction log: BROKEN at line 2" in result.stdout


def test_an_altered_document_is_kept_as_evidence(config: Config):
    victim = next(p for p in (config.archive_dir / MRN).glob("*.pdf") if _doc_id(1) in p.name)
    victim.write_bytes(victim.read_bytes() + b"%x")
    done = purge(config, open_index(config), user="rm", audit=AuditLog.for_config(config), today=TODAY)
    assert _ids(done.destroyed) == {_doc_id(2), _doc_id(4)}
    assert [(i.doc_id, "altered" in why) for i, why in done.refused] == [(_doc_id(1), True)]
    assert victim.exists() and audit_entries(config, action="retention.purge")[0]["outcome"] == "partial"
