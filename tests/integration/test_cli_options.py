"""Options every command shares: dates checked the same way everywhere, --json one way."""

from __future__ import annotations

import pytest

from tests.conftest import invoke_cli


@pytest.mark.parametrize(
    "command",
    [["search", "x"], ["export", "--mrn", "1234567", "--out", "o", "--requester", "r", "--purpose", "p"], ["audit"]],
)
def test_a_date_that_is_not_one_is_refused_before_anything_runs(config_path, command):
    done = invoke_cli(config_path, *command, "--from", "2024-02-30")
    assert done.returncode == 1
    assert "'2024-02-30' is not a date; write it as YYYY-MM-DD" in done.stderr and "Traceback" not in done.stderr


def test_search_dates_are_read_as_dates(config_path):
    done = invoke_cli(config_path, "search", "", "--from", "2024-01-01", "--to", "2024-12-31", "--json")
    assert done.returncode == 0 and done.stdout == ""
