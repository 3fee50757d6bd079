"""File security: private files and folders whatever the umask, refused shared data roots, clean logs."""

from __future__ import annotations

import logging
import os
import stat
from datetime import date
from pathlib import Path

import pytest

from pipeline.archive.audit import AuditLog
from pipeline.archive.index import open_index
from pipeline.core.errors import ConfigError
from pipeline.records.release import ReleaseRequest, export
from pipeline.records.retention import purge
from tests.conftest import write_config

from .test_audit import (  # noqa: F401
    MRN,
    NAME,
    SECRET_TEXT,
    add_document,
    index_archive,
    invoke,
    make_config,
    private_umask,
    run_main,
)

FAR_AHEAD = date(2100, 1, 1)


def _modes(top: Path) -> dict[str, int]:
    found = {str(top): stat.S_IMODE(top.stat().st_mode)}
    for folder, dirs, files in os.walk(top):
        for name in dirs + files:
            path = Path(folder) / name
            found[str(path)] = stat.S_IMODE(path.lstat().st_mode)
    return found


def test_everything_written_is_private_even_under_a_lax_umask(tmp_path: Path):
    config = make_config(tmp_path, retention={"default_years": 1})
    add_document(config, 1, doc_date="1990-01-01")
    add_document(config, 2, doc_date="1991-01-01")
    index_archive(config)
    os.umask(0o022)  # what a library caller may run under; private_umask restores it
    trail = AuditLog.for_config(config)
    export(config, ReleaseRequest(MRN, "r", "p"), tmp_path / "out", user="u", audit=trail)
    export(config, ReleaseRequest(MRN, "r", "p"), tmp_path / "zipped", user="u", audit=trail, as_zip=True)
    purge(config, open_index(config), user="u", audit=trail, today=FAR_AHEAD)
    for top in (config.root / "audit", tmp_path / "out", tmp_path / "zipped"):
        for path, mode in _modes(top).items():
            assert mode == (0o700 if Path(path).is_dir() else 0o600), path
    assert {Path(p).name for p in _modes(config.root / "audit")} >= {
        "audit.jsonl",
        "audit.head.json",
        "destruction.jsonl",
        "destruction.head.json",
    }


def test_a_world_writable_data_root_is_refused(tmp_path: Path):
    config_path = write_config(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data").chmod(0o777)
    done = run_main(config_path, "verify")
    assert done.returncode == 1 and done.stderr.startswith("error:") and "can be written by other users" in done.stderr


@pytest.mark.parametrize("mode", [0o770, 0o702])
def test_a_data_root_group_or_others_can_write_is_refused(tmp_path: Path, mode: int):
    config = make_config(tmp_path)
    config.root.chmod(mode)
    result = invoke(config, "retention", "report")
    assert result.exit_code == 1 and isinstance(result.exception, ConfigError)


def test_an_index_folder_others_can_write_is_refused(tmp_path: Path):
    config = make_config(tmp_path)
    config.index_dir.chmod(0o777)
    done = run_main(config.path, "audit")
    assert done.returncode == 1 and str(config.index_dir) in done.stderr


def test_verify_reports_loose_permissions_inside_the_data_root(tmp_path: Path):
    config = make_config(tmp_path)
    sidecar = add_document(config, 1)
    index_archive(config)
    (config.root / sidecar.path).chmod(0o644)
    next(p for p in config.index_dir.iterdir() if p.suffix == ".toc").chmod(0o666)
    (config.archive_dir / MRN).chmod(0o750)
    result = invoke(config, "verify")
    assert result.exit_code == 3
    insecure = sorted(line.split()[1] for line in result.stdout.splitlines() if line.startswith("insecure"))
    assert (
        len(insecure) == 3
        and insecure[0] == f"archive/{MRN}"
        and insecure[1] == sidecar.path
        and insecure[2].startswith("index/")
    )


def test_no_patient_names_or_text_in_log_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture):
    config = make_config(tmp_path, retention={"default_years": 1})
    add_document(config, 1, doc_date="1990-01-01")
    index_archive(config)
    caplog.set_level(logging.DEBUG)
    outputs = [
        invoke(config, "verify"),
        invoke(config, "export", "--mrn", MRN, "--out", str(tmp_path / "out"), "--requester", "r", "--purpose", "p"),
        invoke(config, "retention", "report"),
        invoke(config, "retention", "purge", "--confirm"),
        invoke(config, "verify"),
    ]
    assert all(result.exit_code == 0 for result in outputs), [r.exception for r in outputs]
    printed = caplog.text + "".join(r.stdout + r.stderr for r in outputs)
    for secret in (NAME, NAME.split(",")[0], SECRET_TEXT.split()[2], "1970-05-06"):
        assert secret not in printed
    assert MRN in caplog.text
