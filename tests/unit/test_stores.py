"""The store layer's SQLite backend: migrations in order, the version guard, transactions."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.core.config import load_config
from pipeline.stores import Migration, Schema, StoreError, open_store

SCHEMA = Schema(
    "things",
    (
        Migration(1, "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"),
        Migration(2, "ALTER TABLE things ADD COLUMN note TEXT;\nCREATE INDEX things_by_note ON things (note);"),
    ),
)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("data_root: data\n")
    return load_config(path)


def test_migrates_in_order_and_reads_by_name(config):
    db = open_store(config, SCHEMA)
    with db.transaction() as tx:
        (row,) = tx.execute("INSERT INTO things (name, note) VALUES (?, ?) RETURNING id", ("a", "n"))
        assert row["id"] == 1
        tx.execute("INSERT INTO things (name) VALUES (?) ON CONFLICT (name) DO NOTHING", ("a",))
        assert tx.rowcount() == 0
    assert [dict(r) for r in db.query("SELECT name, note FROM things")] == [{"name": "a", "note": "n"}]
    db.close()
    assert (config.root / "things.sqlite").stat().st_mode & 0o077 == 0


def test_a_failed_transaction_leaves_nothing(config):
    db = open_store(config, SCHEMA)
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO things (name) VALUES (?)", ("b",))
        raise RuntimeError("stop")
    assert db.query("SELECT count(*) AS n FROM things")[0]["n"] == 0


def test_refuses_a_newer_schema(config):
    open_store(config, SCHEMA).close()
    older = Schema("things", SCHEMA.migrations[:1])
    with pytest.raises(StoreError, match="newer medarchive"):
        open_store(config, older)


def test_files_written_before_the_store_layer_open_without_loss(config):
    """The stores' SQLite schemas became their migration 1: an old data root opens as it was."""
    import sqlite3

    from pipeline.ehr.outbox import Outbox
    from pipeline.runs.journal import Journal
    from web.users import UserStore

    config.root.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(config.root / "outbox.sqlite") as old:  # no version, as the outbox never set one
        old.executescript(
            "CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, destination TEXT NOT NULL, "
            "doc_id TEXT NOT NULL, action TEXT NOT NULL, version INTEGER NOT NULL, mrn TEXT NOT NULL, "
            "payload TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'pending', attempts INTEGER NOT NULL DEFAULT 0, "
            "last_error TEXT, next_at REAL NOT NULL DEFAULT 0, created_at TEXT NOT NULL, sent_at TEXT, "
            "receiver_id TEXT, UNIQUE (destination, doc_id, action, version));"
            "INSERT INTO messages (destination, doc_id, action, version, mrn, payload, created_at) "
            "VALUES ('ehr', '00000000000000aa-1', 'create', 1, '1000001', '{}', '2024-01-01T00:00:00Z');"
        )
    (config.root / "backlog").mkdir()
    with sqlite3.connect(config.root / "backlog" / "journal.sqlite") as old:  # from before crashes were counted
        old.executescript(
            "CREATE TABLE runs (run_id TEXT PRIMARY KEY, root TEXT NOT NULL, started_at TEXT NOT NULL, finished_at TEXT);"
            "CREATE TABLE sessions (run_id TEXT NOT NULL, started REAL NOT NULL, ended REAL);"
            "CREATE TABLE inputs (run_id TEXT NOT NULL, name TEXT NOT NULL, state TEXT NOT NULL, status TEXT, "
            "planned TEXT, doc_ids TEXT, path TEXT, reason TEXT, pages INTEGER NOT NULL DEFAULT 0, "
            "ocr_seconds REAL NOT NULL DEFAULT 0, PRIMARY KEY (run_id, name)) WITHOUT ROWID;"
            "INSERT INTO runs VALUES ('20240101-000000', '/charts', '2024-01-01T00:00:00Z', NULL);"
            "INSERT INTO inputs (run_id, name, state) VALUES ('20240101-000000', 'a.pdf', 'started');"
        )
    (config.root / "web").mkdir()
    with sqlite3.connect(config.root / "web" / "users.sqlite") as old:  # the first users table, alone
        old.executescript(
            "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL, "
            "enabled INTEGER NOT NULL DEFAULT 1, created TEXT NOT NULL, updated TEXT NOT NULL);"
            "INSERT INTO users VALUES ('ada', 'admin', 'x', 1, '2024-01-01', '2024-01-01');"
        )
    with Outbox.for_config(config) as outbox:
        assert [m.doc_id for m in outbox.messages()] == ["00000000000000aa-1"]
    journal = Journal.for_config(config)
    journal.count_crashes("20240101-000000")
    assert journal.crashed("20240101-000000", 1) == ["a.pdf"]
    assert journal.unfinished_run(Path("/charts")).run_id == "20240101-000000"
    assert [(u.name, u.version) for u in UserStore.for_config(config).all()] == [("ada", 0)]
