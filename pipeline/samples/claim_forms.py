"""CMS-1500-like health insurance claim forms, filled, as another system prints them.

The layout follows the real form (02/12): small print first in reading order
("APPROVED BY NATIONAL UNIFORM CLAIM COMMITTEE", "CARRIER", "PLEASE DO NOT STAPLE"),
the title printed large across the top, numbered boxes with a small label at their top
and the filled value in a larger typewriter face below it, the patient's boxes (2, 3)
beside the insured's (4, 11a) and the insured's employer (11b). There is no MRN: such a
form is never filed by itself. Written as a text-layer PDF (reportlab) or as a scan of it.
"""

from __future__ import annotations

import os
import random
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from PIL import Image
from reportlab.lib.pagesizes import letter
from reportlab.pdfgen import canvas

from pipeline.samples.scans import Patient, make_patient, write_scanned_pdf

_EMPLOYERS = ("STANFORD UNIVERSITY", "ACME LOGISTICS INC", "COUNTY SCHOOL DISTRICT", "RIVERSIDE MEDICAL GROUP")
_PLANS = ("BLUE SHIELD PPO", "AETNA CHOICE POS II", "UNITED HEALTHCARE HMO", "CIGNA OPEN ACCESS")
_LABEL_PT = 5.5
_VALUE_PT = 10
_TITLE_PT = 15


@dataclass(frozen=True)
class ClaimForm:
    """The filled values; ``patient`` is the truth the form's boxes 2 and 3 carry."""

    patient: Patient
    middle: str
    insured: Patient
    employer: str
    plan: str
    account: str
    service_date: str  # ISO

    @property
    def patient_name(self) -> str:
        """Box 2 as the truth reads it: 'LAST, FIRST'."""
        return self.patient.name


def make_claim_form(rng: random.Random) -> ClaimForm:
    patient = make_patient(rng)
    # Half the time the insured is someone else (a spouse or parent), so box 4 names another person.
    insured = patient if rng.random() < 0.5 else make_patient(rng)
    start = date.fromisoformat(patient.dob).toordinal() + 365
    service = date.fromordinal(rng.randint(max(start, date(2019, 1, 1).toordinal()), date(2025, 6, 1).toordinal()))
    return ClaimForm(
        patient,
        rng.choice("ABCDEFGHJKLMNPRSTW"),
        insured,
        rng.choice(_EMPLOYERS),
        rng.choice(_PLANS),
        f"{rng.randint(10**7, 10**8 - 1)}",
        service.isoformat(),
    )


def _mdy(iso: str, year_digits: int = 4) -> str:
    d = date.fromisoformat(iso)
    return f"{d.month:02d}   {d.day:02d}   {d.year % 10**year_digits:0{year_digits}d}"


def _box(c: canvas.Canvas, x: float, y: float, w: float, h: float, label: str, value: str = "") -> None:
    """One numbered box: the frame, its small label at the top, its value below in Courier."""
    c.rect(x, y - h, w, h)
    c.setFont("Helvetica", _LABEL_PT)
    c.drawString(x + 2, y - 7, label)
    if value:
        c.setFont("Courier", _VALUE_PT)
        c.drawString(x + 6, y - h + 5, value)


