"""Requests for information, the pure rules: due dates, extensions, fees, refusals, the report."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from pipeline.archive.sidecar import Sidecar
from pipeline.core.config import DEFAULT_TAXONOMY, Config, FeeRule, RequestRule
from pipeline.identify.classify import classify
from pipeline.requests import checks
from pipeline.requests.duedates import DueDateError, add_days, check_given_due, due_date, extended_due
from pipeline.requests.fees import FeeError, fee_cents
from pipeline.requests.records import Ask, Authorization, Request, Requester
from pipeline.requests.report import build_report, chart_svg
from pipeline.samples import scans
from pipeline.samples.typed_texts import make_texts

FRIDAY = date(2026, 1, 2)
SENSITIVE = {"psychotherapy_note", "hiv_sti_result"}


def _request(**changes) -> Request:
    base = {
        "id": 7,
        "mrn": "00482913",
        "kind": "attorney",
        "requester": Requester("Lee Law", "Lee & Co"),
        "purpose": "litigation",
        "ask": Ask(everything=True),
        "channel": "mail",
        "received": "2026-01-02",
        "due": "2026-02-01",
        "rule": {"needs_authorization": True, "fee": {"method": "none"}},
        "status": "received",
        "created_at": "2026-01-02T10:00:00+00:00",
        "created_by": "clerk",
    }
    return Request(**{**base, **changes})


def _doc(doc_id: str, doc_type: str = "lab_result", mrn: str = "00482913", status: str = "filed") -> Sidecar:
    return Sidecar.from_json(
        {
            "doc_id": doc_id,
            "mrn": mrn,
            "status": status,
            "doc_type": doc_type,
            "sha256": "0" * 64,
            "pages": 1,
            "path": "x",
            "source": {"file": "scan.pdf", "sha256": "1" * 64},
        }
    )


def test_calendar_days_count_weekends():
    assert due_date(FRIDAY, RequestRule(days=30)) == date(2026, 2, 1)


def test_business_days_skip_weekends_and_holidays():
    rule = RequestRule(days=5, business_days=True)
    assert due_date(FRIDAY, rule) == date(2026, 1, 9)  # Mon..Fri of the next week
    assert due_date(FRIDAY, rule, [date(2026, 1, 5)]) == date(2026, 1, 12)
    assert add_days(date(2026, 1, 3), 1, business=True) == date(2026, 1, 5)  # from a Saturday: Monday


def test_the_one_extension_needs_a_reason_and_the_day_the_requester_was_told():
    rule = RequestRule(days=30, extension_days=30)
    due = date(2026, 2, 1)
    today = date(2026, 1, 20)
    assert extended_due(due, rule, already=False, reason="archive off site", told=today, today=today) == date(
        2026, 3, 3
    )
    with pytest.raises(DueDateError, match="reason"):
        extended_due(due, rule, already=False, reason=" ", told=today, today=today)
    with pytest.raises(DueDateError, match="told"):
        extended_due(due, rule, already=False, reason="x", told=None, today=today)
    with pytest.raises(DueDateError, match="already extended once"):
        extended_due(due, rule, already=True, reason="x", told=today, today=today)
    with pytest.raises(DueDateError, match="before the due date passes"):
        extended_due(due, rule, already=False, reason="x", told=today, today=date(2026, 2, 2))
    with pytest.raises(DueDateError, match="allows no extension"):
        extended_due(due, RequestRule(days=30), already=False, reason="x", told=today, today=today)


def test_a_due_date_given_must_be_ahead():
    with pytest.raises(DueDateError, match="in the past"):
        check_given_due(date(2026, 1, 1), date(2025, 12, 1), date(2026, 1, 5))
    check_given_due(date(2026, 1, 5), date(2026, 1, 2), date(2026, 1, 5))


def test_fees_by_rule():
    assert fee_cents(FeeRule(method="flat", amount=6.5), 120) == (650, "flat fee")
    assert fee_cents(FeeRule(method="per_page", amount=0.5, base=15, cap=150), 10)[0] == 2000
    assert fee_cents(FeeRule(method="per_page", amount=0.5, base=15, cap=150), 1000)[0] == 15000
    assert fee_cents(FeeRule(), 10) == (0, "no charge")
    assert fee_cents(FeeRule(method="actual_cost"), 3, 42.1) == (4210, "actual cost")
    with pytest.raises(FeeError, match="actual cost"):
        fee_cents(FeeRule(method="actual_cost"), 3)
    with pytest.raises(FeeError, match="set by its rule"):
        fee_cents(FeeRule(method="flat", amount=1), 3, 5.0)


@pytest.mark.parametrize("cost", [-1.0, float("nan"), float("inf"), 1e300])
def test_an_actual_cost_that_is_not_an_amount_is_refused_in_words(cost: float):
    # click's FLOAT and the web form both take "nan" and "inf": they must not reach round() and crash.
    with pytest.raises(FeeError, match=r"not an amount|negative"):
        fee_cents(FeeRule(method="actual_cost"), 3, cost)


def test_no_authorization_and_an_expired_one_are_refused():
    today = date(2026, 1, 10)
    with pytest.raises(checks.RequestRefused, match=r"needs a signed authorization.*nothing was released"):
        checks.check_authorization(_request(), None, today)
    expired = _request(authorization=Authorization("a" * 16 + "-1", "2026-01-09"))
    with pytest.raises(checks.RequestRefused, match=r"expired on 2026-01-09.*nothing was released"):
        checks.check_authorization(expired, _doc("a" * 16 + "-1", "authorization"), today)
    current = _request(authorization=Authorization("a" * 16 + "-1", "2026-06-30"))
    checks.check_authorization(current, _doc("a" * 16 + "-1", "authorization"), today)
    with pytest.raises(checks.RequestRefused, match="no longer a filed authorization of MRN 00482913"):
        checks.check_authorization(current, _doc("a" * 16 + "-1", "authorization", mrn="00777001"), today)
    checks.check_authorization(_request(kind="patient", rule={"needs_authorization": False}), None, today)


def test_linking_refuses_another_patients_document_a_wrong_type_and_an_expired_date():
    today, later = date(2026, 1, 10), date(2026, 6, 1)
    request = _request()
    with pytest.raises(checks.RequestRefused, match="not a filed document of MRN 00482913"):
        checks.check_link(request, _doc("d-1", "authorization", mrn="00777001"), "d-1", later, (), SENSITIVE, today)
    with pytest.raises(checks.RequestRefused, match="is a lab_result, not an authorization"):
        checks.check_link(request, _doc("d-1"), "d-1", later, (), SENSITIVE, today)
    with pytest.raises(checks.RequestRefused, match="expired"):
        checks.check_link(request, _doc("d-1", "authorization"), "d-1", date(2026, 1, 9), (), SENSITIVE, today)
    with pytest.raises(checks.RequestRefused, match="not a sensitive type"):
        checks.check_link(request, _doc("d-1", "authorization"), "d-1", later, ("lab_result",), SENSITIVE, today)
    with pytest.raises(checks.RequestRefused, match="already fulfilled"):
        checks.check_link(
            _request(status="fulfilled"), _doc("d-1", "authorization"), "d-1", later, (), SENSITIVE, today
        )


def test_sensitive_types_are_left_out_under_a_general_authorization():
    docs = [_doc("d-1"), _doc("d-2", "psychotherapy_note"), _doc("d-3", "hiv_sti_result")]
    plan = checks.plan(_request(), docs, SENSITIVE)
    assert [s.doc_id for s in plan.release] == ["d-1"]
    assert [s.doc_id for s in plan.withheld] == ["d-2", "d-3"]
    assert "hiv_sti_result, psychotherapy_note" in plan.withheld_note()
    specific = _request(authorization=Authorization("a-1", "2026-12-31", ("hiv_sti_result",)))
    assert [s.doc_id for s in checks.plan(specific, docs, SENSITIVE).release] == ["d-1", "d-3"]


def test_asking_for_a_sensitive_type_or_document_without_a_specific_authorization_is_refused():
    with pytest.raises(checks.RequestRefused, match=r"asks for psychotherapy_note.*nothing was released"):
        checks.plan(_request(ask=Ask(doc_types=("psychotherapy_note",))), [], SENSITIVE)
    with pytest.raises(checks.RequestRefused, match=r"names document d-2.*nothing was released"):
        checks.plan(_request(ask=Ask(doc_ids=("d-2",))), [_doc("d-2", "psychotherapy_note")], SENSITIVE)


def test_the_requester_is_told_the_same_whether_or_not_anything_was_left_out():
    note = checks.requester_note(_request(), SENSITIVE)
    assert note and "hiv sti result" in note and "psychotherapy note" in note
    assert (
        checks.requester_note(_request(authorization=Authorization("a", "2027-01-01", tuple(SENSITIVE))), SENSITIVE)
        is None
    )


def test_the_default_config_marks_the_sensitive_types(tmp_path: Path):
    config = Config(path=tmp_path / "config.yaml")
    assert checks.sensitive_types(config.classification.types) == {
        "psychotherapy_note",
        "substance_use_treatment",
        "hiv_sti_result",
        "genetic_test",
    }
    assert config.requests.rules["attorney"].needs_authorization and config.requests.rules["payer"].needs_authorization
    assert not any(config.requests.rules[k].needs_authorization for k in ("patient", "provider", "legal"))


def test_a_kind_given_in_the_config_keeps_the_defaults_it_does_not_mention(tmp_path: Path):
    config = Config(path=tmp_path / "config.yaml", requests={"rules": {"attorney": {"days": 20}}})
    assert config.requests.rules["attorney"].days == 20 and config.requests.rules["attorney"].needs_authorization


def test_the_report_counts_turnaround_and_overdue():
    requests = [
        _request(id=1, kind="patient", status="fulfilled", received="2026-01-02", closed_on="2026-01-12"),
        _request(id=2, kind="patient", status="fulfilled", received="2026-01-02", closed_on="2026-01-22"),
        _request(
            id=3, kind="attorney", status="denied", received="2026-01-05", closed_on="2026-02-20", due="2026-02-04"
        ),
        _request(id=4, kind="attorney", status="received", received="2026-01-06", due="2026-02-05"),
        _request(id=5, kind="payer", status="withdrawn", received="2026-01-07", closed_on="2026-01-08"),
        _request(id=6, kind="payer", status="received", received="2025-12-01", due="2025-12-31"),
    ]
    report = build_report(requests, date(2026, 1, 1), date(2026, 1, 31), date(2026, 3, 1))
    assert report.total == 5
    assert report.by_kind["patient"]["fulfilled"] == 2 and report.by_kind["attorney"]["denied"] == 1
    assert report.median_days == 20 and report.p90_days == 46
    assert report.overdue == 1 and report.closed_late == 1
    svg = chart_svg(report)
    assert svg.startswith("<svg") and "<script" not in svg and "attorney: 1 denied" in svg


def test_samples_and_training_texts_include_the_authorization_and_the_sensitive_types(tmp_path: Path):
    settings = Config(path=tmp_path / "config.yaml").classification
    rng = random.Random(5)
    for seed in range(6):
        doc = scans.make_document(random.Random(seed), "authorization", scans.make_patient(rng))
        assert classify(["\n".join(page) for page in doc.pages], settings).doc_type == "authorization"
    texts = make_texts(400, 2, untitled=0)
    assert {t.doc_type for t in texts} == set(DEFAULT_TAXONOMY)
    titled = [t for t in texts if t.title_kind == "known"]
    assert all(classify(list(t.pages), settings).doc_type == t.doc_type for t in titled if t.pages[0].count(t.title))
