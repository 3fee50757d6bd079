"""Page texts of typed clinical documents, as OCR would give them, for the type classifier.

Text only (no PDF, no OCR), so tens of thousands of documents take seconds. Titles vary
the way real archives do: the taxonomy's own titles, wordings the rules have never seen,
OCR damage, and no title at all on a share of documents. Bodies draw their sections
(with synonymous headings) from a type's pool in varying order, on letterheads from many
facilities and departments, and share their clinical stories across types, so words
like "consultation" or "impression" appear in several. Everything is fictional.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pipeline.core.config import DEFAULT_TAXONOMY

DOC_TYPES: tuple[str, ...] = tuple(DEFAULT_TAXONOMY)

# Wordings the default rules do not know, as other hospitals print them.
UNSEEN_TITLES: dict[str, tuple[str, ...]] = {
    "discharge_summary": (
        "Discharge Summ.",
        "Hospital Course Summary",
        "Summary of Hospitalization",
        "Inpatient Discharge Record",
        "Transfer / Discharge Note",
        "DC Summary",
    ),
    "history_physical": (
        "Admission Note",
        "Admission Assessment",
        "Initial Hospital Assessment",
        "Hx & Exam",
        "Admitting Physician Note",
        "Pre-Admission Evaluation",
    ),
    "progress_note": (
        "Follow-up Visit",
        "Clinic Visit Note",
        "Outpatient Note",
        "Interval Note",
        "Return Visit",
        "Ambulatory Encounter",
    ),
    "consultation": (
        "Consult",
        "Specialist Opinion",
        "Inpatient Consult Request Response",
        "Cardiology Consult",
        "Nephrology Evaluation",
        "Expert Opinion",
    ),
    "operative_report": (
        "OP NOTE",
        "Operation Record",
        "Surgical Procedure Report",
        "Post-Op Note",
        "Intraoperative Record",
        "Surgery Report",
    ),
    "radiology_report": (
        "Imaging Report",
        "CT Scan Result",
        "Ultrasound Examination",
        "Chest Radiograph",
        "MR Imaging",
        "Nuclear Medicine Study",
    ),
    "lab_result": (
        "Chemistry Panel",
        "Laboratory Report - Final",
        "Cumulative Lab Summary",
        "Blood Test Results",
        "Hematology Results",
        "Clinical Laboratory",
    ),
    "pathology_report": (
        "Histopathology Report",
        "Cytopathology",
        "Tissue Examination",
        "Biopsy Report",
        "Anatomic Pathology",
        "Frozen Section Report",
    ),
    "referral_letter": (
        "Letter",
        "Re: Referral",
        "Request for Specialist Opinion",
        "Physician Correspondence",
        "Transfer of Care Letter",
        "Clinic Letter",
    ),
    "consent_form": (
        "Authorization for Procedure",
        "Patient Agreement",
        "Permission for Surgery",
        "Agreement to Anesthesia",
        "Procedure Authorization",
        "Consent",
    ),
    "prescription": (
        "Medication Prescription",
        "Outpatient Medication Orders",
        "Discharge Prescriptions",
        "Pharmacy Order",
        "Script",
        "Medication Request",
    ),
    "insurance_billing": (
        "Patient Statement",
        "Remittance Advice",
        "Itemized Bill",
        "Account Summary",
        "Claim Summary",
        "Notice of Payment",
    ),
    "authorization": (
        "Release of Information Request",
        "Consent to Release Records",
        "Patient Authorization Form",
        "Authorization to Disclose",
        "ROI Authorization",
        "Records Release Form",
    ),
    "psychotherapy_note": (
        "Therapy Progress Note",
        "Counseling Session",
        "Behavioral Health Session Note",
        "Psychotherapy Progress Note",
        "Individual Therapy Note",
        "Session Summary",
    ),
    "substance_use_treatment": (
        "Addiction Medicine Note",
        "Detox Admission Assessment",
        "Opioid Treatment Program Note",
        "SUD Counseling Note",
        "Recovery Program Progress Note",
        "Alcohol Treatment Record",
    ),
    "hiv_sti_result": (
        "HIV Screening",
        "Infectious Serology",
        "STD Panel",
        "HIV-1/2 Ag/Ab Result",
        "Sexual Health Screening",
        "Viral Load Report",
    ),
    "genetic_test": (
        "Germline Testing Report",
        "Hereditary Cancer Panel",
        "Molecular Diagnostics Report",
        "Carrier Screening Result",
        "Genomic Sequencing Report",
        "Pharmacogenomics Report",
    ),
}

FACILITIES = (
    "Riverside General Hospital",
    "Mercy Valley Medical Center",
    "St. Anne Regional Health",
    "Northgate Family Clinic",
    "Lakeside Diagnostic Center",
    "Summit Surgical Center",
    "Harborview Community Hospital",
    "Pine Ridge Health System",
    "Eastbrook University Hospital",
    "Cedar Hills Medical Group",
    "Bayside Memorial",
    "Westfield Children's and Adult Clinic",
)
DEPARTMENTS = (
    "Department of Medicine",
    "Department of Surgery",
    "Health Information Management",
    "Outpatient Services",
    "Inpatient Unit 4 West",
    "Medical Records",
    "",
    "",
    "",
)
STREETS = ("Oak Street", "Hospital Drive", "Lake Avenue", "Main Street", "Harbor Road", "Ridge Parkway")
NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Garcia",
    "Miller",
    "Davis",
    "Lopez",
    "Wilson",
    "Anderson",
    "Taylor",
    "Moore",
    "Martin",
    "Lee",
    "Perez",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Hill",
]
FIRST = [
    "James",
    "Mary",
    "Robert",
    "Linda",
    "David",
    "Susan",
    "Joseph",
    "Sarah",
    "Karen",
    "Lisa",
    "Daniel",
    "Nancy",
    "Paul",
    "Emily",
    "Andrew",
    "Donna",
    "Kevin",
    "Amanda",
    "Brian",
    "Laura",
]


@dataclass(frozen=True)
class _Story:
    dx: str
    symptom: str
    treatment: str
    specialty: str
    finding: str


STORIES = (
    _Story(
        "community-acquired pneumonia",
        "cough and fever",
        "intravenous antibiotics",
        "Pulmonology",
        "chest x-ray showed a right lower lobe infiltrate",
    ),
    _Story(
        "heart failure exacerbation",
        "leg swelling and orthopnea",
        "intravenous diuresis",
        "Cardiology",
        "echocardiogram showed reduced ejection fraction",
    ),
    _Story(
        "atrial fibrillation",
        "palpitations",
        "rate control and anticoagulation",
        "Cardiology",
        "ECG confirmed atrial fibrillation",
    ),
    _Story(
        "cellulitis of the leg",
        "redness and swelling",
        "intravenous cefazolin",
        "Infectious Disease",
        "duplex ultrasound was negative for thrombosis",
    ),
    _Story(
        "acute kidney injury",
        "poor intake and fatigue",
        "intravenous fluids",
        "Nephrology",
        "renal ultrasound showed no hydronephrosis",
    ),
    _Story(
        "acute pancreatitis",
        "epigastric pain",
        "bowel rest and analgesia",
        "Gastroenterology",
        "CT of the abdomen showed peripancreatic stranding",
    ),
    _Story(
        "appendicitis", "right lower quadrant pain", "appendectomy", "General Surgery", "CT showed a dilated appendix"
    ),
    _Story(
        "syncope",
        "a brief loss of consciousness",
        "telemetry monitoring",
        "Neurology",
        "CT of the head showed no acute abnormality",
    ),
    _Story(
        "diabetic foot ulcer",
        "a nonhealing wound",
        "debridement and offloading",
        "Podiatry",
        "x-ray showed no osteomyelitis",
    ),
    _Story(
        "COPD exacerbation",
        "wheezing and dyspnea",
        "steroids and bronchodilators",
        "Pulmonology",
        "chest x-ray showed hyperinflation",
    ),
)
DRUGS = (
    "lisinopril 10 mg",
    "metformin 500 mg",
    "atorvastatin 40 mg",
    "amoxicillin 500 mg",
    "metoprolol 25 mg",
    "amlodipine 5 mg",
    "levothyroxine 50 mcg",
    "sertraline 50 mg",
    "gabapentin 300 mg",
    "apixaban 5 mg",
    "furosemide 40 mg",
    "omeprazole 20 mg",
)
HISTORY = (
    "hypertension",
    "type 2 diabetes",
    "hyperlipidemia",
    "chronic kidney disease",
    "asthma",
    "hypothyroidism",
    "obesity",
    "depression",
    "osteoarthritis",
    "GERD",
)
PROCEDURES = (
    "laparoscopic appendectomy",
    "laparoscopic cholecystectomy",
    "inguinal hernia repair",
    "total knee arthroplasty",
    "excisional breast biopsy",
    "colonoscopy with polypectomy",
    "carpal tunnel release",
    "cardiac catheterization",
)
STUDIES = (
    "CT abdomen and pelvis with contrast",
    "chest, two views",
    "MRI lumbar spine without contrast",
    "ultrasound right upper quadrant",
    "CT head without contrast",
    "mammogram, bilateral screening",
    "nuclear stress test",
    "MRI brain with and without contrast",
)
SPECIMENS = (
    "gallbladder",
    "skin, left forearm, shave biopsy",
    "colon polyp",
    "appendix",
    "breast, core biopsy",
    "prostate, needle biopsy",
    "lymph node, excision",
)
TESTS = (
    "WBC",
    "Hemoglobin",
    "Platelets",
    "Sodium",
    "Potassium",
    "Creatinine",
    "Glucose",
    "BUN",
    "ALT",
    "AST",
    "TSH",
    "INR",
    "Hemoglobin A1c",
    "Albumin",
    "Calcium",
    "Chloride",
)
SERVICES = (
    ("Office visit", "99213"),
    ("Chest x-ray", "71046"),
    ("CBC", "85025"),
    ("Metabolic panel", "80048"),
    ("ECG", "93000"),
    ("Venipuncture", "36415"),
)


class _Ctx:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.story = rng.choice(STORIES)

    def doctor(self) -> str:
        return f"Dr. {self.rng.choice(FIRST)} {self.rng.choice(NAMES)}"

    def any(self, *options: str) -> str:
        return self.rng.choice(options)

    def some(self, pool: tuple[str, ...], k: int) -> list[str]:
        return self.rng.sample(pool, k)

    def num(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)


def _s(*headings: str):
    """A section: one of its headings, then the lines its maker writes."""

    def wrap(make):
        return (headings, make)

    return wrap


# Each type: sections always present (some heading of each), then optional ones.
_SECTIONS: dict[str, tuple[list, list]] = {
    "discharge_summary": (
        [
            _s("Discharge Diagnosis", "Final Diagnoses", "Diagnoses at Discharge")(
                lambda c: [c.story.dx, *c.some(HISTORY, 2)]
            ),
            _s("Hospital Course", "Course in Hospital", "Summary of Stay")(
                lambda c: [
                    f"Admitted with {c.story.symptom} and found to have {c.story.dx}. Treated with {c.story.treatment}.",
                    f"{c.story.specialty} was consulted and recommendations were followed; {c.story.finding}.",
                ]
            ),
            _s("Discharge Medications", "Medications on Discharge", "Home Medications")(lambda c: c.some(DRUGS, 3)),
        ],
        [
            _s("Condition at Discharge", "Discharge Condition")(lambda c: [c.any("Stable", "Improved", "Good")]),
            _s("Disposition", "Discharged To")(
                lambda c: [c.any("Home", "Home with services", "Skilled nursing facility")]
            ),
            _s("Follow-up", "Follow Up Appointments")(lambda c: [f"See {c.doctor()} in {c.num(1, 3)} weeks."]),
            _s("Procedures This Admission")(lambda c: [c.any(*PROCEDURES)]),
            _s("Length of Stay")(lambda c: [f"{c.num(2, 12)} days"]),
            _s("Discharge Instructions", "Patient Instructions")(lambda c: ["Return for fever or worsening symptoms."]),
        ],
    ),
    "history_physical": (
        [
            _s("Chief Complaint", "CC", "Presenting Complaint")(lambda c: [c.story.symptom]),
            _s("History of Present Illness", "HPI")(
                lambda c: [
                    f"{c.num(25, 90)}-year-old with {c.any(*HISTORY)} presenting with {c.story.symptom} for {c.num(1, 9)} days."
                ]
            ),
            _s("Physical Examination", "Physical Exam", "Exam on Admission")(
                lambda c: [
                    f"BP {c.num(100, 170)}/{c.num(60, 99)} HR {c.num(55, 115)}",
                    "Lungs with crackles; heart regular.",
                ]
            ),
        ],
        [
            _s("Past Medical History", "PMH")(lambda c: c.some(HISTORY, 3)),
            _s("Social History")(lambda c: [c.any("Lives with spouse.", "Former smoker.", "No alcohol use.")]),
            _s("Family History")(lambda c: [c.any("Father with coronary disease.", "Noncontributory.")]),
            _s("Review of Systems", "ROS")(lambda c: ["Negative except as noted in the HPI."]),
            _s("Allergies")(lambda c: [c.any("NKDA", "Penicillin (rash)")]),
            _s("Assessment and Plan", "Impression and Plan")(
                lambda c: [f"{c.story.dx}. Admit for {c.story.treatment}; {c.story.specialty} consultation requested."]
            ),
        ],
    ),
    "progress_note": (
        [
            _s("Subjective", "S:", "Interval History")(
                lambda c: [
                    f"Returns for follow up of {c.any(*HISTORY)}. Feels {c.any('well', 'better', 'about the same')}."
                ]
            ),
            _s("Assessment", "A:", "Assessment/Plan")(
                lambda c: [f"{h}, {c.any('stable', 'improving', 'controlled')}" for h in c.some(HISTORY, 2)]
            ),
        ],
        [
            _s("Objective", "O:", "Vitals")(
                lambda c: [f"BP {c.num(100, 160)}/{c.num(60, 95)} HR {c.num(55, 100)}", "No edema."]
            ),
            _s("Plan", "P:")(lambda c: [f"Continue {c.any(*DRUGS)}.", f"Return in {c.num(1, 6)} months."]),
            _s("Medications", "Current Medications")(lambda c: c.some(DRUGS, 3)),
            _s("Health Maintenance")(lambda c: ["Influenza vaccine given today."]),
            _s("Counseling")(lambda c: ["Discussed diet and exercise for 15 minutes."]),
        ],
    ),
    "consultation": (
        [
            _s("Reason for Consultation", "Reason for Consult", "Consult Question")(
                lambda c: [f"Evaluation of {c.story.dx}."]
            ),
            _s("Recommendations", "Recommendation", "Suggestions")(
                lambda c: [
                    f"Continue {c.story.treatment}.",
                    f"Follow up in {c.story.specialty} clinic in {c.num(2, 8)} weeks.",
                ]
            ),
        ],
        [
            _s("Requesting Physician", "Referring Physician", "Consult Requested By")(lambda c: [c.doctor()]),
            _s("History of Present Illness", "History")(
                lambda c: [f"Seen at the request of {c.doctor()} for {c.story.symptom}."]
            ),
            _s("Impression", "Assessment")(lambda c: [f"{c.story.dx}; {c.story.finding}."]),
            _s("Physical Examination", "Exam")(lambda c: ["No acute distress. Heart regular."]),
            _s("Past Medical History")(lambda c: c.some(HISTORY, 2)),
            _s("Closing")(lambda c: ["Thank you for this consultation. We will follow along with you."]),
        ],
    ),
    "operative_report": (
        [
            _s("Preoperative Diagnosis", "Pre-op Diagnosis", "Diagnosis Before Surgery")(lambda c: [c.story.dx]),
            _s("Procedure", "Procedure Performed", "Operation")(lambda c: [c.any(*PROCEDURES)]),
            _s("Description of Procedure", "Details of Operation", "Technique")(
                lambda c: [
                    "The patient was brought to the operating room and prepped and draped in sterile fashion.",
                    f"{c.any('An incision was made', 'Ports were placed', 'A time-out was performed')} and the procedure completed.",
                    "Sponge and needle counts were correct.",
                ]
            ),
        ],
        [
            _s("Postoperative Diagnosis", "Post-op Diagnosis")(lambda c: [c.any("Same", c.story.dx)]),
            _s("Surgeon")(lambda c: [c.doctor()]),
            _s("Anesthesia")(lambda c: [c.any("General endotracheal", "Spinal", "MAC")]),
            _s("Estimated Blood Loss", "EBL")(lambda c: [f"{c.num(5, 300)} mL"]),
            _s("Specimens")(lambda c: [c.any(*SPECIMENS) + " to pathology"]),
            _s("Complications")(lambda c: ["None"]),
            _s("Findings")(lambda c: [c.story.finding]),
        ],
    ),
    "radiology_report": (
        [
            _s("Exam", "Examination", "Study")(lambda c: [c.any(*STUDIES)]),
            _s("Impression", "Conclusion")(
                lambda c: [c.any("No acute abnormality.", f"Findings compatible with {c.story.dx}.")]
            ),
        ],
        [
            _s("Clinical History", "Indication")(lambda c: [c.story.symptom]),
            _s("Technique")(lambda c: [c.any("Axial images with coronal reformats.", "PA and lateral views.")]),
            _s("Comparison")(lambda c: [c.any("None.", "Prior study from outside facility.")]),
            _s("Findings")(lambda c: [c.story.finding + ".", "No pleural effusion."]),
            _s("Radiologist")(lambda c: [c.doctor() + ", electronically signed"]),
        ],
    ),
    "lab_result": (
        [
            _s("Test  Result  Flag  Reference Range  Units", "Component  Value  Ref Range")(
                lambda c: [
                    f"{t}  {c.num(1, 180)}.{c.num(0, 9)}  {c.any('', 'H', 'L')}  {c.num(1, 9)}-{c.num(10, 150)}  {c.any('mg/dL', 'mmol/L', 'g/dL', 'U/L')}"
                    for t in c.some(TESTS, c.num(4, 9))
                ]
            )
        ],
        [
            _s("Specimen")(lambda c: [c.any("Blood, venous", "Serum", "Urine")]),
            _s("Collected")(
                lambda c: [f"{c.num(1, 12)}/{c.num(1, 28)}/20{c.num(19, 25)} {c.num(0, 23)}:{c.num(10, 59)}"]
            ),
            _s("Ordering Provider")(lambda c: [c.doctor()]),
            _s("Comments")(lambda c: [c.any("Specimen hemolyzed.", "Critical value called.", "None.")]),
            _s("Result Status")(lambda c: ["Final"]),
        ],
    ),
    "pathology_report": (
        [
            _s("Specimen", "Specimen Received", "Source of Specimen")(lambda c: [c.any(*SPECIMENS)]),
            _s("Final Diagnosis", "Diagnosis", "Pathologic Diagnosis")(
                lambda c: [
                    c.any(
                        "Chronic inflammation",
                        "Tubular adenoma",
                        "Basal cell carcinoma, margins clear",
                        "Benign tissue",
                    )
                ]
            ),
        ],
        [
            _s("Gross Description", "Gross")(
                lambda c: [f"Received in formalin, {c.num(1, 9)}.{c.num(0, 9)} cm tan tissue."]
            ),
            _s("Microscopic Description", "Microscopic")(lambda c: ["Sections show the described changes."]),
            _s("Clinical History")(lambda c: [c.story.symptom]),
            _s("Pathologist")(lambda c: [c.doctor()]),
            _s("Comment")(lambda c: ["Reviewed with a second pathologist, who concurs."]),
        ],
    ),
    "referral_letter": (
        [
            _s("")(
                lambda c: [
                    f"Dear {c.doctor()},",
                    (
                        f"{c.any('I am writing to refer', 'I would be grateful if you would see', 'Please see')} "
                        f"this patient with {c.story.dx}. {c.story.finding.capitalize()}."
                    ),
                ]
            ),
            _s("")(lambda c: [c.any("Sincerely,", "Kind regards,", "Yours sincerely,", "Best wishes,"), c.doctor()]),
        ],
        [
            _s("Current Medications")(lambda c: c.some(DRUGS, 2)),
            _s("")(lambda c: ["Thank you for seeing this patient.", "Recent results are enclosed."]),
            _s("Past History")(lambda c: c.some(HISTORY, 2)),
        ],
    ),
    "consent_form": (
        [
            _s("")(
                lambda c: [
                    f"I hereby consent to {c.any(*PROCEDURES)} to be performed by {c.doctor()}.",
                    "The risks, benefits and alternatives have been explained to me and I understand them.",
                ]
            ),
            _s("")(lambda c: ["Signature of Patient: ______________", "Witness: ______________"]),
        ],
        [
            _s("Anesthesia")(lambda c: ["I understand that anesthesia carries its own risks."]),
            _s("Blood Products")(lambda c: ["I consent to transfusion of blood products if needed."]),
            _s("")(lambda c: ["I voluntarily give this consent."]),
            _s("Interpreter")(lambda c: [c.any("Not required.", "Spanish interpreter present.")]),
        ],
    ),
    "prescription": (
        [
            _s("")(
                lambda c: [
                    f"Rx: {d}" + f"  Sig: {c.any('1 tab po daily', '1 cap po bid', '1 tab po qhs')}"
                    for d in c.some(DRUGS, c.num(1, 3))
                ]
            ),
            _s("")(lambda c: [f"Disp: #{c.num(10, 90)}  Refills: {c.num(0, 5)}"]),
        ],
        [
            _s("")(lambda c: [c.any("Substitution permitted", "Dispense as written")]),
            _s("Prescriber")(lambda c: [c.doctor() + "  DEA on file"]),
            _s("Allergies")(lambda c: [c.any("NKDA", "Sulfa")]),
        ],
    ),
    "insurance_billing": (
        [
            _s("Service  CPT  Amount Billed  Allowed  Paid", "Description  Code  Charges")(
                lambda c: [
                    f"{s}  {code}  ${c.num(20, 400)}.00  ${c.num(10, 300)}.00"
                    for s, code in c.rng.sample(SERVICES, c.num(2, 4))
                ]
            ),
            _s("")(lambda c: [f"Total charges: ${c.num(100, 900)}.00", f"Patient balance due: ${c.num(10, 200)}.00"]),
        ],
        [
            _s("Payer", "Insurance")(lambda c: [c.any("BlueRiver Health Plan", "Granite Mutual", "Pacific Shield")]),
            _s("")(lambda c: [c.any("THIS IS NOT A BILL.", "Please remit by the due date.")]),
            _s("Deductible")(lambda c: [f"${c.num(0, 500)}.00"]),
            _s("Remark Codes")(lambda c: ["CO-45 charge exceeds fee schedule."]),
        ],
    ),
}
_SECTIONS.update(
    {
        "authorization": (
            [
                _s("")(
                    lambda c: [
                        f"I authorize {c.any(*FACILITIES)} to disclose my protected health information"
                        f" to {c.any('Lee & Partners LLP', 'BlueRiver Health Plan', c.doctor())}.",
                    ]
                ),
                _s("Purpose of Disclosure", "Purpose")(
                    lambda c: [c.any("Legal claim", "Insurance review", "At my request", "Continuity of care")]
                ),
                _s("Expiration Date", "This Authorization Expires")(
                    lambda c: [f"{c.num(1, 12):02d}/30/20{c.num(25, 27)}"]
                ),
            ],
            [
                _s("Right to Revoke")(lambda c: ["I may revoke this authorization in writing at any time."]),
                _s("Redisclosure")(lambda c: ["Information disclosed may be redisclosed by the recipient."]),
                _s("Information to Be Disclosed")(
                    lambda c: [c.any("All records", "Discharge summaries and lab results", "Records of 2023")]
                ),
                _s("")(lambda c: ["Signature of Patient or Representative: ______________"]),
            ],
        ),
        "psychotherapy_note": (
            [
                _s("Session", "Session Content")(
                    lambda c: [
                        f"Session {c.num(2, 30)} of individual psychotherapy; explored coping with {c.any('grief', 'work stress', 'panic symptoms')}."
                    ]
                ),
                _s("Mental Status", "Affect and Mood")(
                    lambda c: [c.any("Affect constricted, mood low.", "Affect full, mood anxious.", "Mood euthymic.")]
                ),
            ],
            [
                _s("Interventions")(
                    lambda c: [c.any("CBT thought records.", "Exposure hierarchy reviewed.", "DBT skills.")]
                ),
                _s("Therapeutic Alliance")(lambda c: ["Good; patient engaged."]),
                _s("Homework")(lambda c: ["Daily mood log."]),
                _s("Risk")(lambda c: ["Denies suicidal ideation; safety plan reviewed."]),
            ],
        ),
        "substance_use_treatment": (
            [
                _s("Substance Use History", "Use History")(
                    lambda c: [
                        f"{c.any('Alcohol', 'Opioid', 'Stimulant')} use for {c.num(2, 20)} years; last use {c.num(1, 9)} days ago."
                    ]
                ),
                _s("Treatment", "Plan")(
                    lambda c: [
                        c.any("Buprenorphine induction.", "Medically supervised withdrawal.", "Naltrexone started.")
                    ]
                ),
            ],
            [
                _s("Withdrawal Assessment", "COWS / CIWA")(lambda c: [f"Score {c.num(2, 18)}."]),
                _s("Relapse Prevention")(lambda c: ["Triggers identified; sponsor contact."]),
                _s("Urine Drug Screen")(lambda c: [c.any("Positive for opiates.", "Negative.")]),
                _s("Recovery")(lambda c: [f"{c.num(5, 200)} days of sobriety."]),
            ],
        ),
        "hiv_sti_result": (
            [
                _s("Test  Result  Reference")(
                    lambda c: [
                        f"HIV-1/HIV-2 Ag/Ab  {c.any('Nonreactive', 'Reactive')}  Nonreactive",
                        f"Syphilis antibody  {c.any('Nonreactive', 'Reactive')}  Nonreactive",
                    ]
                ),
            ],
            [
                _s("")(
                    lambda c: [
                        f"Chlamydia NAAT  {c.any('Negative', 'Positive')}",
                        f"Gonorrhea NAAT  {c.any('Negative', 'Positive')}",
                    ]
                ),
                _s("HIV Viral Load")(lambda c: [c.any("Not detected", f"{c.num(40, 90000)} copies/mL")]),
                _s("Specimen")(lambda c: [c.any("Serum", "Urine")]),
            ],
        ),
        "genetic_test": (
            [
                _s("Result", "Findings")(
                    lambda c: [
                        f"Gene {c.any('BRCA1', 'BRCA2', 'MLH1', 'CFTR', 'TP53')}: variant {c.any('c.68_69delAG', 'c.5946delT', 'c.1521_1523del')},"
                        f" {c.any('heterozygous', 'homozygous')}, {c.any('pathogenic', 'of uncertain significance')}."
                    ]
                ),
                _s("Method")(lambda c: ["Next-generation sequencing with deletion/duplication analysis."]),
            ],
            [
                _s("Interpretation")(lambda c: ["Consistent with a hereditary predisposition."]),
                _s("Genetic Counseling")(lambda c: ["Recommended for the patient and first-degree relatives."]),
                _s("Genotype")(lambda c: [c.any("Heterozygous carrier.", "No pathogenic variant detected.")]),
            ],
        ),
    }
)
# Sections any clinical note may carry: the words types share.
_SHARED = {
    "meds": _s("Medications", "Current Medications", "Medication List")(lambda c: c.some(DRUGS, 3)),
    "allergies": _s("Allergies", "Drug Allergies")(lambda c: [c.any("NKDA", "Penicillin (rash)", "Codeine")]),
    "history": _s("Past Medical History", "PMH", "Medical History")(lambda c: c.some(HISTORY, 3)),
    "vitals": _s("Vital Signs", "Vitals")(
        lambda c: [f"BP {c.num(100, 170)}/{c.num(60, 99)} HR {c.num(55, 115)} T 98.{c.num(0, 9)}"]
    ),
    "labs": _s("Laboratory Data", "Pertinent Labs", "Recent Results")(
        lambda c: [f"{t} {c.num(1, 150)}" for t in c.some(TESTS, 4)]
    ),
    "plan": _s("Assessment and Plan", "Plan", "Impression and Plan")(
        lambda c: [f"{c.story.dx}; continue {c.story.treatment}.", f"{c.story.specialty} follow-up as arranged."]
    ),
    "story": _s("History of Present Illness", "History", "Clinical Summary")(
        lambda c: [f"{c.num(25, 90)}-year-old with {c.story.symptom}; {c.story.finding}."]
    ),
    "social": _s("Social History")(lambda c: [c.any("Lives alone.", "Former smoker.", "Retired teacher.")]),
}
_SHARES: dict[str, tuple[str, ...]] = {
    "discharge_summary": ("meds", "allergies", "history", "vitals", "labs", "story", "plan"),
    "history_physical": ("meds", "allergies", "social", "labs", "plan", "vitals"),
    "progress_note": ("meds", "allergies", "history", "vitals", "labs", "story", "plan", "social"),
    "consultation": ("meds", "allergies", "history", "vitals", "labs", "story", "plan", "social"),
    "operative_report": ("allergies", "history", "story", "labs"),
    "radiology_report": ("story", "history"),
    "lab_result": (),
    "pathology_report": ("story", "history"),
    "referral_letter": ("meds", "history", "allergies", "labs", "story"),
    "consent_form": ("allergies",),
    "prescription": ("allergies", "history"),
    "insurance_billing": (),
    "authorization": (),
    "psychotherapy_note": ("history", "social"),
    "substance_use_treatment": ("meds", "history", "social", "vitals"),
    "hiv_sti_result": (),
    "genetic_test": ("history",),
}
# A consultation often comes back as a letter to whoever asked for it.
_CONSULT_LETTER = [
    _s("")(
        lambda c: [
            f"Dear {c.doctor()},",
            f"Thank you for asking me to see this patient with {c.story.symptom}.",
            f"My impression is {c.story.dx}; {c.story.finding}.",
        ]
    ),
    _s("Recommendations", "My Recommendations")(
        lambda c: [f"{c.story.treatment.capitalize()}.", f"I will see the patient again in {c.num(2, 8)} weeks."]
    ),
    _s("")(lambda c: [c.any("Sincerely,", "Kind regards,", "With best wishes,"), f"{c.doctor()}, {c.story.specialty}"]),
]
_OCR_SWAPS = {"l": "1", "o": "0", "e": "c", "i": "l", "s": "5", "m": "rn", "a": "o", "n": "h"}


@dataclass(frozen=True)
class TypedText:
    doc_type: str
    title: str | None  # as printed
    title_kind: str  # "known" | "unseen" | "none"
    pages: tuple[str, ...]


def _ocr(rng: random.Random, text: str, rate: float) -> str:
    if rate <= 0:
        return text
    return "".join(_OCR_SWAPS.get(ch, ch) if ch in _OCR_SWAPS and rng.random() < rate else ch for ch in text)


def _title(rng: random.Random, doc_type: str, untitled: float) -> tuple[str | None, str]:
    roll = rng.random()
    if roll < untitled:
        return None, "none"
    if roll < untitled + (1 - untitled) * 0.4:
        title, kind = rng.choice(DEFAULT_TAXONOMY[doc_type]["titles"]), "known"
    else:
        title, kind = rng.choice(UNSEEN_TITLES[doc_type]), "unseen"
    return (title.upper() if rng.random() < 0.5 else title), kind


def _header(c: _Ctx) -> list[str]:
    r = c.rng
    mrn = "".join(r.choice("0123456789") for _ in range(8))
    lines = [r.choice(FACILITIES), r.choice(DEPARTMENTS), f"{r.randint(10, 9999)} {r.choice(STREETS)}"]
    lines += [
        f"Patient: {r.choice(NAMES).upper()}, {r.choice(FIRST).upper()}   MRN: {mrn}",
        (
            f"DOB: {r.randint(1, 12):02d}/{r.randint(1, 28):02d}/{r.randint(1930, 2015)}   "
            f"Date: {r.randint(1, 12):02d}/{r.randint(1, 28):02d}/20{r.randint(19, 25)}"
        ),
    ]
    return [line for line in lines if line]


def make_text(rng: random.Random, doc_type: str, *, untitled: float = 0.4) -> TypedText:
    """One document of ``doc_type``: title (or none), header, sections, on one to three pages."""
    c = _Ctx(rng)
    title, kind = _title(rng, doc_type, untitled)
    required, optional = _SECTIONS[doc_type]
    if doc_type == "consultation" and rng.random() < 0.3:
        required = _CONSULT_LETTER
    elif rng.random() < 0.3:  # a short or odd note keeps only part of what its type usually holds
        required = rng.sample(required, 1 if rng.random() < 0.5 else max(1, len(required) - 1))
    shared = [_SHARED[name] for name in _SHARES[doc_type]]
    chosen = [
        *required,
        *rng.sample(optional, rng.randint(0, len(optional))),
        *rng.sample(shared, rng.randint(0, len(shared))),
    ]
    rng.shuffle(chosen)
    lines: list[str] = []
    for headings, make in chosen:
        heading = rng.choice(headings)
        if heading:
            lines.append(heading.upper() if rng.random() < 0.5 else heading + ":")
        lines += make(c)
        lines.append("")
    lines.append(f"Electronically signed by {c.doctor()}")
    header = _header(c)
    if title:
        header.insert(rng.randint(1, len(header) - 2), title)
    rate = rng.choice((0.0, 0.0, 0.01, 0.03, 0.06, 0.1))
    cut = rng.choice([len(lines)] * 2 + [len(lines) // 2])
    pages = ["\n".join(header + lines[:cut])] + (["\n".join(lines[cut:])] if lines[cut:] else [])
    return TypedText(doc_type, title, kind, tuple(_ocr(rng, page, rate) for page in pages))


def make_texts(count: int, seed: int, *, untitled: float = 0.4) -> list[TypedText]:
    """``count`` documents, types in equal shares, in a seed-determined order."""
    rng = random.Random(seed)
    return [make_text(rng, DOC_TYPES[rng.randrange(len(DOC_TYPES))], untitled=untitled) for _ in range(count)]
