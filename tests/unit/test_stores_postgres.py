"""The store layer on PostgreSQL: the same portable SQL, a schema per store, `db upgrade` and the version guard."""

from __future__ import annotations

import pytest

from pipeline.core.config import load_config
from pipeline.stores import Migration, Schema, StoreError, open_store
from pipeline.stores.admin import upgrade_all
from tests.conftest import invoke_cli, write_config

SCHEMA = Schema(
    "things",
    (
        Migration(1, "CREATE TABLE things (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, score REAL);"),
        Migration(2, "ALTER TABLE things ADD COLUMN note TEXT;\nCREATE INDEX things_by_note ON things (note);"),
    ),
)


@pytest.fixture
def config(tmp_path, pg_url):
    return load_config(write_config(tmp_path, database={"url": pg_url}))


def test_a_store_refuses_until_upgraded_then_runs_the_portable_sql(config):
    with pytest.raises(StoreError, match="run `medarchive db upgrade`"):
        open_store(config, SCHEMA)
    assert [(v.store, v.database, v.code) for v in upgrade_all(config, [SCHEMA])] == [("things", 0, 2)]
    assert [(v.database, v.code) for v in upgrade_all(config, [SCHEMA])] == [(2, 2)]  # repeating is harmless
    db = open_store(config, SCHEMA)
    assert db.dialect == "postgres"
    with db.transaction() as tx:
        (row,) = tx.execute("INSERT INTO things (name, note, score) VALUES (?, ?, ?) RETURNING id", ("a", "n", 0.5))
        assert row["id"] == 1 and row[0] == 1
        tx.execute("INSERT INTO things (name) VALUES (?) ON CONFLICT (name) DO NOTHING", ("a",))
        assert tx.rowcount() == 0
        tx.lock("things")
    rows = db.query("SELECT name, note, score FROM things WHERE name IN (?, ?)", ("a", "b"))
    assert [dict(r) for r in rows] == [{"name": "a", "note": "n", "score": 0.5}]
    ((name, note, _),) = rows  # a row iterates its values, as sqlite3.Row does
    assert (name, note) == ("a", "n")


def test_a_failed_transaction_leaves_nothing_and_each_store_has_its_schema(config):
    upgrade_all(config, [SCHEMA, Schema("others", SCHEMA.migrations[:1])])
    db, others = open_store(config, SCHEMA), open_store(config, Schema("others", SCHEMA.migrations[:1]))
    with pytest.raises(RuntimeError), db.transaction() as tx:
        tx.execute("INSERT INTO things (name) VALUES (?)", ("b",))
        raise RuntimeError("stop")
    with others.transaction() as tx:
        tx.execute("INSERT INTO things (name) VALUES (?)", ("c",))
    assert db.query("SELECT count(*) AS n FROM things")[0]["n"] == 0
    assert others.query("SELECT name FROM things")[0]["name"] == "c"


def test_older_and_newer_schemas_are_refused_with_what_to_do(config):
    upgrade_all(config, [Schema("things", SCHEMA.migrations[:1])])
    with pytest.raises(StoreError, match="at schema 1, this medarchive needs 2; run `medarchive db upgrade`"):
        open_store(config, SCHEMA)
    upgrade_all(config, [SCHEMA])
    with pytest.raises(StoreError, match="newer than this medarchive knows"):
        open_store(config, Schema("things", SCHEMA.migrations[:1]))


def test_db_upgrade_and_status_commands(tmp_path, pg_url):
    path = write_config(tmp_path, database={"url": pg_url})
    before = invoke_cli(path, "db", "status")
    assert before.returncode == 3 and "patients" in before.stdout and "missing" in before.stdout
    assert invoke_cli(path, "patients", "list").returncode == 1
    assert "medarchive db upgrade" in invoke_cli(path, "patients", "list").stderr
    upgraded = invoke_cli(path, "db", "upgrade", check=True)
    assert "patients" in upgraded.stdout and "created" in upgraded.stdout
    after = invoke_cli(path, "db", "status", check=True)
    assert "missing" not in after.stdout and "current" in after.stdout


def test_db_commands_need_a_database(tmp_path):
    done = invoke_cli(write_config(tmp_path), "db", "upgrade")
    assert done.returncode == 1 and "database.url is not set" in done.stderr


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql://me:secret@db.example/archive", "must not hold the password"),
        ("mysql://me@db.example/archive", "postgresql://"),
    ],
)
def test_the_url_is_checked_and_never_holds_the_password(tmp_path, url, message):
    done = invoke_cli(write_config(tmp_path, database={"url": url}), "status")
    assert done.returncode == 1 and message in done.stderr and "secret" not in done.stderr
