"""`patients import` stores only MRNs the MRN pattern accepts: an MRN names an archive folder."""

from __future__ import annotations

from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.core.config import load_config
from pipeline.identify.patients import PatientIndex
from tests.conftest import write_config


def test_an_mrn_the_pattern_refuses_stops_the_import_naming_its_line(tmp_path):
    config_path = write_config(tmp_path)
    roster = tmp_path / "roster.csv"
    roster.write_text("mrn,last_name,first_name,dob\n10000001,Doe,John,1980-01-02\n../../etc,Roe,Rita,1970-03-04\n")
    result = CliRunner().invoke(cli, ["--config", str(config_path), "patients", "import", str(roster)])
    refused = str(result.exception)
    assert result.exit_code == 1 and "line 3" in refused and "'../../etc'" in refused and "not an MRN" in refused
    index = PatientIndex.for_config(load_config(config_path))
    try:
        assert index.count() == 0
    finally:
        index.close()
    roster.write_text("mrn,last_name,first_name,dob\n10000001,Doe,John,1980-01-02\n1000-0002,Roe,Rita,1970-03-04\n")
    result = CliRunner().invoke(cli, ["--config", str(config_path), "patients", "import", str(roster)])
    assert result.exit_code == 0 and "2 created" in result.output
