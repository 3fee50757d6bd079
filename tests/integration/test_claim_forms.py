"""Issue #25 item 5: CMS-1500 claim forms read by layout: typed as claims, the patient's
name and DOB from boxes 2 and 3 (not the insured's or the employer's), never filed."""

import random

import pytest

from pipeline.core.config import load_config
from pipeline.identify.documents import SourceFacts, build_documents
from pipeline.pages.process import PageTask, process_page
from pipeline.samples.claim_forms import make_claim_form, write_claim_pdf, write_claim_scan
from tests.conftest import write_config


def _read(tmp_path, pdf, scanned):
    config = load_config(write_config(tmp_path))
    page = process_page(PageTask(pdf, 1, scanned, 300, "eng", 120, 50))
    return page, build_documents([page], SourceFacts(pdf.name, "0" * 64), config, None, history=lambda _: {})[0]


@pytest.mark.parametrize("seed", range(10))
def test_printed_claim_form_is_a_claim_of_the_patient_in_box_2(tmp_path, seed):
    form = make_claim_form(random.Random(seed))
    page, doc = _read(tmp_path, write_claim_pdf(tmp_path / "claim.pdf", form), scanned=False)
    assert page.source == "text-layer" and page.words
    assert doc.classification.doc_type == "insurance_billing"
    assert doc.classification.cues[0] == "title:Health Insurance Claim Form"
    assert (doc.identifiers.name, doc.identifiers.dob) == (form.patient_name, form.patient.dob)
    assert doc.decision.status == "review" and doc.decision.reason == "no MRN found on any page"


def test_scanned_claim_forms_read_right_nine_in_ten(tmp_path):
    right = 0
    for seed in range(10):
        form = make_claim_form(random.Random(100 + seed))
        pdf = write_claim_scan(tmp_path / f"scan-{seed}.pdf", form, dpi=300, seed=seed)
        page, doc = _read(tmp_path, pdf, scanned=True)
        assert page.source == "ocr"
        assert doc.classification.doc_type == "insurance_billing"
        assert doc.decision.status == "review"
        right += (doc.identifiers.name, doc.identifiers.dob) == (form.patient_name, form.patient.dob)
    assert right >= 9
