"""`medarchive db import`: an embedded deployment moved into PostgreSQL, verified, resumable."""

from __future__ import annotations

import psycopg
import pytest

from pipeline.archive.audit import AuditLog
from pipeline.core.config import load_config
from pipeline.ehr.outbox import NewMessage, Outbox
from pipeline.identify.patients import PatientIndex
from pipeline.identify.roster import RosterPatient
from pipeline.runs.journal import Journal, Result
from tests.conftest import invoke_cli, write_config
from web.users import UserStore

ROSTER = [RosterPatient(f"1000000{i}", "DOE", f"ANN{i}", "1980-01-02") for i in range(1, 6)]


@pytest.fixture
def embedded(tmp_path):
    """An embedded deployment with something in every store."""
    folder = tmp_path / "site"
    folder.mkdir()
    config = load_config(write_config(folder))
    invoke_cli(config.path, "status", check=True)  # the data root, as any command makes it
    patients = PatientIndex.for_config(config)
    patients.import_roster(ROSTER)
    patients.record_merge("10000002", "10000001", survivor_patient=None, control_id="C1", requested_by="hl7:REG")
    patients.close()
    with Outbox.for_config(config) as outbox, outbox.transaction() as tx:
        outbox.add(tx, [NewMessage("ehr", f"{i:016x}-1", "create", 1, "10000001", {"n": i}) for i in range(3)])
    journal = Journal.for_config(config)
    run = journal.new_run(tmp_path)
    session = journal.begin_session(run.run_id)
    journal.started(run.run_id, "a.pdf")
    journal.done(run.run_id, "a.pdf", Result("filed", ["0123456789abcdef-1"], "archive/x", None, 2, 1.5))
    journal.end_session(session)
    journal.close()
    UserStore.for_config(config).add("kim", "admin", "a-long-password")
    audit = AuditLog.for_config(config)
    for n in range(7):
        audit.record("search", user="kim", details={"n": n})
    return config


def _shared(embedded, pg_url):
    path = write_config(embedded.path.parent, database={"url": pg_url}, site="north")
    invoke_cli(path, "db", "upgrade", check=True)
    return path


def test_every_store_moves_over_and_the_chain_verifies_in_the_database(embedded, pg_url):
    file_head = AuditLog.for_config(embedded).verify().head
    shared = _shared(embedded, pg_url)
    done = invoke_cli(shared, "db", "import", check=True)
    assert "chain intact" in done.stderr and "audit 7 entries" in done.stdout
    assert "index rebuilt: 0 document(s)" in done.stdout
    config = load_config(shared)

    patients = PatientIndex.for_config(config)
    assert patients.count() == 4 and patients.survivor_of("10000002") == "10000001"
    assert [m.prior for m in patients.open_merges()] == ["10000002"]
    with Outbox.for_config(config) as outbox:
        assert outbox.counts() == {"ehr": {"pending": 3, "sent": 0, "dead": 0}}
        with outbox.transaction() as tx:  # ids go on after the imported ones
            outbox.add(tx, [NewMessage("ehr", "ffffffffffffffff-1", "create", 1, "10000001")])
        assert max(m.id for m in outbox.messages()) == 4
    journal = Journal.for_config(config)
    (run,) = journal.runs()
    assert journal.counts(run.run_id)["filed"] == 1 and journal.pages_done(run.run_id) == (2, 1.5)
    assert journal.wall_seconds(run.run_id) >= 0
    assert UserStore.for_config(config).authenticate("kim", "a-long-password").role == "admin"

    audit = AuditLog.for_config(config)
    check = audit.verify()
    # the file's chain, entry for entry, then the import's own entry after it
    assert check.ok and check.entries == 8
    assert [e["seq"] for e in audit.entries()][:7] == list(range(1, 8))
    assert list(audit.entries())[6]["hash"] == file_head
    assert [e["action"] for e in audit.entries()][-1] == "db.import"
    verified = invoke_cli(shared, "audit", "verify", check=True)
    assert "chain intact" in verified.stdout


def test_running_it_again_adds_nothing_and_a_stopped_import_finishes(embedded, pg_url):
    shared = _shared(embedded, pg_url)
    invoke_cli(shared, "db", "import", "--skip-index", check=True)
    # As if it had stopped part way: some rows and the end of the chain never arrived.
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DELETE FROM patients.patients WHERE mrn > '10000003'")
        conn.execute("DELETE FROM audit.entries WHERE chain = 'audit' AND seq > 4")
        conn.execute(
            "UPDATE audit.heads SET seq = 4, hash = (SELECT entry::json->>'hash' FROM audit.entries "
            "WHERE chain = 'audit' AND seq = 4) WHERE chain = 'audit'"
        )
    again = invoke_cli(shared, "db", "import", "--skip-index", check=True)
    assert "patients.patients: 5/5" in again.stderr
    config = load_config(shared)
    assert len(PatientIndex.for_config(config).patients()) == 5
    assert AuditLog.for_config(config).verify().ok
    assert "imported 2 row(s)" in again.stdout
    third = invoke_cli(shared, "db", "import", "--skip-index", check=True)
    assert "imported 0 row(s)" in third.stdout and "already in the database" in third.stderr


def test_a_broken_file_chain_or_a_foreign_database_chain_is_refused(embedded, pg_url):
    shared = _shared(embedded, pg_url)
    log = embedded.root / "audit" / "audit.jsonl"
    lines = log.read_text().splitlines(keepends=True)
    log.write_text("".join([*lines[:2], lines[2].replace('"n":2', '"n":9'), *lines[3:]]))
    refused = invoke_cli(shared, "db", "import")
    assert refused.returncode == 1 and "is broken at entry 3" in refused.stderr
    log.write_text("".join(lines))
    AuditLog.for_config(load_config(shared)).record("search", user="someone-else")  # the database's own chain
    foreign = invoke_cli(shared, "db", "import")
    assert foreign.returncode == 1 and "import into an empty database" in foreign.stderr
