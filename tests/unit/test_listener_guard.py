"""The listener's admission rules and settings, the bounded parse, and control characters in output."""

from __future__ import annotations

import logging

import pytest

from pipeline.core.config import load_config
from pipeline.core.errors import ConfigError
from pipeline.core.printable import PrintableFormatter, printable, printable_json
from pipeline.ehr import adt
from pipeline.ehr.listener_guard import CauseLog, Gate, ListenerError, check_transport
from pipeline.ehr.listener_settings import HL7ListenerSettings
from tests.conftest import write_config


def test_the_gate_applies_the_allow_list_and_both_caps():
    gate = Gate(
        HL7ListenerSettings(allowed_sources=["10.1.2.0/24", "::1"], max_connections=3, max_connections_per_source=2)
    )
    assert "allowed_sources" in gate.admit("127.0.0.1")
    assert gate.admit("10.1.2.7") is None and gate.admit("::ffff:10.1.2.7") is None  # IPv4 seen through IPv6
    assert "max_connections_per_source (2)" in gate.admit("10.1.2.7")
    assert gate.admit("::1") is None
    assert "max_connections (3)" in gate.admit("10.1.2.8")
    gate.release("10.1.2.7")
    assert gate.admit("10.1.2.8") is None and gate.open == 3


@pytest.mark.parametrize(
    ("host", "tls", "plaintext", "refused", "transport"),
    [
        ("127.0.0.1", False, False, False, "plain TCP on loopback"),
        ("::1", False, False, False, "plain TCP on loopback"),
        ("0.0.0.0", False, False, True, "refused: plain TCP off loopback"),
        ("regsys-link.hosp.example", False, False, True, "refused: plain TCP off loopback"),
        ("10.0.0.5", False, True, False, "plain TCP (hl7_listener.allow_plaintext)"),
        ("0.0.0.0", True, False, False, "TLS with client certificates"),
    ],
)
def test_plain_tcp_only_on_loopback_unless_allowed(host, tls, plaintext, refused, transport):
    settings = HL7ListenerSettings(
        host=host,
        allow_plaintext=plaintext,
        tls={"cert": "c.pem", "key": "k.pem", "client_ca": "ca.pem"} if tls else None,
    )
    assert settings.transport() == transport
    if refused:
        with pytest.raises(ListenerError, match="allow_plaintext"):
            check_transport(settings)
    else:
        check_transport(settings)


def test_a_bad_source_network_names_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"hl7_listener\.allowed_sources.*'10\.1\.2\.0/33' is not an IP address"):
        load_config(write_config(tmp_path, hl7_listener={"allowed_sources": ["10.1.2.0/33"]}))


def test_only_the_segments_read_are_parsed_and_they_are_capped():
    header = "MSH|^~\\&|R|H|M|H|2024||ADT^A08^ADT_A01|C1|P|2.5\rEVN|A08\rPID|1||1001^^^H^MR||DOE^J||19800102\r"
    text = header + "OBX|1|TX|||" + "x" * 500_000 + "\r"
    assert adt.readable_part(text) == header.rstrip("\r")  # the large OBX is never looked at
    with pytest.raises(adt.AdtError, match="larger than 16 KB"):
        adt.parse(header + "PID|1||" + "1^" * 9000 + "\r")


def test_cause_log_says_each_cause_once_then_counts(caplog):
    causes = CauseLog(logging.getLogger("medarchive.test"), interval=3600)
    with caplog.at_level(logging.INFO, logger="medarchive.test"):
        for _ in range(500):
            causes.note("connection over hl7_listener.max_connections (32)")
        causes.note("TLS handshake refused (NO_CERTIFICATE)")
        causes.flush()  # not yet due
        causes.flush(force=True)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3 and lines[-1].endswith("max_connections (32): 499 more")


def test_control_characters_are_escaped_in_text_json_and_log_lines():
    hostile = "DOE\x1b[2J\r\nFAKE LOG LINE\x9b31m\u202eevil\x7f"
    assert printable(hostile) == "DOE\\x1b[2J\\x0d\\x0aFAKE LOG LINE\\x9b31m\\u202eevil\\x7f"
    assert printable_json('{"n": "\x9b\u2028"}') == '{"n": "\\u009b\\u2028"}'
    record = logging.LogRecord("medarchive", logging.WARNING, __file__, 1, "name %s", (hostile,), None)
    line = PrintableFormatter("%(levelname)s %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line and line.startswith("WARNING name DOE\\x1b")
