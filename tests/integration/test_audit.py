"""The audit trail: entries for each action, a hash chain that shows edits and deletions.

The helpers at the top are shared by the records tests (release, verify, retention,
security): archives are written directly through pipeline.archive, never OCRed.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

import click
import pikepdf
import pytest
from click.testing import CliRunner, Result

from pipeline.archive.audit import (
    AuditError,
    AuditFilters,
    AuditLog,
    ChainedLog,
    acting_user,
    os_user,
)
from pipeline.archive.dataroot import open_data_root
from pipeline.archive.index import open_index
from pipeline.archive.sidecar import Sidecar
from pipeline.archive.store import (
    doc_id_for,
    iter_sidecars,
    record_from_sidecar,
    write_document,
)
from pipeline.cli.records import COMMANDS
from pipeline.core.config import Config, load_config
from pipeline.core.models import (
    Classification,
    Decision,
    Document,
    Identifiers,
    MrnCandidate,
    PageText,
)
from tests.conftest import ROOT, write_config

# -- helpers shared by the records tests -------------------------------------

MRN = "00482913"
OTHER_MRN = "00777001"
NAME = "QUIGLEY, ROSALIND"
SECRET_TEXT = "hemoglobin 7.2 marked anaemia transfusion"


@pytest.fixture(autouse=True)
def private_umask():
    """The umask the medarchive CLI runs under (its main() sets it)."""
    old = os.umask(0o077)
    yield
    os.umask(old)


def make_config(tmp_path: Path, **sections) -> Config:
    config = load_config(write_config(tmp_path, **sections))
    open_data_root(config)
    return config


def _source_pdf(folder: Path) -> Path:
    path = folder / "source.pdf"
    if not path.exists():
        with pikepdf.new() as pdf:
            pdf.add_blank_page()
            pdf.save(path)
    return path


def add_document(
    config: Config,
    seed: int,
    *,
    mrn: str | None = MRN,
    doc_type: str = "lab_result",
    doc_date: str | None = "2020-03-04",
    dob: str | None = "1970-05-06",
    status: str = "filed",
    name: str = NAME,
    text: str = SECRET_TEXT,
) -> Sidecar:
    """Archive one single-page document (text from a "text layer") and return its sidecar."""
    source_sha = hashlib.sha256(f"input-{seed}".encode()).hexdigest()
    candidates = [MrnCandidate(mrn, mrn, "MRN", 1, 0)] if mrn else []
    doc = Document(
        doc_id=doc_id_for(source_sha, 1),
        source_file=f"scan-{seed}.pdf",
        source_pages=[1],
        sha256=source_sha,
        pages=[PageText(1, f"{name} MRN {mrn} {text}", "text-layer")],
        identifiers=Identifiers(candidates, name, dob, doc_date),
        classification=Classification(doc_type, 0.9),
        decision=Decision("filed", mrn) if status == "filed" else Decision("review", mrn, "MRN needs a clerk"),
    )
    return write_document(config, doc, _source_pdf(config.root.parent))


def index_archive(config: Config) -> None:
    open_index(config).rebuild(record_from_sidecar(s) for s in iter_sidecars(config))


def _root_group() -> click.Group:
    """A stand-in for the `medarchive` group: --config, --user and the records commands."""

    @click.group()
    @click.option("--config")
    @click.option("--user")
    def root(config, user):
        pass

    for command in COMMANDS:
        root.add_command(command)
    return root


RECORDS_CLI = _root_group()


def invoke(config: Config, *args: str, user: str | None = None) -> Result:
    """Run a records command in-process; a MedarchiveError ends up in result.exception (exit 1)."""
    argv = ["--config", str(config.path), *(["--user", user] if user else []), *args]
    return CliRunner().invoke(RECORDS_CLI, argv)


def run_main(config_path: Path, *args: str) -> subprocess.CompletedProcess:
    """The real `medarchive` main() with the records commands registered, as a subprocess."""
    code = "from pipeline.cli.main import cli, main\nfrom pipeline.cli.records import COMMANDS\nfor c in COMMANDS: cli.add_command(c)\nmain()"
    return subprocess.run(
        [sys.executable, "-c", code, "--config", str(config_path), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def audit_entries(config: Config, **filters) -> list[dict]:
    return list(AuditLog.for_config(config).entries(AuditFilters(**filters)))


# -- the chained log -----------------------------------------------------------


@pytest.fixture
def trail(tmp_path: Path) -> AuditLog:
    log = AuditLog(tmp_path / "audit" / "audit.jsonl")
    for n in range(5):
        log.record("show", user=f"clerk{n}", doc_ids=[f"{n:016x}-1"], mrns=[MRN], details={"n": n})
    return log


def test_an_entry_says_when_who_what_which_and_how_it_went(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    entry = log.record(
        "search",
        user="dr.who",
        doc_ids=["b" * 16 + "-1", "a" * 16 + "-1"],
        mrns=[MRN, None],
        details={"query": "anaemia", "filters": {"mrn": MRN}, "results": 2},
        reason="treatment",
    )
    assert entry["at"].endswith("+00:00") and entry["user"] == "dr.who" and entry["os_user"] == os_user()
    assert entry["action"] == "search" and entry["outcome"] == "ok" and entry["reason"] == "treatment"
    assert entry["doc_ids"] == ["a" * 16 + "-1", "b" * 16 + "-1"] and entry["mrns"] == [MRN]
    assert entry["seq"] == 1 and entry["prev"] == "0" * 64 and len(entry["hash"]) == 64
    second = log.record("show", user="dr.who", doc_ids=["a" * 16 + "-1"], mrns=[MRN])
    assert second["seq"] == 2 and second["prev"] == entry["hash"]
    assert [e["seq"] for e in log.entries()] == [1, 2]
    assert (tmp_path / "audit.jsonl").stat().st_mode & 0o777 == 0o600


def test_unknown_actions_and_blank_users_are_refused(tmp_path: Path):
    log = AuditLog(tmp_path / "audit.jsonl")
    with pytest.raises(AuditError, match="unknown audit action"):
        log.record("peek", user="x")
    with pytest.raises(AuditError, match="--user"):
        acting_user("  ")
    assert acting_user(None) == os_user()
    assert acting_user(" Dr. Grey ") == "Dr. Grey"


def test_an_intact_chain_verifies(trail: AuditLog):
    check = trail.verify()
    assert check.ok and check.entries == 5 and check.head == list(trail.entries())[-1]["hash"]


def _rewrite(path: Path, change) -> None:
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(change(lines)))


def test_an_edited_line_is_found(trail: AuditLog):
    _rewrite(trail.path, lambda lines: [*lines[:2], lines[2].replace("clerk2", "nobody"), *lines[3:]])
    check = trail.verify()
    assert not check.ok and check.line == 3 and "edited" in check.problem and check.entries == 2


def test_a_deleted_line_is_found(trail: AuditLog):
    _rewrite(trail.path, lambda lines: lines[:1] + lines[2:])
    check = trail.verify()
    assert not check.ok and check.line == 2 and "deleted" in check.problem


def test_lines_cut_off_the_end_are_found(trail: AuditLog):
    _rewrite(trail.path, lambda lines: lines[:-1])
    check = trail.verify()
    assert not check.ok and check.line == 5 and "removed from the end" in check.problem


def test_no_entry_is_recorded_after_lines_were_cut_off(trail: AuditLog):
    # Otherwise the next entry would take the removed one's place unnoticed.
    _rewrite(trail.path, lambda lines: lines[:-1])
    with pytest.raises(AuditError, match="lost entries"):
        trail.record("show", user="x")
    trail.path.unlink()
    with pytest.raises(AuditError, match="lost entries"):
        trail.record("show", user="x")


def test_swapped_lines_are_found(trail: AuditLog):
    _rewrite(trail.path, lambda lines: [lines[0], lines[2], lines[1], *lines[3:]])
    assert trail.verify().line == 2


def test_a_damaged_last_line_stops_recording(trail: AuditLog):
    with open(trail.path, "ab") as handle:
        handle.write(b'{"seq": 6, "half a li')
    with pytest.raises(AuditError, match="damaged"):
        trail.record("show", user="x")
    assert trail.verify().line == 6


def _append_many(path: str, worker: int, count: int) -> None:
    log = AuditLog(Path(path))
    for n in range(count):
        log.record("search", user=f"worker{worker}", details={"n": n})


def test_concurrent_writers_keep_one_unbroken_chain(tmp_path: Path):
    path = tmp_path / "audit.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_append_many, args=(str(path), w, 40)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    check = AuditLog(path).verify()
    assert check.ok and check.entries == 160


def test_filters_pick_entries_by_patient_user_action_and_day(trail: AuditLog):
    trail.record("export", user="hm", mrns=[OTHER_MRN])
    assert len(list(trail.entries(AuditFilters(mrn=MRN)))) == 5
    assert [e["user"] for e in trail.entries(AuditFilters(user="clerk3"))] == ["clerk3"]
    assert [e["action"] for e in trail.entries(AuditFilters(action="export"))] == ["export"]
    today = next(iter(trail.entries()))["at"][:10]
    assert len(list(trail.entries(AuditFilters(date_from=today, date_to=today)))) == 6
    assert not list(trail.entries(AuditFilters(date_to="2000-01-01")))


def test_the_destruction_log_chains_the_same_way(tmp_path: Path):
    ledger = ChainedLog(tmp_path / "destruction.jsonl")
    ledger.append({"doc_id": "x"})
    ledger.append({"doc_id": "y"})
    assert ledger.verify().ok
    _rewrite(ledger.path, lambda lines: [lines[0].replace('"x"', '"z"'), lines[1]])
    assert ledger.verify().line == 1


# -- the commands --------------------------------------------------------------


def test_each_records_command_is_audited(tmp_path: Path):
    config = make_config(tmp_path, retention={"default_years": 1})
    doc = add_document(config, 1, doc_date="1990-01-01", dob="1950-01-01")
    index_archive(config)
    assert invoke(config, "verify").exit_code == 0
    assert (
        invoke(
            config,
            "export",
            "--mrn",
            MRN,
            "--out",
            str(tmp_path / "out"),
            "--requester",
            "Dr Ames, St Elsewhere",
            "--purpose",
            "continuity of care",
        ).exit_code
        == 0
    )
    assert invoke(config, "disclosures", "--mrn", MRN).exit_code == 0
    assert invoke(config, "retention", "report").exit_code == 0
    assert invoke(config, "retention", "purge", "--confirm", user="records.manager").exit_code == 0
    assert invoke(config, "audit", "--mrn", MRN).exit_code == 0
    actions = [e["action"] for e in audit_entries(config)]
    assert actions == ["verify", "export", "disclosures", "retention.report", "retention.purge", "audit"]
    for entry in audit_entries(config, action="export") + audit_entries(config, action="retention.purge"):
        assert entry["doc_ids"] == [doc.doc_id] and entry["mrns"] == [MRN]
    assert audit_entries(config, action="retention.purge")[0]["user"] == "records.manager"
    assert audit_entries(config, action="export")[0]["reason"] == "continuity of care"


def test_audit_lists_who_looked_at_a_patient(tmp_path: Path):
    config = make_config(tmp_path)
    log = AuditLog.for_config(config)
    log.record("show", user="nurse.kim", doc_ids=["a" * 16 + "-1"], mrns=[MRN], reason="treatment")
    log.record("show", user="clerk.bo", doc_ids=["b" * 16 + "-1"], mrns=[OTHER_MRN])
    result = invoke(config, "audit", "--mrn", MRN, "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["user"], r["action"], r["reason"]) for r in rows] == [("nurse.kim", "show", "treatment")]
    text = invoke(config, "audit", "--user", "clerk.bo").stdout
    assert "clerk.bo" in text and OTHER_MRN in text and "nurse.kim" not in text
    assert invoke(config, "audit", "--from", "not-a-date").exit_code == 2


def test_audit_verify_reports_the_first_broken_entry(tmp_path: Path):
    config = make_config(tmp_path)
    log = AuditLog.for_config(config)
    for n in range(3):
        log.record("show", user="u", mrns=[MRN], details={"n": n})
    result = invoke(config, "audit", "verify")
    assert result.exit_code == 0 and "audit log: 3 entries, chain intact" in result.stdout
    _rewrite(log.path, lambda lines: lines[:1] + lines[2:])
    result = invoke(config, "audit", "verify")
    assert result.exit_code == 3 and "audit log: BROKEN at line 2" in result.stdout


def test_the_real_command_line_takes_the_acting_user_from_the_root_group(tmp_path: Path):
    config = make_config(tmp_path)
    add_document(config, 1)
    index_archive(config)
    done = run_main(config.path, "verify")
    assert done.returncode == 0, done.stderr
    assert audit_entries(config)[-1]["user"] == os_user()


def test_nothing_is_shown_when_the_trail_cannot_be_written(tmp_path: Path):
    config = make_config(tmp_path)
    add_document(config, 1, doc_date="1990-01-01")
    index_archive(config)
    AuditLog.for_config(config).record("show", user="u", mrns=[MRN])
    with open(AuditLog.for_config(config).path, "ab") as handle:
        handle.write(b"{torn")
    for args in (("audit", "--mrn", MRN), ("disclosures", "--mrn", MRN), ("verify",), ("retention", "report")):
        result = invoke(config, *args)
        assert result.exit_code == 1 and isinstance(result.exception, AuditError) and result.stdout == "", args
