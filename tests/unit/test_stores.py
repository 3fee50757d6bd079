"""The store layer's SQLite backend: migrations in order, the version guard, transactions."""

from __future__ import annotations

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
