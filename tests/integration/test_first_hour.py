"""What a new site's IT person and a new clerk meet in their first hour: config
mistakes named, commands that work from anywhere, listings with counts, messages
that say what to do, and a web server that explains its cookies and stops on Ctrl-C."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline.cli.records import _brief
from pipeline.core.config import load_config
from pipeline.runs.run import InputFile, Outcome, _timings
from tests.conftest import ROOT, born_digital, document, free_port, invoke_cli, json_lines, write_config
from web.app import create_app


def _medarchive(
    cwd: Path, *args: str, env: dict[str, str] | None = None, **popen: object
) -> subprocess.CompletedProcess[str]:
    """The real process, where the process is the point (its cwd, environment, terminal)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
        **popen,  # type: ignore[call-overload]
    )


# -- the config --------------------------------------------------------------


def test_an_empty_config_is_refused_by_every_command_and_creates_nothing(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("# copied in a hurry\n")
    for args in (("status",), ("list",), ("search", "x")):
        done = invoke_cli(config, *args)
        assert done.returncode == 1
        assert "is empty; start from the project's config.yaml" in done.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["config.yaml"]


def test_a_misspelt_key_is_refused_by_name(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("data_root: data\nocr:\n  wrokers: 2\n")
    done = invoke_cli(config, "status")
    assert done.returncode == 1
    assert "ocr.wrokers: unknown setting" in done.stderr
    assert not (tmp_path / "data").exists()


def test_medarchive_config_names_the_config_for_commands_run_elsewhere(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = _medarchive(elsewhere, "list", env={"MEDARCHIVE_CONFIG": str(config)})
    assert done.returncode == 0, done.stderr
    assert "0 document(s)" in done.stderr
    assert load_config(config).root.is_dir()
    assert not (elsewhere / "data").exists()

    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    for where in (("--config", str(config), "list"), ("list", "--config", str(config))):
        done = _medarchive(elsewhere, *where, env={"MEDARCHIVE_CONFIG": str(empty)})
        assert done.returncode == 0, done.stderr  # --config wins over the variable
    done = _medarchive(elsewhere, "list", env={"MEDARCHIVE_CONFIG": str(empty)})
    assert done.returncode == 1
    assert "empty.yaml is empty" in done.stderr


# -- types and listings --------------------------------------------------------


def test_an_unknown_type_is_refused_with_the_known_ones(config_path: Path) -> None:
    for args in (("search", "x", "--type", "discharge"), ("list", "--type", "discharge")):
        done = invoke_cli(config_path, *args)
        assert done.returncode == 1
        assert "unknown document type 'discharge'" in done.stderr
        assert "discharge_summary" in done.stderr
        assert "unclassified" in done.stderr
    assert invoke_cli(config_path, "list", "--type", "discharge_summary").returncode == 0
    assert invoke_cli(config_path, "list", "--type", "unclassified").returncode == 0


def test_types_lists_the_types_with_their_titles_and_synonyms(config_path: Path) -> None:
    done = invoke_cli(config_path, "types", check=True)
    assert "discharge_summary    Discharge Summary; Hospital Discharge Summary" in done.stdout
    assert "also found by: discharge, dc summary, discharge note" in done.stdout
    assert "17 document type(s)" in done.stderr
    rows = json_lines(invoke_cli(config_path, "types", "--json", check=True).stdout)
    assert len(rows) == 17
    [consent] = [row for row in rows if row["type"] == "consent_form"]
    assert consent["titles"][0] == "Consent for Treatment"
    assert consent["synonyms"] == ["consent", "informed consent"]


def test_every_listing_ends_with_its_count(config_path: Path) -> None:
    assert invoke_cli(config_path, "list", check=True).stderr.endswith("0 document(s)\n")
    assert invoke_cli(config_path, "list", "--failed", check=True).stderr.endswith("0 failed input(s)\n")
    assert invoke_cli(config_path, "review", "list", check=True).stderr.endswith("0 document(s) waiting\n")
    assert invoke_cli(config_path, "search", "x", check=True).stderr.endswith("0 result(s)\n")
    assert invoke_cli(config_path, "user", "list", check=True).stderr.endswith("0 user(s)\n")
    assert invoke_cli(config_path, "backlog", "--runs", check=True).stderr.endswith("0 run(s)\n")
    assert invoke_cli(config_path, "list", "--json", check=True).stderr == ""  # JSON output stays clean


def test_a_failure_reason_says_what_the_file_is_in_words(config_path: Path, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "letter.pdf").write_text("This is a letter, not a scan.\n")
    (inbox / "photo.pdf").write_bytes(b"\xff\xd8\xff\xe0" + bytes(200))
    assert invoke_cli(config_path, "ingest", str(inbox)).returncode == 2
    listed = invoke_cli(config_path, "list", "--failed", check=True)
    assert 'letter.pdf: not a PDF (it starts with the text "This is ")' in listed.stdout
    assert "photo.pdf: not a PDF (it is a JPEG image)" in listed.stdout
    assert "b'" not in listed.stdout
    assert "2 failed input(s)" in listed.stderr


def test_an_unclosed_quote_is_refused_with_what_to_do(config_path: Path) -> None:
    done = invoke_cli(config_path, "search", '"chest pain')
    assert done.returncode == 1
    assert "unclosed double quote" in done.stderr
    assert invoke_cli(config_path, "search", "o'brien").returncode == 0  # an apostrophe is no quote
    assert invoke_cli(config_path, "search", "chest", "pain").returncode == 0  # words given apart


# -- log lines and progress -------------------------------------------------------


def test_log_lines_tell_wall_time_from_worker_time() -> None:
    source = InputFile(Path("scan.pdf"))
    read = Outcome(source, "filed", pages=3, ocr_seconds=3.3, seconds=2.2)
    assert _timings(read) == " (3 pages in 2.2 s; OCR 3.3 s summed over workers)"
    assert _timings(Outcome(source, "filed", pages=1, seconds=0.2)) == " (1 page in 0.2 s, text layer: no OCR)"
    assert _timings(Outcome(source, "duplicate", reason="already archived")) == ""


def test_a_duplicate_is_logged_without_page_or_ocr_figures(
    config_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="medarchive")
    pdf = born_digital(tmp_path / "note.pdf", document(3))
    invoke_cli(config_path, "ingest", str(pdf), check=True)
    invoke_cli(config_path, "ingest", str(pdf), check=True)
    [filed] = [m for m in caplog.messages if m.startswith("filed note.pdf")]
    assert "(1 page in " in filed
    assert "text layer: no OCR" in filed
    [logged] = [m for m in caplog.messages if m.startswith("duplicate note.pdf")]
    assert "page" not in logged
    assert "OCR" not in logged


def test_samples_reports_each_file_as_it_is_written(config_path: Path, tmp_path: Path) -> None:
    done = invoke_cli(config_path, "samples", str(tmp_path / "scans"), "--count", "2", check=True)
    assert "writing 2 sample scan(s)" in done.stderr
    assert "1/2 01-scan.pdf" in done.stderr
    assert "2/2 02-fax.pdf" in done.stderr


def test_audit_details_are_shown_whole_or_shortened_inside_their_quotes() -> None:
    shown = _brief({"filters": {"mrn": "00482913", "user": None, "type": "lab_result"}, "query": "x" * 80, "ids": [1]})
    assert shown == f'  filters.mrn="00482913" filters.type="lab_result" ids=[1] query="{"x" * 59}…"'


# -- users and the web server ------------------------------------------------------


def test_user_add_without_a_terminal_says_to_use_password_stdin(config_path: Path) -> None:
    done = _medarchive(
        ROOT, "--config", str(config_path), "user", "add", "kim", "--role", "clerk", stdin=subprocess.DEVNULL
    )
    assert done.returncode == 1
    assert "--password-stdin" in done.stderr
    assert "GetPassWarning" not in done.stderr
    assert "Traceback" not in done.stderr


def test_a_login_over_plain_http_with_secure_cookies_says_to_use_https(config_path: Path) -> None:
    app = create_app(load_config(config_path))
    app.testing = True
    # As a browser on plain http (or a script) does: the Secure session cookie is not sent back.
    refused = app.test_client().post("/login", data={"name": "kim", "password": "x", "csrf_token": "x"})
    assert refused.status_code == 400
    assert "HTTPS only" in refused.text
    assert "web.secure_cookies: false" in refused.text


def _serve_until_banner(config: Path, host: str, **popen: object) -> tuple[subprocess.Popen[str], list[str]]:
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "--config",
            str(config),
            "serve",
            "--host",
            host,
            "--port",
            str(free_port()),
        ],
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        **popen,  # type: ignore[call-overload]
    )
    assert server.stderr is not None
    lines = [server.stderr.readline()]
    while lines[-1] and "Ctrl-C" not in lines[-1]:
        lines.append(server.stderr.readline())
    lines += [server.stderr.readline() for _ in range(2 if host != "127.0.0.1" else 1)]
    return server, lines


def test_serve_says_logins_need_https_and_warns_beyond_loopback(config_path: Path) -> None:
    server, lines = _serve_until_banner(config_path, "0.0.0.0")
    try:
        assert any("logins need HTTPS" in line and "web.secure_cookies: false" in line for line in lines), lines
        assert any(line.startswith("warning: listening on 0.0.0.0 over plain http") for line in lines), lines
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_started_in_the_background_by_a_script_stops_on_sigint(config_path: Path) -> None:
    # A non-interactive shell starts a background job with SIGINT ignored.
    server, lines = _serve_until_banner(
        config_path, "127.0.0.1", preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)
    )
    assert not any(line.startswith("warning:") for line in lines), lines
    server.send_signal(signal.SIGINT)
    try:
        assert server.wait(timeout=30) == 0
    finally:
        if server.poll() is None:
            server.kill()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1"])
def test_loopback_addresses_get_no_warning(host: str) -> None:
    from pipeline.cli.web import _loopback

    assert _loopback(host)
    assert not _loopback("0.0.0.0")
    assert not _loopback("10.1.2.3")
