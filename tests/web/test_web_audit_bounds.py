"""The audit log under abuse: huge values are cut and hashed, and lookups that find nothing are recorded too."""

from __future__ import annotations

import hashlib

import pytest

from pipeline.archive.audit import MAX_VALUE_CHARS, AuditFilters, AuditLog
from tests.web.fixtures import Clock, app_for, data_site, filed, logged_in, site_config


@pytest.fixture(scope="module")
def config(tmp_path_factory):
    return site_config(data_site(tmp_path_factory))


@pytest.fixture
def app(config):
    return app_for(config, Clock())


def _last(config, **filters) -> dict:
    return list(AuditLog.for_config(config).entries(AuditFilters(**filters)))[-1]


def test_a_huge_search_value_is_written_cut_with_its_length_and_hash(app, config):
    huge = "7" * 60_000
    trail = AuditLog.for_config(config)
    before = trail.path.stat().st_size
    logged_in(app, "cal").get(f"/?mrn={huge}")
    assert trail.path.stat().st_size - before < 4_000
    entry = _last(config, user="cal", action="search")
    written = repr(entry)
    assert hashlib.sha256(huge.encode()).hexdigest() in written and "60000 characters" in written
    assert trail.verify().ok


def test_values_up_to_the_limit_are_written_whole(tmp_path):
    trail = AuditLog(tmp_path / "audit.jsonl")
    fits, long = "a" * MAX_VALUE_CHARS, "b" * (MAX_VALUE_CHARS + 1)
    entry = trail.record("search", user="cal", mrns=[long], details={"query": fits, long: [long, 3]})
    cut_key = next(key for key in entry["details"] if key != "query")
    assert entry["details"]["query"] == fits and entry["details"][cut_key][1] == 3
    assert all(len(key) < MAX_VALUE_CHARS for key in entry["details"]) and len(entry["mrns"][0]) < MAX_VALUE_CHARS


def test_a_patient_lookup_that_finds_nothing_is_audited(app, config):
    client = logged_in(app, "cal")
    known = {doc["mrn"] for doc in filed(config)}
    unknown = next(f"{n:08d}" for n in range(10_000_000, 99_999_999, 7919) if f"{n:08d}" not in known)
    assert client.get(f"/patient/{unknown}").status_code == 404
    entry = _last(config, user="cal", action="patient")
    assert entry["mrns"] == [unknown] and entry["outcome"] == "not found"
    assert client.get("/patient/not-an-mrn").status_code == 404
    entry = _last(config, user="cal", action="patient")
    assert entry["outcome"] == "not found" and entry["details"]["not an mrn"] == "not-an-mrn"
