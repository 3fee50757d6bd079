"""What a clinic wants, applied to what is on file (pipeline/clinic/rules.pick): pure."""

from __future__ import annotations

from datetime import date

import pytest

from pipeline.clinic.rules import OnFile, pick, rules_for
from pipeline.core.config import ChartPrepSettings, PacketRule

VISIT = date(2026, 12, 9)


def doc(doc_id: str, doc_type: str, doc_date: str | None) -> OnFile:
    return OnFile(doc_id, doc_type, doc_date, 1, f"archive/1/{doc_id}.pdf", doc_id * 4)


ON_FILE = [
    doc("ds-old", "discharge_summary", "2025-01-10"),
    doc("ds-new", "discharge_summary", "2026-06-01"),
    doc("lab-1", "lab_result", "2026-11-30"),
    doc("lab-2", "lab_result", "2026-10-01"),
    doc("lab-3", "lab_result", "2026-08-01"),  # 130 days before the visit
    doc("lab-after", "lab_result", "2026-12-20"),  # after the visit: not part of its chart
    doc("consent-a", "consent_form", None),
    doc("consent-b", "consent_form", "2020-02-02"),
    doc("rad-1", "radiology_report", "2026-01-05"),
    doc("rad-2", "radiology_report", "2025-12-20"),
    doc("rad-3", "radiology_report", "2025-11-01"),
]


def ids(picks):
    return [[d.doc_id for d in p.documents] for p in picks]


def test_each_rule_picks_newest_first_within_its_window():
    rules = [
        PacketRule(type="discharge_summary"),
        PacketRule(type="lab_result", select="all", within_days=90),
        PacketRule(type="consent_form", select="all"),
        PacketRule(type="radiology_report", count=2, within_days=365),
    ]
    picks = pick(rules, ON_FILE, VISIT)
    assert ids(picks) == [["ds-new"], ["lab-1", "lab-2"], ["consent-b", "consent-a"], ["rad-1", "rad-2"]]
    assert [p.missing for p in picks] == [None, None, None, None]


def test_what_is_not_on_file_is_named():
    rules = [
        PacketRule(type="operative_report"),
        PacketRule(type="lab_result", select="all", within_days=7),
    ]
    picks = pick(rules, ON_FILE, VISIT)
    assert ids(picks) == [[], []]
    assert [p.missing for p in picks] == [
        "no operative report on file",
        "no lab result in the 7 days before the visit",
    ]


def test_a_document_is_not_repeated_by_a_later_rule():
    rules = [PacketRule(type="lab_result"), PacketRule(type="lab_result", select="all", within_days=365)]
    assert ids(pick(rules, ON_FILE, VISIT)) == [["lab-1"], ["lab-2", "lab-3"]]


def test_an_unknown_clinic_gets_the_default_rules():
    settings = ChartPrepSettings(
        packets={
            "default": [PacketRule(type="discharge_summary")],
            "Cardiology Clinic": [PacketRule(type="lab_result")],
        }
    )
    assert rules_for(settings, "cardiologyclinic")[0].type == "lab_result"
    assert rules_for(settings, "Dermatology")[0].type == "discharge_summary"


def test_rules_name_known_types_and_a_default(tmp_path):
    from pipeline.core.config import load_config
    from pipeline.core.errors import ConfigError

    path = tmp_path / "config.yaml"
    path.write_text("chart_prep:\n  packets:\n    default:\n    - type: discharge_sumary\n")
    with pytest.raises(ConfigError, match=r"chart_prep.packets.default\[0\].type: unknown document type"):
        load_config(path)
    path.write_text("chart_prep:\n  packets:\n    cardio:\n    - type: lab_result\n")
    with pytest.raises(ConfigError, match="default"):
        load_config(path)