def _draw(c: canvas.Canvas, form: ClaimForm) -> None:
    width, height = letter
    left, full = 24.0, width - 48.0
    half = full * 0.58
    p, ins = form.patient, form.insured
    c.setFont("Helvetica", 5)
    c.drawString(left, height - 30, "APPROVED BY NATIONAL UNIFORM CLAIM COMMITTEE (NUCC) 02/12")
    c.drawRightString(width - left, height - 30, "CARRIER")
    c.drawString(left + 250, height - 22, "PLEASE DO NOT STAPLE IN THIS AREA")
    c.setFont("Helvetica", 6)
    c.drawString(left, height - 52, "PICA")
    c.drawRightString(width - left, height - 52, "PICA")
    c.setFont("Helvetica-Bold", _TITLE_PT)
    c.drawCentredString(width / 2, height - 54, "HEALTH INSURANCE CLAIM FORM")
    y = height - 62
    row = 26.0
    programs = "1. MEDICARE   MEDICAID   TRICARE   CHAMPVA   GROUP HEALTH PLAN   FECA BLK LUNG   OTHER"
    _box(c, left, y, half, row, programs, "X GROUP")
    _box(c, left + half, y, full - half, row, "1a. INSURED'S I.D. NUMBER (For Program in Item 1)", f"W{form.account}")
    y -= row
    name_w = half * 0.62
    _box(
        c,
        left,
        y,
        name_w,
        row,
        "2. PATIENT'S NAME (Last Name, First Name, Middle Initial)",
        f"{p.last.upper()}, {p.first.upper()}, {form.middle}",
    )
    _box(c, left + name_w, y, half - name_w, row, "3. PATIENT'S BIRTH DATE   MM | DD | YY", f"{_mdy(p.dob)}  M")
    _box(
        c,
        left + half,
        y,
        full - half,
        row,
        "4. INSURED'S NAME (Last Name, First Name, Middle Initial)",
        f"{ins.last.upper()}, {ins.first.upper()}",
    )
    y -= row
    _box(c, left, y, name_w, row, "5. PATIENT'S ADDRESS (No., Street)", "1200 W MAIN ST")
    _box(
        c,
        left + name_w,
        y,
        half - name_w,
        row,
        "6. PATIENT RELATIONSHIP TO INSURED",
        "X SELF" if ins == p else "X SPOUSE",
    )
    _box(c, left + half, y, full - half, row, "7. INSURED'S ADDRESS (No., Street)", "1200 W MAIN ST")
    y -= row
    _box(c, left, y, half, row, "9. OTHER INSURED'S NAME (Last Name, First Name, Middle Initial)")
    _box(c, left + half, y, full - half, row, "11. INSURED'S POLICY GROUP OR FECA NUMBER", f"G{form.account[:5]}")
    y -= row
    _box(c, left, y, half, row, "10. IS PATIENT'S CONDITION RELATED TO:  a. EMPLOYMENT?", "NO")
    _box(c, left + half, y, full - half, row, "a. INSURED'S DATE OF BIRTH   MM | DD | YY", _mdy(ins.dob))
    y -= row
    _box(c, left, y, half, row, "b. AUTO ACCIDENT?   PLACE (State)", "NO")
    _box(c, left + half, y, full - half, row, "b. EMPLOYER'S NAME OR SCHOOL NAME", form.employer)
    y -= row
    _box(c, left, y, half, row, "c. OTHER ACCIDENT?", "NO")
    _box(c, left + half, y, full - half, row, "c. INSURANCE PLAN NAME OR PROGRAM NAME", form.plan)
    y -= row
    c.setFont("Helvetica", 5)
    c.drawString(left, y - 8, "READ BACK OF FORM BEFORE COMPLETING & SIGNING THIS FORM.")
    y -= 12
    _box(c, left, y, half, row, "12. PATIENT'S OR AUTHORIZED PERSON'S SIGNATURE", "SIGNATURE ON FILE")
    _box(c, left + half, y, full - half, row, "13. INSURED'S OR AUTHORIZED PERSON'S SIGNATURE", "SIGNATURE ON FILE")
    y -= row
    _box(c, left, y, half, row, "14. DATE OF CURRENT ILLNESS, INJURY, or PREGNANCY (LMP)", _mdy(form.service_date))
    _box(c, left + half, y, full - half, row, "16. DATES PATIENT UNABLE TO WORK IN CURRENT OCCUPATION")
    y -= row
    _box(c, left, y, half, row, "17. NAME OF REFERRING PROVIDER OR OTHER SOURCE", "DK  LEE, SAMUEL")
    _box(c, left + half, y, full - half, row, "18. HOSPITALIZATION DATES RELATED TO CURRENT SERVICES")
    y -= row
    _box(c, left, y, full, row * 1.4, "21. DIAGNOSIS OR NATURE OF ILLNESS OR INJURY", "A. J06.9     B. R05.9")
    y -= row * 1.4
    header = "24. A. DATE(S) OF SERVICE     B. PLACE OF SERVICE   D. PROCEDURES, SERVICES, OR SUPPLIES   F. $ CHARGES"
    _box(c, left, y, full, row * 2.2, header, f"{_mdy(form.service_date, 2)}   11   99213   A   125 00")
    y -= row * 2.2
    third = full / 3
    _box(c, left, y, third, row, "25. FEDERAL TAX I.D. NUMBER", "94-1156365")
    _box(c, left + third, y, third, row, "26. PATIENT'S ACCOUNT NO.", form.account)
    _box(c, left + 2 * third, y, third, row, "28. TOTAL CHARGE", "$ 125 00")
    y -= row
    _box(c, left, y, third, row * 1.6, "31. SIGNATURE OF PHYSICIAN OR SUPPLIER", "SAMUEL LEE MD")
    _box(c, left + third, y, third, row * 1.6, "32. SERVICE FACILITY LOCATION INFORMATION", "FAMILY CLINIC")
    _box(c, left + 2 * third, y, third, row * 1.6, "33. BILLING PROVIDER INFO & PH #", "FAMILY CLINIC")
    c.setFont("Helvetica", 5)
    c.drawString(left, 40, "NUCC Instruction Manual available at: www.nucc.org")
    c.drawRightString(width - left, 40, "APPROVED OMB-0938-1197 FORM 1500 (02-12)")


def write_claim_pdf(path: str | os.PathLike, form: ClaimForm) -> Path:
    """The form as a billing system prints it to PDF: vector text, a text layer."""
    c = canvas.Canvas(str(path), pagesize=letter, invariant=True)
    _draw(c, form)
    c.showPage()
    c.save()
    return Path(path)


def write_claim_scan(path: str | os.PathLike, form: ClaimForm, *, dpi: int = 300, seed: int = 0) -> Path:
    """The printed form scanned back: an image-only PDF, slightly skewed, with dust."""
    rng = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        printed = write_claim_pdf(Path(tmp) / "form.pdf", form)
        subprocess.run(
            ["pdftoppm", "-r", str(dpi), "-gray", "-singlefile", str(printed), str(Path(tmp) / "page")],
            check=True,
            capture_output=True,
        )
        with Image.open(Path(tmp) / "page.pgm") as image:
            page = image.convert("L")
    page = page.rotate(rng.uniform(-0.6, 0.6), resample=Image.Resampling.BICUBIC, fillcolor=255)
    page.info["dpi"] = (dpi, dpi)
    write_scanned_pdf(path, [page], encoding="jpeg", dpi=(dpi, dpi))
    return Path(path)
