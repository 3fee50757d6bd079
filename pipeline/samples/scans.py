"""Synthetic scanned medical records with their ground truth, made in code from a seed.

The test suite, the accuracy benchmark and the ``make run`` demo all draw from here, so
every choice goes through one ``random.Random``: a seed always gives the same documents,
the same pixels and the same PDF bytes. Patients, clinicians and numbers are fictional.
"""

from __future__ import annotations

import io
import os
import random
import re
import textwrap
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from functools import lru_cache
from itertools import zip_longest
from pathlib import Path
from typing import Literal

import pikepdf
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from pipeline.core.config import DEFAULT_TAXONOMY
from pipeline.samples.box_labels import with_box_label

DOC_TYPES: tuple[str, ...] = tuple(DEFAULT_TAXONOMY)

LAST_NAMES = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright", "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall", "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Phillips", "Evans", "Turner", "Parker", "Collins", "Edwards", "Stewart", "Morris", "Murphy", "Cook"]
FIRST_NAMES = ["James", "Mary", "Robert", "Patricia", "John", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah", "Charles", "Karen", "Christopher", "Lisa", "Daniel", "Nancy", "Matthew", "Betty", "Anthony", "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily", "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian", "Dorothy", "George", "Melissa", "Timothy", "Deborah", "Ronald", "Stephanie", "Edward", "Rebecca", "Jason", "Sharon", "Jeffrey", "Laura", "Ryan", "Cynthia"]

# Spellings as they appear on real forms; every one is matched by DEFAULT_MRN_LABELS.
MRN_LABELS = (
    "MRN",
    "Medical Record #",
    "MR#",
    "Med Rec No.",
    "Patient ID",
    "Unit No.",
    "Medical Record Number",
    "M.R.N.",
    "Chart #",
)
NAME_LABELS = ("Patient Name", "Patient", "Name", "Pt Name", "Patient's Name")
DOB_LABELS = ("DOB", "Date of Birth", "D.O.B.", "Birth Date")
LAYOUTS = ("inline", "name_line", "two_column", "stacked", "grid")
DATE_STYLES = ("mdy", "iso", "long", "dmy_abbrev")

# The label of the document's own date. Any other date a type prints uses a label that
# comes later in DEFAULT_DOC_DATE_LABELS (or is not in it) and appears later in the text.
DOC_DATE_LABELS: dict[str, tuple[str, ...]] = {
    "discharge_summary": ("Discharge Date", "Date of Discharge"),
    "history_physical": ("Admission Date", "Date of Admission", "Date of Service"),
    "progress_note": ("Date of Service", "Visit Date", "DOS", "Date of Visit"),
    "consultation": ("Date of Service", "Service Date"),
    "operative_report": ("Date of Procedure", "Procedure Date"),
    "radiology_report": ("Exam Date", "Date of Exam"),
    "lab_result": ("Collection Date", "Collected"),
    "pathology_report": ("Report Date", "Date of Report"),
    "referral_letter": ("Date",),
    "consent_form": ("Date of Service", "Date"),
    "prescription": ("Date",),
    "insurance_billing": ("Date of Service", "Service Date"),
}
# Taxonomy titles never drawn at random: claim forms, whose grids the billing bodies here
# do not imitate, and modality titles, which radiology picks to match its study.
_UNUSED_TITLES = {
    "Health Insurance Claim Form",
    "CMS-1500",
    "UB-04",
    "Cytology Report",
    "CT Report",
    "MRI Report",
    "X-ray Report",
    "Ultrasound Report",
}

MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
PAGE_INCHES = (8.5, 11.0)
MARGIN_INCHES = 0.6
LEADING = 1.3
HEADING_SCALE = 1.25
# Lines a page may hold so it still fits at 12 pt; headings count as HEADING_SCALE lines.
PAGE_LINES = 44
WRAP_CHARS = 74
BODY_PER_PAGE = 20
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")

FACILITIES = (
    ("Riverside General Hospital", "1200 Oak Street, Springfield, IL 62704"),
    ("Mercy Valley Medical Center", "45 Hospital Drive, Dayton, OH 45409"),
    ("St. Anne Regional Health", "900 Lake Avenue, Duluth, MN 55802"),
    ("Northgate Family Clinic", "310 Main Street, Suite 200, Fresno, CA 93721"),
    ("Lakeside Diagnostic Laboratory", "77 Harbor Road, Erie, PA 16507"),
    ("Summit Surgical Center", "2150 Ridge Parkway, Boulder, CO 80301"),
)
PAYERS = ("BlueRiver Health Plan", "Granite Mutual Insurance", "Heartland Care Alliance", "Pacific Shield Health")


@dataclass(frozen=True)
class Patient:
    """A fictional patient; ``last`` and ``first`` are capitalised, ``dob`` is ISO."""

    mrn: str
    last: str
    first: str
    dob: str

    @property
    def name(self) -> str:
        return f"{self.last}, {self.first}".upper()


@dataclass(frozen=True)
class SampleDoc:
    """One generated document and the truth about it.

    ``pages`` holds the text lines of each page; a tab separates cells that are drawn
    in columns. The first ``heading_lines`` lines of page 1 (letterhead and title) are
    drawn centred and larger. ``mrn`` is always printed exactly as ``patient.mrn``.
    """

    doc_type: str
    patient: Patient | None
    doc_date: str
    pages: tuple[tuple[str, ...], ...]
    mrn_label: str
    extra_mrns: tuple[str, ...] = ()
    layout: str = "inline"
    title: str | None = None
    heading_lines: int = 0

    @property
    def lines(self) -> list[str]:
        return [line for page in self.pages for line in page]

    @property
    def expect(self) -> Literal["filed", "review"]:
        return "review" if self.patient is None or self.extra_mrns else "filed"


def make_patient(rng: random.Random) -> Patient:
    if rng.random() < 0.25:
        mrn = f"{rng.randint(1, 999_999):08d}"  # zero-padded systems print leading zeros
    else:
        digits = rng.choice((6, 7, 8))
        mrn = str(rng.randint(10 ** (digits - 1), 10**digits - 1))
    dob = date(1930, 1, 1) + timedelta(days=rng.randint(0, 33_000))
    return Patient(mrn, rng.choice(LAST_NAMES), rng.choice(FIRST_NAMES), dob.isoformat())


def format_date(day: date, style: str) -> str:
    if style == "mdy":
        return f"{day.month:02d}/{day.day:02d}/{day.year}"
    if style == "iso":
        return day.isoformat()
    if style == "long":
        return f"{MONTHS[day.month - 1]} {day.day}, {day.year}"
    if style == "dmy_abbrev":
        return f"{day.day:02d}-{MONTHS[day.month - 1][:3]}-{day.year}"
    raise ValueError(f"unknown date style {style!r}")


# ---------------------------------------------------------------------------- content


@dataclass
class _Ctx:
    """Choices shared by the header and body of one document."""

    rng: random.Random
    patient: Patient | None
    when: date
    date_style: str
    distractors: bool
    mrn_label: str
    upper_headings: bool
    case: _Case
    mrns: set[str] = field(default_factory=set)
    titles: tuple[str, ...] = ()
    name_shown: str = ""
    sep: str = ": "

    def d(self, day: date) -> str:
        return format_date(day, self.date_style)

    def digits(self, low: int, high: int) -> str:
        size = self.rng.randint(low, high)
        return str(self.rng.randint(10 ** (size - 1), 10**size - 1))

    def doctor(self) -> str:
        taken = self.patient.last if self.patient else ""
        last = self.rng.choice([n for n in LAST_NAMES if n != taken])
        return f"Dr. {self.rng.choice(FIRST_NAMES)} {last}"

    def who(self) -> str:
        p = self.patient
        return f"{p.first} {p.last}" if p else "the patient"

    def age(self) -> int:
        if self.patient is None:
            return self.rng.randint(25, 85)
        return max(1, (self.when - date.fromisoformat(self.patient.dob)).days // 365)

    def sec(self, heading: str, body: str | Sequence[str]) -> list[str]:
        """A section: ``Heading: text`` on one line when short, else heading then text."""
        heading = heading.upper() if self.upper_headings else heading
        if isinstance(body, str) and len(heading) + len(body) + 2 <= WRAP_CHARS:
            return [f"{heading}: {body}", ""]
        lines = textwrap.wrap(body, WRAP_CHARS) if isinstance(body, str) else list(body)
        return [f"{heading}:", *lines, ""]


def _phone(rng: random.Random) -> str:
    area = rng.choice(("555", "312", "617", "415", "713", "216"))
    mid, end = rng.randint(200, 999), rng.randint(0, 9999)
    return rng.choice((f"({area}) {mid}-{end:04d}", f"{area}-{mid}-{end:04d}", f"{area}.{mid}.{end:04d}"))


def _npi(rng: random.Random) -> str:
    body = "1" + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return body + _luhn_digit("80840" + body)  # real NPIs carry this check digit


def _luhn_digit(number: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return str((10 - total % 10) % 10)


def _dea(rng: random.Random, last: str) -> str:
    d = [rng.randint(0, 9) for _ in range(6)]
    check = (d[0] + d[2] + d[4] + 2 * (d[1] + d[3] + d[5])) % 10
    return f"{rng.choice('ABFM')}{last[0]}{''.join(map(str, d))}{check}"


_DECOYS: dict[str, tuple[tuple[str, ...], Callable[[_Ctx], str]]] = {
    "account": (("Account #", "Acct #", "Account No."), lambda c: c.digits(8, 10)),
    "encounter": (("Encounter No.", "Encounter #", "Enc #"), lambda c: c.digits(9, 10)),
    "fin": (("FIN",), lambda c: c.digits(9, 10)),
    "visit": (("Visit #", "Visit ID"), lambda c: c.digits(7, 9)),
    "csn": (("CSN",), lambda c: c.digits(10, 10)),
    "phone": (("Phone", "Tel"), lambda c: _phone(c.rng)),
    "fax": (("Fax",), lambda c: _phone(c.rng)),
    "npi": (("NPI",), lambda c: _npi(c.rng)),
    "dea": (("DEA", "DEA #"), lambda c: _dea(c.rng, c.doctor().split()[-1])),
    "policy": (("Policy #", "Policy No."), lambda c: c.rng.choice(("", "XWB", "H")) + c.digits(9, 10)),
    "claim": (("Claim #", "Claim No."), lambda c: c.digits(10, 12)),
    "accession": (
        ("Accession #", "Accession No."),
        lambda c: c.rng.choice((f"S{c.when.year % 100}-", "")) + c.digits(6, 9),
    ),
    "member": (("Member ID",), lambda c: c.rng.choice(("W", "")) + c.digits(9, 9)),
    "group": (("Group #", "Group No."), lambda c: c.digits(6, 7)),
    "order": (("Order #",), lambda c: c.digits(8, 10)),
}
_HEADER_DECOYS = ("account", "encounter", "fin", "visit", "csn")


def _decoy(c: _Ctx, kind: str) -> str:
    """A labelled number that must never be taken for the MRN ("" without distractors)."""
    if not c.distractors:
        return ""
    labels, make = _DECOYS[kind]
    label, value = c.rng.choice(labels), make(c)
    while any(mrn in value or value in mrn for mrn in c.mrns):  # keep the truth unambiguous
        value = make(c)
    return f"{label}{c.rng.choice((': ', ' '))}{value}"


def _join(*cells: str, gap: str = "    ") -> str:
    return gap.join(cell for cell in cells if cell)


def _some(*lines: str) -> list[str]:
    """The lines that are not empty: decoys are "" when distractors are off."""
    return [line for line in lines if line]


@dataclass(frozen=True)
class _Case:
    dx: str
    symptom: str
    treatment: str
    specialty: str
    finding: str
    med: str


CASES = (
    _Case(
        "Community-acquired pneumonia",
        "cough, fever and shortness of breath",
        "intravenous ceftriaxone and azithromycin",
        "Pulmonology",
        "Chest x-ray showed a right lower lobe infiltrate",
        "Amoxicillin 875 mg by mouth twice daily",
    ),
    _Case(
        "Acute exacerbation of COPD",
        "worsening dyspnea and wheezing",
        "nebulized bronchodilators and oral prednisone",
        "Pulmonology",
        "Chest x-ray showed hyperinflation without infiltrate",
        "Prednisone 40 mg by mouth daily",
    ),
    _Case(
        "Congestive heart failure exacerbation",
        "leg swelling and orthopnea",
        "intravenous furosemide",
        "Cardiology",
        "Echocardiogram showed an ejection fraction of 35 percent",
        "Furosemide 40 mg by mouth daily",
    ),
    _Case(
        "Atrial fibrillation with rapid ventricular response",
        "palpitations and dizziness",
        "diltiazem for rate control and apixaban",
        "Cardiology",
        "Echocardiogram showed normal valve function",
        "Apixaban 5 mg by mouth twice daily",
    ),
    _Case(
        "Cellulitis of the left lower leg",
        "redness and swelling of the left leg",
        "intravenous cefazolin",
        "Infectious Disease",
        "Venous duplex was negative for thrombosis",
        "Cephalexin 500 mg by mouth four times daily",
    ),
    _Case(
        "Acute kidney injury",
        "poor oral intake and fatigue",
        "intravenous fluids and holding nephrotoxic medications",
        "Nephrology",
        "Renal ultrasound showed no hydronephrosis",
        "Amlodipine 5 mg by mouth daily",
    ),
    _Case(
        "Acute pancreatitis",
        "epigastric pain radiating to the back",
        "bowel rest, intravenous fluids and analgesia",
        "Gastroenterology",
        "CT of the abdomen showed peripancreatic stranding",
        "Omeprazole 20 mg by mouth daily",
    ),
    _Case(
        "Chest pain, acute coronary syndrome ruled out",
        "substernal chest pressure",
        "telemetry monitoring and serial troponins",
        "Cardiology",
        "Stress test was negative for ischemia",
        "Atorvastatin 40 mg by mouth at bedtime",
    ),
    _Case(
        "Upper gastrointestinal bleeding",
        "black stools and lightheadedness",
        "two units of packed red cells and a proton pump inhibitor",
        "Gastroenterology",
        "Endoscopy showed a nonbleeding duodenal ulcer",
        "Pantoprazole 40 mg by mouth twice daily",
    ),
    _Case(
        "Syncope",
        "a brief loss of consciousness at home",
        "telemetry monitoring and orthostatic evaluation",
        "Neurology",
        "CT of the head showed no acute abnormality",
        "Metoprolol succinate 25 mg by mouth daily",
    ),
)
HISTORY = (
    "Hypertension",
    "Type 2 diabetes mellitus",
    "Hyperlipidemia",
    "Chronic kidney disease",
    "Hypothyroidism",
    "Obesity",
    "Gastroesophageal reflux disease",
    "Osteoarthritis",
    "Depression",
    "Asthma",
)
DRUGS = (
    ("Lisinopril", "10 mg", "tablet", "Take 1 tablet by mouth once daily"),
    ("Metformin", "500 mg", "tablet", "Take 1 tablet by mouth twice daily with meals"),
    ("Atorvastatin", "40 mg", "tablet", "Take 1 tablet by mouth at bedtime"),
    ("Amoxicillin", "500 mg", "capsule", "Take 1 capsule by mouth three times daily for 10 days"),
    ("Metoprolol tartrate", "25 mg", "tablet", "Take 1 tablet by mouth twice daily"),
    ("Amlodipine", "5 mg", "tablet", "Take 1 tablet by mouth daily"),
    ("Levothyroxine", "50 mcg", "tablet", "Take 1 tablet by mouth every morning"),
    ("Sertraline", "50 mg", "tablet", "Take 1 tablet by mouth daily"),
    ("Gabapentin", "300 mg", "capsule", "Take 1 capsule by mouth at bedtime"),
    ("Cephalexin", "500 mg", "capsule", "Take 1 capsule by mouth four times daily for 7 days"),
)
NUMBER_WORDS = {7: "seven", 10: "ten", 14: "fourteen", 28: "twenty-eight", 30: "thirty", 60: "sixty", 90: "ninety"}


def _vitals(c: _Ctx) -> str:
    r = c.rng
    return (
        f"BP {r.randint(104, 162)}/{r.randint(60, 96)}, HR {r.randint(58, 108)}, "
        f"Temp {r.uniform(97.2, 100.8):.1f} F, RR {r.randint(12, 22)}, "
        f"SpO2 {r.randint(91, 99)}% on room air"
    )


def _history(c: _Ctx, k: int = 3) -> list[str]:
    return c.rng.sample(HISTORY, k)


def _drug_list(c: _Ctx, k: int) -> list[str]:
    return [f"{n} {s} by mouth daily" for n, s, _, _ in c.rng.sample(DRUGS, k)]


def _signature(c: _Ctx, role: str = "") -> list[str]:
    signed = f"Electronically signed by {c.doctor()}, MD{role} on {c.d(c.when)}"
    return _some(*textwrap.wrap(signed, WRAP_CHARS), _decoy(c, "npi"))


def _pick(c: _Ctx, *options: str) -> str:
    return c.rng.choice(options)


# Sections a type may add to fill later pages; each is used at most once per document.
_Extra = Callable[[_Ctx], list[str]]
_SHARED_EXTRAS: dict[str, _Extra] = {
    "labs": lambda c: c.sec(_pick(c, "Laboratory Data", "Pertinent Results", "Recent Results"), _lab_rows(c, 4)),
    "meds": lambda c: c.sec(_pick(c, "Current Medications", "Medications"), _drug_list(c, 3)),
    "history": lambda c: c.sec("Past Medical History", ", ".join(_history(c))),
    "allergies": lambda c: c.sec(
        "Allergies", _pick(c, "No known drug allergies", "Codeine (nausea)", "Penicillin (hives)")
    ),
    "social": lambda c: c.sec(
        "Social History", _pick(c, "Lives with spouse; retired teacher.", "Lives alone; works in construction.")
    ),
}


def _discharge(c: _Ctx) -> list[list[str]]:
    case, r = c.case, c.rng
    admitted = c.when - timedelta(days=r.randint(2, 9))
    return [
        [f"Admission Date: {c.d(admitted)}", f"Attending: {c.doctor()}", ""],
        c.sec("Discharge Diagnosis", [f"1. {case.dx}", *(f"{i}. {h}" for i, h in enumerate(_history(c, 2), 2))]),
        c.sec(
            "Hospital Course",
            f"{c.who()} was admitted with {case.dx.lower()} and was treated "
            f"with {case.treatment}. {case.specialty} consultation was obtained and its "
            f"recommendations were followed. {case.finding}. Symptoms improved steadily.",
        ),
        c.sec("Discharge Medications", [case.med, *_drug_list(c, 2)]),
        c.sec("Condition at Discharge", r.choice(("Stable", "Improved", "Good"))),
        c.sec("Disposition", r.choice(("Home", "Home with home health", "Skilled nursing facility"))),
        c.sec("Follow-up", f"With {c.doctor()} in {r.randint(1, 3)} weeks; repeat labs in one week."),
        _signature(c),
    ]


_DISCHARGE_EXTRAS: tuple[_Extra, ...] = (
    _SHARED_EXTRAS["labs"],
    lambda c: c.sec(
        "Consultations",
        [f"{c.case.specialty}: {c.doctor()}", f"Physical therapy: evaluated on day {c.rng.randint(1, 3)}"],
    ),
    lambda c: c.sec("Imaging", f"{c.case.finding}."),
    lambda c: c.sec("Diet", _pick(c, "Low sodium, 2 gram", "Carbohydrate controlled", "Regular")),
    lambda c: c.sec("Activity", "As tolerated. No driving while taking opioid pain medication."),
    lambda c: c.sec(
        "Pending Results", "Blood cultures are pending at discharge and will be followed by the primary care physician."
    ),
)


def _hp(c: _Ctx) -> list[list[str]]:
    case, r = c.case, c.rng
    history = _history(c)
    return [
        c.sec("Chief Complaint", case.symptom.capitalize()),
        c.sec(
            "History of Present Illness",
            f"{c.age()}-year-old with a history of "
            f"{history[0].lower()} who presents with {case.symptom} for {r.randint(2, 6)} days. "
            "Symptoms have been progressive despite rest at home.",
        ),
        c.sec("Past Medical History", ", ".join(history)),
        _SHARED_EXTRAS["allergies"](c),
        c.sec(
            "Family History",
            r.choice(("Father with coronary artery disease.", "Mother with type 2 diabetes.", "Noncontributory.")),
        ),
        c.sec(
            "Physical Examination",
            [_vitals(c), "Alert and oriented, in no acute distress.", "Lungs with scattered crackles; heart regular."],
        ),
        c.sec(
            "Assessment and Plan",
            f"{case.dx}. Admit for {case.treatment}; "
            f"{case.specialty.lower()} consultation requested; labs in the morning.",
        ),
        _signature(c),
    ]


_HP_EXTRAS: tuple[_Extra, ...] = (
    _SHARED_EXTRAS["social"],
    _SHARED_EXTRAS["meds"],
    _SHARED_EXTRAS["labs"],
    lambda c: c.sec(
        "Review of Systems",
        "Negative for headache, vision change, abdominal pain, "
        "dysuria, rash and joint swelling except as noted in the history.",
    ),
    lambda c: c.sec("Code Status", _pick(c, "Full code", "Do not resuscitate; confirmed with family")),
)


def _progress(c: _Ctx) -> list[list[str]]:
    r, history = c.rng, _history(c, 2)
    drug = r.choice(DRUGS)
    return [
        c.sec(
            "Subjective",
            f"Returns for a follow up visit of {history[0].lower()} and "
            f"{history[1].lower()}. Feels well; taking medications as prescribed.",
        ),
        c.sec("Objective", [_vitals(c), "Heart regular, lungs clear, no edema."]),
        c.sec("Assessment", [f"1. {history[0]}, stable", f"2. {history[1]}, improving"]),
        c.sec(
            "Plan",
            [
                f"Continue {drug[0].lower()} {drug[1]} daily.",
                "Lab results reviewed; repeat lipid panel before next visit.",
                f"Return to clinic in {r.choice((3, 4, 6))} months.",
            ],
        ),
        _signature(c),
    ]


_PROGRESS_EXTRAS: tuple[_Extra, ...] = (
    _SHARED_EXTRAS["meds"],
    _SHARED_EXTRAS["labs"],
    _SHARED_EXTRAS["allergies"],
    lambda c: c.sec(
        "Interval History",
        "No emergency visits since the last appointment. Home blood pressure readings reviewed and mostly at goal.",
    ),
    lambda c: c.sec(
        "Health Maintenance", ["Influenza vaccine given today.", "Colonoscopy up to date; mammogram ordered."]
    ),
    lambda c: c.sec(
        "Counseling",
        "Discussed diet, exercise and medication adherence for about 15 minutes; the patient voiced understanding.",
    ),
)


def _consult(c: _Ctx) -> list[list[str]]:
    case, r = c.case, c.rng
    return [
        c.sec("Requesting Physician", c.doctor()),
        c.sec("Reason for Consultation", case.dx),
        c.sec("History", f"{c.age()}-year-old consulted for {case.symptom}. {case.finding}."),
        c.sec("Examination", [_vitals(c), "No acute distress."]),
        c.sec(
            "Recommendations",
            [
                f"1. Continue {case.treatment}.",
                f"2. Start {case.med.lower()} at discharge.",
                f"3. Follow up in {case.specialty} clinic in {r.randint(2, 6)} weeks.",
            ],
        ),
        ["Thank you for this consultation. We will follow along.", ""],
        _signature(c, f", {case.specialty}"),
    ]


_CONSULT_EXTRAS: tuple[_Extra, ...] = (
    _SHARED_EXTRAS["labs"],
    _SHARED_EXTRAS["history"],
    _SHARED_EXTRAS["meds"],
    _SHARED_EXTRAS["social"],
    lambda c: c.sec(
        "Impression", f"{c.case.dx}, likely multifactorial; no indication for invasive evaluation at this time."
    ),
)

_OPERATIONS = (
    (
        "Acute appendicitis",
        "Laparoscopic appendectomy",
        "Inflamed, nonperforated appendix",
        "Appendix",
        "Three ports were placed and the mesoappendix was divided with a stapler.",
    ),
    (
        "Symptomatic cholelithiasis",
        "Laparoscopic cholecystectomy",
        "Gallbladder with many stones",
        "Gallbladder",
        "The cystic duct and artery were clipped and divided after a critical view.",
    ),
    (
        "Right inguinal hernia",
        "Open right inguinal hernia repair with mesh",
        "Indirect hernia sac",
        "None",
        "A groin incision was made; the sac was reduced and a mesh was sutured in place.",
    ),
    (
        "Osteoarthritis, right knee",
        "Right total knee arthroplasty",
        "Tricompartmental arthritis",
        "Bone fragments",
        "A midline incision was made and cemented components were implanted.",
    ),
    (
        "Left breast mass",
        "Left breast excisional biopsy",
        "Firm 2 cm mass",
        "Left breast mass",
        "A periareolar incision was made and the mass was excised with a rim of normal tissue.",
    ),
)


def _operative(c: _Ctx) -> list[list[str]]:
    pre, procedure, findings, specimen, description = c.rng.choice(_OPERATIONS)
    r = c.rng
    return [
        [f"Surgeon: {c.doctor()}, MD", f"Anesthesia: {r.choice(('General endotracheal', 'Spinal'))}", ""],
        c.sec("Preoperative Diagnosis", pre),
        c.sec("Postoperative Diagnosis", r.choice(("Same", pre))),
        c.sec("Procedure Performed", procedure),
        c.sec("Findings", findings),
        c.sec("Estimated Blood Loss", f"{r.choice((10, 25, 50, 150))} mL"),
        c.sec("Specimens", specimen + (" to pathology" if specimen != "None" else "")),
        c.sec("Complications", "None"),
        c.sec(
            "Description of Procedure",
            "After informed consent the patient was brought to the "
            f"operating room and prepped. {description} Counts were correct. The patient went "
            "to recovery in stable condition; the pathology report is pending.",
        ),
        _signature(c),
    ]


_OPERATIVE_EXTRAS: tuple[_Extra, ...] = (
    lambda c: c.sec(
        "Indications",
        "Symptoms failed conservative management; the risks and benefits were reviewed and consent was signed.",
    ),
    lambda c: c.sec("Assistant", f"{c.doctor()}, MD"),
    lambda c: c.sec("Fluids", f"{c.rng.choice((800, 1200, 1500))} mL crystalloid"),
    lambda c: c.sec("Drains", _pick(c, "None", "One 19 French drain to bulb suction")),
    lambda c: c.sec(
        "Postoperative Plan",
        "Advance diet as tolerated, ambulate tonight, oral "
        "analgesia, discharge when tolerating a diet. Wound check in two weeks.",
    ),
)

_STUDIES = (
    (
        "CT Report",
        "CT ABDOMEN AND PELVIS WITH CONTRAST",
        "Axial images after intravenous contrast with coronal reformats.",
        "The appendix is dilated with surrounding fat stranding. No free air.",
        "Findings consistent with acute appendicitis.",
    ),
    (
        "X-ray Report",
        "CHEST, 2 VIEWS",
        "PA and lateral views of the chest.",
        "Patchy opacity in the right lower lobe. No pleural effusion. Heart size normal.",
        "Right lower lobe pneumonia.",
    ),
    (
        "MRI Report",
        "MRI LUMBAR SPINE WITHOUT CONTRAST",
        "Sagittal and axial T1 and T2 images.",
        "Disc bulge at L4-L5 with mild foraminal narrowing. Cord and conus are normal.",
        "Mild degenerative disc disease at L4-L5.",
    ),
    (
        "Ultrasound Report",
        "ULTRASOUND RIGHT UPPER QUADRANT",
        "Grayscale and color Doppler images.",
        "Multiple gallstones without wall thickening. Common bile duct 4 mm.",
        "Cholelithiasis without cholecystitis.",
    ),
)


def _radiology(c: _Ctx) -> list[list[str]]:
    title, exam, technique, findings, impression = c.rng.choice(_STUDIES)
    c.titles = (*c.titles, title)
    return [
        [f"Exam: {exam}", f"Ordering Physician: {c.doctor()}", ""],
        c.sec("Clinical History", c.case.symptom.capitalize()),
        c.sec("Technique", technique),
        c.sec("Comparison", c.rng.choice(("None available.", "Prior study from outside facility."))),
        c.sec("Findings", findings),
        c.sec("Impression", impression),
        _some(f"Radiologist: {c.doctor()}, MD", "Electronically signed.", _decoy(c, "order")),
    ]


_RADIOLOGY_EXTRAS: tuple[_Extra, ...] = (
    lambda c: c.sec("Additional Findings", "Visualized bones show mild degenerative change. No suspicious lesion."),
    lambda c: c.sec(
        "Recommendation",
        _pick(c, "No further imaging is needed.", "Follow-up imaging in 6 to 8 weeks after treatment."),
    ),
    lambda c: c.sec(
        "Communication", f"Findings discussed with {c.doctor()} by telephone at the time of interpretation."
    ),
    lambda c: c.sec("Radiation Dose", f"CTDIvol {c.rng.uniform(4, 18):.1f} mGy; dose reduction techniques were used."),
)

_LAB_TESTS = (
    ("WBC", 4.0, 11.0, "x10^3/uL", 1),
    ("Hemoglobin", 12.0, 16.0, "g/dL", 1),
    ("Hematocrit", 36.0, 46.0, "%", 1),
    ("Platelets", 150, 400, "x10^3/uL", 0),
    ("Sodium", 135, 145, "mmol/L", 0),
    ("Potassium", 3.5, 5.1, "mmol/L", 1),
    ("Chloride", 98, 107, "mmol/L", 0),
    ("CO2", 22, 29, "mmol/L", 0),
    ("BUN", 7, 20, "mg/dL", 0),
    ("Creatinine", 0.6, 1.3, "mg/dL", 2),
    ("Glucose", 70, 99, "mg/dL", 0),
    ("Calcium", 8.5, 10.5, "mg/dL", 1),
    ("ALT", 7, 56, "U/L", 0),
    ("AST", 10, 40, "U/L", 0),
    ("Albumin", 3.5, 5.0, "g/dL", 1),
    ("Cholesterol", 100, 199, "mg/dL", 0),
    ("Triglycerides", 40, 149, "mg/dL", 0),
    ("INR", 0.8, 1.2, "ratio", 1),
    ("TSH", 0.4, 4.0, "mIU/L", 2),
    ("Hemoglobin A1c", 4.0, 5.6, "%", 1),
)


def _lab_rows(c: _Ctx, k: int) -> list[str]:
    rows = []
    for name, low, high, units, places in c.rng.sample(_LAB_TESTS, k):
        value = c.rng.uniform(low * 0.7, high * 1.3) if c.rng.random() < 0.3 else c.rng.uniform(low, high)
        flag = "H" if value > high else "L" if value < low else ""
        rows.append(f"{name}\t{value:.{places}f}\t{flag}\t{low:.{places}f}-{high:.{places}f}\t{units}")
    return rows


def _lab(c: _Ctx) -> list[list[str]]:
    head = "Test\tResult\tFlag\tReference Range\tUnits"
    return [
        [
            *_some(
                f"Ordering Provider: {c.doctor()}",
                _decoy(c, "accession"),
                f"Specimen: {c.rng.choice(('Blood, venous', 'Serum', 'Whole blood'))}",
            ),
            "",
        ],
        [head.upper() if c.upper_headings else head, *_lab_rows(c, c.rng.randint(5, 8)), ""],
        c.sec("Comments", c.rng.choice(("Specimen slightly hemolyzed.", "Critical values called.", "None."))),
        ["Result status: Final", f"Performed at {c.rng.choice(FACILITIES)[0]}"],
    ]


_LAB_EXTRAS: tuple[_Extra, ...] = tuple(
    (lambda c, panel=panel: [panel, *_lab_rows(c, c.rng.randint(3, 5)), ""])
    for panel in ("Chemistry", "Hematology", "Additional tests", "Add-on results")
)

_SPECIMENS = (
    (
        "Gallbladder, cholecystectomy",
        "A 7.5 cm gallbladder with a smooth serosa and yellow stones.",
        "Chronic inflammation of the wall with Rokitansky-Aschoff sinuses.",
        "Chronic cholecystitis",
    ),
    (
        "Skin, left forearm, shave biopsy",
        "A tan shave of skin measuring 0.8 x 0.6 cm.",
        "Nests of basaloid cells with peripheral palisading.",
        "Basal cell carcinoma; margins clear",
    ),
    (
        "Colon, sigmoid, polypectomy",
        "Two tan polyps measuring 0.4 and 0.6 cm.",
        "Tubular architecture with low-grade dysplasia.",
        "Tubular adenoma; no high-grade dysplasia",
    ),
    (
        "Appendix, appendectomy",
        "An appendix 6.2 cm long with a fibrinous serosa.",
        "Transmural neutrophilic inflammation, no perforation.",
        "Acute appendicitis",
    ),
)


def _pathology(c: _Ctx) -> list[list[str]]:
    specimen, gross, micro, diagnosis = c.rng.choice(_SPECIMENS)
    return [
        [
            *_some(
                _decoy(c, "accession"),
                f"Date of Procedure: {c.d(c.when - timedelta(days=2))}",
                f"Submitting Physician: {c.doctor()}",
            ),
            "",
        ],
        c.sec("Specimen Received", specimen),
        c.sec("Gross Description", gross + " Representative sections are submitted."),
        c.sec("Microscopic Description", micro),
        c.sec("Final Diagnosis", diagnosis),
        [f"Pathologist: {c.doctor()}, MD", "Electronically signed out."],
    ]


_PATHOLOGY_EXTRAS: tuple[_Extra, ...] = (
    lambda c: c.sec("Clinical History", c.case.symptom.capitalize()),
    lambda c: c.sec("Comment", "Sections were reviewed with a second pathologist, who concurs."),
    lambda c: c.sec("Intraoperative Consultation", "Frozen section: benign; final to follow."),
    lambda c: c.sec("Ancillary Studies", "Immunohistochemical stains show appropriate controls."),
)


def _referral(c: _Ctx) -> list[list[str]]:
    case, r = c.case, c.rng
    to = c.doctor()
    thanks = "Thank you for seeing this patient."
    if c.distractors:
        thanks += f" Please call me with questions at {_phone(r)}."
    return [
        [to, f"{case.specialty} Associates", ""],
        [f"Dear Dr. {to.split()[-1]},", ""],
        [
            *textwrap.wrap(
                f"I am writing to refer {c.who()}, {c.age()} years old, for evaluation of "
                f"{case.dx.lower()}. {case.finding}. The recent discharge summary and "
                "lab results are enclosed.",
                WRAP_CHARS,
            ),
            "",
        ],
        [*textwrap.wrap(thanks, WRAP_CHARS), ""],
        [
            r.choice(("Sincerely,", "Kind regards,", "Yours sincerely,")),
            "",
            *_some(c.doctor() + ", MD", _decoy(c, "npi")),
        ],
    ]


_REFERRAL_EXTRAS: tuple[_Extra, ...] = (
    _SHARED_EXTRAS["meds"],
    _SHARED_EXTRAS["history"],
    _SHARED_EXTRAS["allergies"],
    _SHARED_EXTRAS["labs"],
)


def _consent(c: _Ctx) -> list[list[str]]:
    procedure = c.rng.choice(_OPERATIONS)[1].lower()
    person = f"I, {c.who()}," if c.patient else "I"
    text = (
        f"{person} hereby consent to a {procedure} to be performed by {c.doctor()} and such "
        "assistants as may be selected. The nature of the procedure, its risks, benefits and "
        "alternatives have been explained to me. I understand that no guarantee has been "
        "made about the result. I consent to anesthesia and to the disposal of any tissue "
        "removed. I voluntarily give this consent."
    )
    return [
        [*textwrap.wrap(text, WRAP_CHARS), ""],
        ["Signature of Patient: ____________________", f"Date: {c.d(c.when)}", ""],
        _some("Witness: ____________________", _decoy(c, "phone")),
    ]


_CONSENT_EXTRAS: tuple[_Extra, ...] = (
    lambda c: c.sec(
        "Blood Products",
        "I consent to the transfusion of blood products if needed. "
        "The risks of transfusion, including infection and reaction, were explained.",
    ),
    lambda c: c.sec(
        "Anesthesia",
        "I understand that anesthesia carries its own risks, which the anesthesiologist has discussed with me.",
    ),
    lambda c: c.sec("Photography", "I authorize photographs for my medical record only."),
    lambda c: c.sec("Interpreter", _pick(c, "Not required.", "Spanish interpreter present.")),
)


def _prescription(c: _Ctx) -> list[list[str]]:
    r = c.rng
    sections = [[*_some(c.doctor() + ", MD", _decoy(c, "npi"), _decoy(c, "dea")), ""]]
    sections += [_rx(c, drug) for drug in r.sample(DRUGS, r.randint(1, 3))]
    sections.append(
        [r.choice(("Substitution permitted", "Dispense as written")), "Prescriber signature: ____________________"]
    )
    return sections


def _rx(c: _Ctx, drug: tuple[str, str, str, str]) -> list[str]:
    name, strength, form, sig = drug
    count = c.rng.choice(sorted(NUMBER_WORDS))
    return [
        f"Rx: {name} {strength} {form}",
        f"Sig: {sig}",
        f"Disp: #{count} ({NUMBER_WORDS[count]}) {form}s",
        f"Refills: {c.rng.randint(0, 5)}",
        "",
    ]


_PRESCRIPTION_EXTRAS: tuple[_Extra, ...] = (
    lambda c: _rx(c, c.rng.choice(DRUGS)),
    _SHARED_EXTRAS["allergies"],
    lambda c: c.sec("Pharmacy", f"{c.rng.choice(LAST_NAMES)} Pharmacy, {_pick(c, 'Main', 'Elm')} Street"),
)

_SERVICES = (
    ("Office visit", "99213", 185),
    ("Chest x-ray", "71046", 240),
    ("CBC", "85025", 48),
    ("Metabolic panel", "80048", 62),
    ("ECG", "93000", 95),
    ("Venipuncture", "36415", 18),
)


def _billing_rows(c: _Ctx, k: int) -> tuple[list[str], int]:
    rows, total = [], 0
    for service, cpt, billed in c.rng.sample(_SERVICES, k):
        allowed = round(billed * c.rng.uniform(0.5, 0.9))
        rows.append(f"{service}\t{cpt}\t${billed:,.2f}\t${allowed:,.2f}\t${allowed * 0.8:,.2f}")
        total += billed
    return rows, total


def _billing(c: _Ctx) -> list[list[str]]:
    r = c.rng
    rows, billed = _billing_rows(c, r.randint(2, 4))
    head = "Service\tCPT\tAmount Billed\tAllowed\tPaid"
    return [
        [
            *_some(
                f"Payer: {r.choice(PAYERS)}",
                _join(_decoy(c, "member"), _decoy(c, "group")),
                _join(_decoy(c, "policy"), _decoy(c, "claim")),
            ),
            "",
        ],
        [head.upper() if c.upper_headings else head, *rows, ""],
        [
            f"Total charges: ${billed:,.2f}",
            f"Deductible applied: ${r.choice((0, 50, 100)):,.2f}",
            f"Copay: ${r.choice((20, 30, 40)):,.2f}",
            f"Patient balance due: ${r.randint(20, 200):,.2f}",
            "",
        ],
        _some(
            r.choice(("THIS IS NOT A BILL.", "Please remit the amount due by the due date.")),
            f"Questions about this claim? Call {_phone(r)}" if c.distractors else "",
        ),
    ]


_BILLING_EXTRAS: tuple[_Extra, ...] = (
    lambda c: ["Adjusted services:", *_billing_rows(c, 2)[0], ""],
    lambda c: c.sec(
        "Payment History",
        [f"Insurance payment: ${c.rng.randint(40, 400):,.2f}", f"Patient payment: ${c.rng.randint(10, 60):,.2f}"],
    ),
    lambda c: c.sec(
        "Messages",
        "Your plan covers preventive services at no cost. Appeals must be filed within 180 days of this notice.",
    ),
    lambda c: c.sec("Remark Codes", "CO-45: charge exceeds fee schedule. PR-3: copayment amount."),
)

_BODIES: dict[str, tuple[Callable[[_Ctx], list[list[str]]], tuple[_Extra, ...]]] = {
    "discharge_summary": (_discharge, _DISCHARGE_EXTRAS),
    "history_physical": (_hp, _HP_EXTRAS),
    "progress_note": (_progress, _PROGRESS_EXTRAS),
    "consultation": (_consult, _CONSULT_EXTRAS),
    "operative_report": (_operative, _OPERATIVE_EXTRAS),
    "radiology_report": (_radiology, _RADIOLOGY_EXTRAS),
    "lab_result": (_lab, _LAB_EXTRAS),
    "pathology_report": (_pathology, _PATHOLOGY_EXTRAS),
    "referral_letter": (_referral, _REFERRAL_EXTRAS),
    "consent_form": (_consent, _CONSENT_EXTRAS),
    "prescription": (_prescription, _PRESCRIPTION_EXTRAS),
    "insurance_billing": (_billing, _BILLING_EXTRAS),
}


# --------------------------------------------------------------------------- assembly


def make_document(
    rng: random.Random,
    doc_type: str,
    patient: Patient | None,
    *,
    pages: int = 1,
    label_style: str | None = None,
    distractors: bool = True,
    conflicting_mrn: str | bool | None = None,
    title: bool = True,
    layout: str | None = None,
    date_style: str | None = None,
) -> SampleDoc:
    """One document of ``doc_type``; ``label_style`` is the MRN label spelling.

    ``conflicting_mrn`` (a value, or True for a random one) prints a second MRN on a
    chart sticker at the foot of the last page, so the truth becomes "review".
    Pages 2..n carry a running header with the same name and MRN, and "Page k of n".
    """
    if doc_type not in _BODIES:
        raise ValueError(f"unknown document type {doc_type!r}; expected one of {DOC_TYPES}")
    if pages < 1:
        raise ValueError("a document has at least one page")
    if patient is None and conflicting_mrn:
        raise ValueError("a conflicting MRN needs a patient whose MRN it conflicts with")
    c = _Ctx(
        rng,
        patient,
        _doc_date(rng, patient),
        date_style or rng.choice(DATE_STYLES),
        distractors,
        label_style or rng.choice(MRN_LABELS),
        rng.random() < 0.5,
        rng.choice(CASES),
    )
    c.titles = tuple(t for t in DEFAULT_TAXONOMY[doc_type]["titles"] if t not in _UNUSED_TITLES)
    other = _other_mrn(c, conflicting_mrn)
    layout = layout or rng.choice(LAYOUTS)
    heading = _letterhead(c)
    block = _patient_block(c, layout, rng.choice(DOC_DATE_LABELS[doc_type]))
    build, extras = _BODIES[doc_type]
    sections = build(c)
    title_text = _title(c) if title else None
    if title_text:
        heading += [title_text]
    first = [*heading, "", *block, ""]
    running = _running_header(c, title_text)
    sticker = ["", f"Patient: {c.name_shown}    {c.mrn_label}{c.sep}{other}"] if other else []
    rooms = _rooms(pages, len(heading), len(first) - len(heading), len(running), len(sticker))
    laid = _paginate(first, running, _fill(c, sections, extras, rooms), rooms, sticker)
    return SampleDoc(
        doc_type,
        patient,
        c.when.isoformat(),
        laid,
        c.mrn_label if patient or _has_mrn_label(laid, c.mrn_label) else "",
        (other,) if other else (),
        layout,
        title_text,
        len(heading),
    )


def _doc_date(rng: random.Random, patient: Patient | None) -> date:
    earliest = date(2019, 1, 1)
    if patient:
        earliest = max(earliest, date.fromisoformat(patient.dob) + timedelta(days=30))
    return earliest + timedelta(days=rng.randint(0, (date(2025, 6, 30) - earliest).days))


def _other_mrn(c: _Ctx, wanted: str | bool | None) -> str | None:
    if c.patient is None:
        return None
    mrn = c.patient.mrn
    other = wanted if isinstance(wanted, str) else c.digits(len(mrn), len(mrn)) if wanted else None
    while other == mrn:
        if isinstance(wanted, str):
            raise ValueError("the conflicting MRN equals the patient's own")
        other = c.digits(len(mrn), len(mrn))
    c.mrns.update(m for m in (mrn, other) if m)
    return other


def _has_mrn_label(pages: tuple[tuple[str, ...], ...], label: str) -> bool:
    return any(label in line for page in pages for line in page)


def _title(c: _Ctx) -> str:
    text = c.rng.choice(c.titles)
    return text.upper() if c.rng.random() < 0.5 else text


def _letterhead(c: _Ctx) -> list[str]:
    name, address = c.rng.choice(FACILITIES)
    return _some(name, address, _join(_decoy(c, "phone"), _decoy(c, "fax")))


def _show_name(rng: random.Random, p: Patient) -> str:
    """The name as printed; the truth stays ``p.name`` whatever the spelling."""
    initial = rng.choice("ABCDEFGHJKLMNPRSTW")
    return rng.choice(
        (
            f"{p.last.upper()}, {p.first.upper()}",
            f"{p.last}, {p.first}",
            f"{p.first} {p.last}",
            f"{p.first} {initial}. {p.last}",
            f"{p.last.upper()}, {p.first.upper()} {initial}",
        )
    )


def _patient_block(c: _Ctx, layout: str, date_label: str) -> list[str]:
    when = f"{date_label}: {c.d(c.when)}"
    decoys = [_decoy(c, k) for k in c.rng.sample(_HEADER_DECOYS, 2)]
    p = c.patient
    if p is None:
        blank = c.rng.random() < 0.5  # a blank form keeps its labels: nothing may fill them
        form = [f"Patient Name: {'_' * 22}    {c.mrn_label}: {'_' * 12}", f"DOB: {'_' * 12}"]
        return [*(form if blank else []), _join(when, *decoys)]
    c.name_shown, c.sep = _show_name(c.rng, p), c.rng.choice((": ", ": ", " "))
    name_label, dob_label = c.rng.choice(NAME_LABELS), c.rng.choice(DOB_LABELS)
    name, mrn = f"{name_label}: {c.name_shown}", f"{c.mrn_label}{c.sep}{p.mrn}"
    dob = f"{dob_label}: {c.d(date.fromisoformat(p.dob))}"
    if layout == "inline":
        rows = [_join(name, mrn), _join(dob, when), _join(*decoys)]
    elif layout == "name_line":
        rows = [_join(name, dob, mrn, gap="   "), _join(when, decoys[0])]
    elif layout == "two_column":
        right = [*_some(*decoys), when, f"Attending: {c.doctor()}"]
        rows = [f"{left}\t{r}" for left, r in zip_longest((name, mrn, dob), right[:3], fillvalue="")]
    elif layout == "stacked":
        colon = c.rng.choice((":", ""))
        rows = [name_label + colon, c.name_shown, c.mrn_label + colon, p.mrn, _join(dob, when), _join(*decoys)]
    elif layout == "grid":
        rows = [
            f"{name_label}\t{c.mrn_label}\t{dob_label}",
            f"{c.name_shown}\t{p.mrn}\t{c.d(date.fromisoformat(p.dob))}",
            _join(when, *decoys),
        ]
    else:
        raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
    return [row for row in rows if row]


def _running_header(c: _Ctx, title: str | None) -> list[str]:
    if c.patient:
        return [f"{c.name_shown}    {c.mrn_label}{c.sep}{c.patient.mrn}", ""]
    return [title, ""] if title else []


def _rooms(pages: int, heading: int, block: int, running: int, sticker: int) -> list[int]:
    """Body lines each page can take once its header, footer and sticker are placed."""
    footer = 2 if pages > 1 else 0
    rooms = [PAGE_LINES - footer - running] * pages
    rooms[0] = int(PAGE_LINES - footer - heading * HEADING_SCALE - block)
    rooms[-1] -= sticker
    return rooms


def _fill(c: _Ctx, sections: list[list[str]], extras: tuple[_Extra, ...], rooms: list[int]) -> list[str]:
    """Body lines: the type's sections plus, for longer documents, distinct extra
    sections before the sign-off until each page has about BODY_PER_PAGE lines."""
    *middle, closing = sections
    pool = c.rng.sample(extras, len(extras))
    target = BODY_PER_PAGE * len(rooms) if len(rooms) > 1 else 0
    while pool and sum(map(len, middle)) + len(closing) < target:
        middle.append(pool.pop()(c))
    body = [line for section in [*middle, closing] for line in section]
    if len(body) > sum(rooms):
        raise ValueError(f"{len(body)} body lines do not fit on {len(rooms)} page(s)")
    return body


def _paginate(
    first: list[str], running: list[str], body: list[str], rooms: list[int], sticker: list[str]
) -> tuple[tuple[str, ...], ...]:
    """Spread the body evenly, never leaving later pages more than they can hold."""
    out, pos, pages = [], 0, len(rooms)
    for k, room in enumerate(rooms):
        left = len(body) - pos
        take = max(min(room, -(-left // (pages - k))), left - sum(rooms[k + 1 :]))
        chunk = body[pos : pos + take]
        pos += take
        while chunk and not chunk[0]:
            chunk = chunk[1:]  # a page never starts with the gap that ended a section
        foot = ["", f"Page {k + 1} of {pages}"] if pages > 1 else []
        tail = sticker if k == pages - 1 else []
        out.append(tuple([*(first if k == 0 else running), *chunk, *tail, *foot]))
    return tuple(out)


# -------------------------------------------------------------------------- rendering

_Placed = tuple[float, float, str, bool]  # x, top y, text, is heading


def _wrap(text: str, width: float, measure: Callable[[str], float]) -> list[str]:
    """Break a too-wide line, preferring the wide gaps between "Label: value" fields."""
    if measure(text) <= width:
        return [text]
    tokens: list[tuple[str, str]] = []
    for cell in re.split(r" {3,}", text.strip()):
        parts = [cell] if measure(cell) <= width else cell.split()
        tokens += [("    " if tokens and i == 0 else " ", part) for i, part in enumerate(parts)]
    rows: list[str] = []
    for sep, part in tokens:
        if rows and measure(rows[-1] + sep + part) <= width:
            rows[-1] += sep + part
        else:
            rows.append(part)
    return rows


def _rows(line: str, width: float, measure: Callable[[str], float]) -> list[list[tuple[float, str]]]:
    """Tab cells go to equal columns, pushed right when the cell before runs long."""
    if "\t" not in line:
        return [[(0.0, part)] for part in _wrap(line, width, measure)]
    cells, row, x = line.split("\t"), [], 0.0
    for i, cell in enumerate(cells):
        x = max(i * width / len(cells), x)
        row.append((x, cell))
        x += measure(cell + "   ")
    return [row]


def _layout(
    lines: Sequence[str],
    heading_lines: int,
    size: float,
    page: tuple[float, float],
    measure: Callable[[str, bool], float],
) -> list[_Placed]:
    """Where each piece of text goes, in the units of ``size`` and ``page``."""
    margin = MARGIN_INCHES * page[0] / PAGE_INCHES[0]
    width, bottom = page[0] - 2 * margin, page[1] - margin
    placed: list[_Placed] = []
    y = margin
    for i, line in enumerate(lines):
        heading = i < heading_lines
        step = size * LEADING * (HEADING_SCALE if heading else 1)
        for row in _rows(line, width, lambda s: measure(s, heading)):
            if y + step > bottom:
                raise ValueError(f"{len(lines)} lines do not fit on one page at this font size")
            for x, text in row:
                if heading:
                    x = (width - measure(text, True)) / 2
                placed.append((margin + x, y, text, heading))
            y += step
    return placed


@lru_cache(maxsize=16)
def _font(size_px: int, bold: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    path = FONT_DIR / ("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf")
    if path.exists():
        return ImageFont.truetype(str(path), size_px)
    return ImageFont.load_default(size=size_px)


def render_page(
    lines: Sequence[str],
    *,
    dpi: int = 300,
    rng: random.Random | None = None,
    skew_deg: float = 0.0,
    noise: float = 0.0,
    blur: float = 0.0,
    font_size_pt: float = 11,
    rotate: int = 0,
    heading_lines: int = 0,
) -> Image.Image:
    """A grayscale letter page as a scanner would see it.

    ``noise`` is the share of 1/150-inch speckle cells turned black (and as many white);
    ``rng`` places them (a fixed one when None). ``blur`` is a Gaussian radius in pixels,
    ``rotate`` a counter-clockwise turn, as when a page is fed sideways or upside down.
    Raises ValueError when the lines do not fit.
    """
    if rotate not in (0, 90, 180, 270):
        raise ValueError("rotate must be 0, 90, 180 or 270")
    size = (round(PAGE_INCHES[0] * dpi), round(PAGE_INCHES[1] * dpi))
    page = Image.new("L", size, 255)
    draw = ImageDraw.Draw(page)
    px = font_size_pt * dpi / 72

    def font(heading: bool) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return _font(round(px * (HEADING_SCALE if heading else 1)), heading)

    for x, y, text, heading in _layout(lines, heading_lines, px, size, lambda s, h: font(h).getlength(s)):
        draw.text((x, y), text, font=font(heading), fill=0)
    page = _degrade(page, rng or random.Random(0), skew_deg, noise, blur)
    if rotate:
        page = page.rotate(rotate, expand=True)
    page.info["dpi"] = (dpi, dpi)
    return page


def _degrade(page: Image.Image, rng: random.Random, skew_deg: float, noise: float, blur: float) -> Image.Image:
    if blur:
        page = page.filter(ImageFilter.GaussianBlur(blur))
    if skew_deg:
        page = page.rotate(skew_deg, resample=Image.Resampling.BICUBIC, fillcolor=255)
    if noise:
        page = _speckle(page, rng, noise)
    return page


def _speckle(page: Image.Image, rng: random.Random, amount: float) -> Image.Image:
    cell = max(1, round(page.width / 1275))  # 2 px at 300 dpi: dust, not single-pixel hiss
    grid = (-(-page.width // cell), -(-page.height // cell))
    cells = grid[0] * grid[1]
    page = page.copy()
    for colour in (0, 255):
        mask = bytearray(cells)
        for i in rng.sample(range(cells), round(amount * cells)):
            mask[i] = 255
        big = Image.frombytes("L", grid, bytes(mask)).resize((grid[0] * cell, grid[1] * cell), Image.Resampling.NEAREST)
        page.paste(colour, (0, 0, *page.size), big.crop((0, 0, *page.size)))
    return page


def fax_page(image: Image.Image, *, fine: bool = False, threshold: int = 200) -> Image.Image:
    """The page as a fax machine sends it: 204 x 98 dpi (196 in fine mode), 1 bit.

    The high threshold keeps thin strokes that averaging into coarse fax cells turns grey.
    """
    xdpi, ydpi = image.info.get("dpi", (300, 300))
    lines_per_inch = 196 if fine else 98
    size = (round(image.width * 204 / xdpi), round(image.height * lines_per_inch / ydpi))
    small = image.convert("L").resize(size, Image.Resampling.BOX)
    fax = small.point([255 if v >= threshold else 0 for v in range(256)], "1")
    fax.info["dpi"] = (204, lines_per_inch)
    return fax


# ------------------------------------------------------------------------------ PDFs

Encoding = Literal["jpeg", "g4", "flate"]


def write_scanned_pdf(
    path: str | os.PathLike,
    images: Iterable[Image.Image],
    *,
    encoding: Encoding = "jpeg",
    dpi: tuple[float, float] | None = None,
    quality: int = 75,
) -> None:
    """An image-only PDF, one image per page, sized from its pixels and resolution.

    The resolution is ``dpi``, else the image's own ``info["dpi"]``, else 300.
    "g4" is bitonal CCITT Group 4, "jpeg" grayscale DCT, "flate" lossless.
    """
    pdf = pikepdf.new()
    for image in images:
        xdpi, ydpi = dpi or image.info.get("dpi") or (300, 300)
        width, height = round(image.width * 72 / xdpi, 4), round(image.height * 72 / ydpi, 4)
        content = f"q {width} 0 0 {height} 0 0 cm /Im0 Do Q".encode()
        page = pikepdf.Dictionary(
            Type=pikepdf.Name.Page,
            MediaBox=[0, 0, width, height],
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=_image_xobject(pdf, image, encoding, quality))),
            Contents=pikepdf.Stream(pdf, content),
        )
        pdf.pages.append(pikepdf.Page(page))
    if not pdf.pages:
        raise ValueError("a PDF needs at least one page image")
    _save(pdf, path)


def _image_xobject(pdf: pikepdf.Pdf, image: Image.Image, encoding: Encoding, quality: int) -> pikepdf.Stream:
    if encoding == "jpeg":
        gray = image.convert("L")
        buffer = io.BytesIO()
        gray.save(buffer, "JPEG", quality=quality)
        return _xobject(pdf, gray, buffer.getvalue(), 8, Filter=pikepdf.Name.DCTDecode)
    if encoding == "flate":
        pixels = image if image.mode == "1" else image.convert("L")
        return _xobject(
            pdf,
            pixels,
            zlib.compress(pixels.tobytes(), 9),
            1 if pixels.mode == "1" else 8,
            Filter=pikepdf.Name.FlateDecode,
        )
    if encoding == "g4":
        bitonal = _bitonal(image)
        # Pillow writes these as MinIsBlack, so the runs decode with black as 1.
        params = pikepdf.Dictionary(K=-1, Columns=bitonal.width, Rows=bitonal.height, BlackIs1=True)
        return _xobject(pdf, bitonal, _group4(bitonal), 1, Filter=pikepdf.Name.CCITTFaxDecode, DecodeParms=params)
    raise ValueError(f"unknown encoding {encoding!r}; expected jpeg, g4 or flate")


def _xobject(pdf: pikepdf.Pdf, image: Image.Image, data: bytes, bits: int, **filters: object) -> pikepdf.Stream:
    return pikepdf.Stream(
        pdf,
        data,
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=image.width,
        Height=image.height,
        ColorSpace=pikepdf.Name.DeviceGray,
        BitsPerComponent=bits,
        **filters,
    )


def _bitonal(image: Image.Image) -> Image.Image:
    if image.mode == "1":
        return image
    return image.convert("L").point([255 if v >= 160 else 0 for v in range(256)], "1")


def _group4(bitonal: Image.Image) -> bytes:
    """The raw CCITT G4 data of a one-strip TIFF, which is what a PDF filter decodes."""
    buffer = io.BytesIO()
    bitonal.save(buffer, "TIFF", compression="group4", tiffinfo={278: bitonal.height})
    tiff = Image.open(io.BytesIO(buffer.getvalue()))
    (offset,), (length,) = tiff.tag_v2[273], tiff.tag_v2[279]
    return buffer.getvalue()[offset : offset + length]


def _save(pdf: pikepdf.Pdf, path: str | os.PathLike, **options: object) -> None:
    # A fixed /ID keeps the bytes a function of the seed alone; qpdf cannot fix one
    # for an encrypted file, whose salt is random anyway.
    pdf.save(path, deterministic_id="encryption" not in options, **options)


def write_born_digital_pdf(
    path: str | os.PathLike,
    pages: Sequence[Sequence[str]],
    *,
    heading_lines: int = 0,
    font_size_pt: float = 11,
    encryption: pikepdf.Encryption | None = None,
) -> None:
    """A PDF with a real text layer in Helvetica, as an EHR would print to PDF."""
    pdf = pikepdf.new()
    fonts = pikepdf.Dictionary(
        F1=pdf.make_indirect(_helvetica("Helvetica")), F2=pdf.make_indirect(_helvetica("Helvetica-Bold"))
    )
    size = (PAGE_INCHES[0] * 72, PAGE_INCHES[1] * 72)
    for k, lines in enumerate(pages):
        content = _text_stream(lines, heading_lines if k == 0 else 0, font_size_pt, size)
        pdf.pages.append(
            pikepdf.Page(
                pikepdf.Dictionary(
                    Type=pikepdf.Name.Page,
                    MediaBox=[0, 0, *size],
                    Resources=pikepdf.Dictionary(Font=fonts),
                    Contents=pikepdf.Stream(pdf, content),
                )
            )
        )
    _save(pdf, path, **({"encryption": encryption} if encryption else {}))


def _helvetica(name: str) -> pikepdf.Dictionary:
    return pikepdf.Dictionary(
        Type=pikepdf.Name.Font,
        Subtype=pikepdf.Name.Type1,
        BaseFont=pikepdf.Name("/" + name),
        Encoding=pikepdf.Name.WinAnsiEncoding,
    )


def _text_stream(lines: Sequence[str], heading_lines: int, pt: float, page: tuple[float, float]) -> bytes:
    def measure(text: str, heading: bool) -> float:
        # Helvetica averages about half an em per character; close enough to wrap and centre.
        return len(text) * 0.52 * pt * (HEADING_SCALE if heading else 1)

    ops = [b"BT"]
    for x, y, text, heading in _layout(lines, heading_lines, pt, page, measure):
        if text:
            font = b"/F2" if heading else b"/F1"
            size = pt * (HEADING_SCALE if heading else 1)
            baseline = page[1] - y - size
            ops.append(b"%s %.2f Tf 1 0 0 1 %.2f %.2f Tm (%s) Tj" % (font, size, x, baseline, _pdf_text(text)))
    ops.append(b"ET")
    return b"\n".join(ops)


def _pdf_text(text: str) -> bytes:
    raw = text.encode("cp1252", "replace")
    return raw.replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")


# ------------------------------------------------------------------- styles and sets


@dataclass(frozen=True)
class ScanStyle:
    """How a document reaches the archive. ``encoding`` None means a born-digital PDF.

    ``skew`` is the largest tilt in degrees (each page draws its own). The noisy
    settings are the strongest at which tesseract still read every MRN in our checks.
    """

    encoding: Encoding | None
    font_size_pt: float = 11
    skew: float = 0.0
    noise: float = 0.0
    blur: float = 0.0
    fax: Literal["standard", "fine"] | None = None
    rotate: int = 0
    quality: int = 75


STYLES: dict[str, ScanStyle] = {
    "scan": ScanStyle("jpeg", skew=0.5, blur=0.5),
    "noisy": ScanStyle("jpeg", skew=2.0, noise=0.0015, blur=0.8, quality=60),
    "fax": ScanStyle("g4", font_size_pt=12, skew=1.0, blur=1.0, fax="standard"),
    "fax_fine": ScanStyle("g4", font_size_pt=12, skew=0.7, blur=0.8, fax="fine"),
    "bitonal": ScanStyle("g4", skew=0.5),
    "lossless": ScanStyle("flate", skew=0.3),
    "upside_down": ScanStyle("jpeg", skew=0.5, blur=0.5, rotate=180),
    "sideways": ScanStyle("jpeg", blur=0.5, rotate=90),
    "digital": ScanStyle(None),
}


def write_sample_pdf(path: str | os.PathLike, doc: SampleDoc, style: str = "scan", *, seed: int = 0) -> None:
    """``doc`` as a PDF the way ``STYLES[style]`` delivers it; ``seed`` drives the noise."""
    look = STYLES[style]
    if look.encoding is None:
        write_born_digital_pdf(path, doc.pages, heading_lines=doc.heading_lines)
        return
    rng = random.Random(seed)
    images = []
    for k, lines in enumerate(doc.pages):
        page = render_page(
            lines,
            rng=rng,
            skew_deg=rng.uniform(-look.skew, look.skew),
            noise=look.noise,
            blur=look.blur,
            font_size_pt=look.font_size_pt,
            rotate=look.rotate,
            heading_lines=doc.heading_lines if k == 0 else 0,
        )
        images.append(fax_page(page, fine=look.fax == "fine") if look.fax else page)
    write_scanned_pdf(path, images, encoding=look.encoding, quality=look.quality)


# The demo's first files: one of each way in, a multi-page fax and a multi-page noisy scan.
_DEMO_PLAN = (("scan", 1), ("fax", 2), ("bitonal", 1), ("digital", 1), ("noisy", 2), ("upside_down", 1))


def write_sample_set(
    folder: str | os.PathLike, *, count: int = 6, seed: int = 0, box: str | None = None
) -> list[tuple[Path, SampleDoc]]:
    """Sample scans for the demo drop folder, with their ground truth.

    With ``box``, the first file starts with a box label sheet naming that off-site box.

    Patients recur across files, as in a real archive, and every sixth file (the 4th,
    10th...) carries a conflicting MRN so the demo shows the review queue too. Each
    file appears under its final name only once complete, so a watcher never sees
    half a PDF.
    """
    rng = random.Random(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    types = rng.sample(DOC_TYPES, len(DOC_TYPES))
    patients = [make_patient(rng) for _ in range(max(1, count // 2))]
    written = []
    for i in range(count):
        style, pages = _DEMO_PLAN[i] if i < len(_DEMO_PLAN) else (rng.choice(sorted(STYLES)), rng.randint(1, 3))
        doc = make_document(
            rng, types[i % len(types)], patients[i % len(patients)], pages=pages, conflicting_mrn=i % 6 == 3
        )
        path = folder / f"{i + 1:02d}-{style}.pdf"
        partial = folder / f".{path.name}.part"
        write_sample_pdf(partial, doc, style, seed=rng.randrange(2**32))
        if box is not None and i == 0:
            with_box_label(partial, box)
        os.replace(partial, path)
        written.append((path, doc))
    return written


def make_corpus(count: int = 60, *, seed: int = 0) -> list[SampleDoc]:
    """Documents for an accuracy benchmark: every type equally often, varied layouts
    and labels, about one in ten without a patient and one in ten with a conflict."""
    rng = random.Random(seed)
    patients = [make_patient(rng) for _ in range(max(1, count // 3))]
    docs = []
    for i in range(count):
        patient = None if rng.random() < 0.1 else rng.choice(patients)
        docs.append(
            make_document(
                rng,
                DOC_TYPES[i % len(DOC_TYPES)],
                patient,
                pages=rng.choice((1, 1, 1, 2, 3)),
                distractors=rng.random() < 0.9,
                title=rng.random() < 0.9,
                conflicting_mrn=patient is not None and rng.random() < 0.1,
            )
        )
    return docs


def ground_truth_json(doc: SampleDoc) -> dict:
    p = doc.patient
    return {
        "doc_type": doc.doc_type,
        "mrn": p.mrn if p else None,
        "name": p.name if p else None,
        "dob": p.dob if p else None,
        "doc_date": doc.doc_date,
        "expect": doc.expect,
        "extra_mrns": list(doc.extra_mrns),
        "pages": len(doc.pages),
    }


# ----------------------------------------------------------------------- bad inputs

BOMB_SIDE = 40_000  # pixels; 1.6 G pixels is far beyond any page budget


def write_bad_inputs(folder: str | os.PathLike) -> dict[str, str]:
    """Inputs intake must refuse, each a few KB: file name -> kind
    ("empty", "not_pdf", "truncated", "encrypted", "bomb")."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    doc = make_document(rng, "progress_note", make_patient(rng))
    (folder / "empty.pdf").write_bytes(b"")
    (folder / "not_a_pdf.pdf").write_text("Scan job 1182 finished\nPages: 3\nStatus: OK\n")
    _write_truncated(folder / "truncated.pdf", doc)
    write_born_digital_pdf(
        folder / "encrypted.pdf",
        doc.pages,
        heading_lines=doc.heading_lines,
        encryption=pikepdf.Encryption(user="patient", owner="records"),
    )
    _write_image_bomb(folder / "bomb_image.pdf")
    _write_page_bomb(folder / "bomb_page.pdf")
    return {
        "empty.pdf": "empty",
        "not_a_pdf.pdf": "not_pdf",
        "truncated.pdf": "truncated",
        "encrypted.pdf": "encrypted",
        "bomb_image.pdf": "bomb",
        "bomb_page.pdf": "bomb",
    }


def _write_truncated(path: Path, doc: SampleDoc) -> None:
    write_born_digital_pdf(path, doc.pages)
    with pikepdf.open(path, allow_overwriting_input=True) as pdf:
        # With object streams the page tree sits near the end, so the first half holds
        # nothing qpdf can rebuild a document from.
        _save(pdf, path, object_stream_mode=pikepdf.ObjectStreamMode.generate)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _write_image_bomb(path: Path) -> None:
    """A letter page showing a 40000 x 40000 1-bit image: 200 MB raw, 3 KB stored."""
    row_bytes = BOMB_SIDE // 8
    packer, zeros = zlib.compressobj(1), bytes(row_bytes * 200)  # level 1: 3x faster here
    inner = b"".join(packer.compress(zeros) for _ in range(BOMB_SIDE // 200)) + packer.flush()
    pdf = pikepdf.new()
    image = pikepdf.Stream(
        pdf,
        zlib.compress(inner, 9),
        Type=pikepdf.Name.XObject,
        Subtype=pikepdf.Name.Image,
        Width=BOMB_SIDE,
        Height=BOMB_SIDE,
        ColorSpace=pikepdf.Name.DeviceGray,
        BitsPerComponent=1,
        Filter=pikepdf.Array([pikepdf.Name.FlateDecode] * 2),
    )
    pdf.pages.append(
        pikepdf.Page(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, 612, 792],
                Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(Im0=image)),
                Contents=pikepdf.Stream(pdf, b"q 612 0 0 792 0 0 cm /Im0 Do Q"),
            )
        )
    )
    # Left to compress streams, qpdf would undo the outer layer and store the inner one.
    _save(pdf, path, compress_streams=False)


def _write_page_bomb(path: Path) -> None:
    """A 200 x 200 inch page (the PDF maximum): 60000 x 60000 pixels at 300 dpi."""
    pdf = pikepdf.new()
    font = pdf.make_indirect(_helvetica("Helvetica"))
    pdf.pages.append(
        pikepdf.Page(
            pikepdf.Dictionary(
                Type=pikepdf.Name.Page,
                MediaBox=[0, 0, 14400, 14400],
                Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
                Contents=pikepdf.Stream(pdf, b"BT /F1 24 Tf 72 14300 Td (Oversized page) Tj ET"),
            )
        )
    )
    _save(pdf, path)
