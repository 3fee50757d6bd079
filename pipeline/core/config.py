"""Load and validate config.yaml once into one typed object.

Every relative path in the file is taken relative to the file itself, so the same
config works whatever the current directory of the daemon or the clerk is.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pipeline.core.errors import ConfigError
from pipeline.ehr.listener_settings import HL7ListenerSettings
from pipeline.ehr.settings import EhrSettings


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class OcrSettings(_Section):
    language: str = "eng"
    dpi: int = Field(300, ge=100, le=600)
    workers: int = Field(0, ge=0, description="0 = one worker per core")
    page_timeout_seconds: float = Field(180, gt=0)
    min_text_layer_chars: int = Field(40, ge=1, description="letters/digits a page's own text needs to skip OCR")


class IntakeSettings(_Section):
    max_page_pixels: int = Field(
        180_000_000, gt=0, description="render size or embedded image size above which a page is a bomb"
    )
    max_file_mb: int = Field(1024, gt=0)
    max_pages: int = Field(
        5000, gt=0, description="more pages than this is refused (a page tree that repeats one page)"
    )


DEFAULT_MRN_LABELS = [
    r"MRN(?:\s*(?:No\.?|Number|Num\.?))?",
    r"M\.\s?R\.\s?N\.?",
    r"Medical\s+Record\s*(?:Number|No\.?|Num\.?|#)",
    r"Med(?:ical)?\.?\s*Rec(?:ord)?\.?\s*(?:No\.?|Number|#)",
    r"MR\s*(?:#|No\.?|Number)",
    r"Patient\s+ID(?:\s*(?:No\.?|Number))?",
    r"Pt\.?\s+ID(?:\s*(?:No\.?|Number))?",
    r"Hospital\s+(?:Number|No\.?)",
    r"Unit\s+(?:Number|No\.?)",
    r"Chart\s*(?:Number|No\.?|#)",
]
DEFAULT_NAME_LABELS = [
    r"Patient\s+Name",
    r"Patient'?s\s+Name",
    r"Pt\.?\s+Name",
    r"Name\s+of\s+Patient",
    r"Patient",
    r"Name",
]
DEFAULT_DOB_LABELS = [
    r"D[O0]B",
    r"D\.\s?[O0]\.\s?B\.?",
    r"Date\s+of\s+Birth",
    r"Birth\s*Date",
    r"Birthdate",
    r"Born",
]
DEFAULT_DOC_DATE_LABELS = [
    r"Date\s+of\s+Service",
    r"Service\s+Date",
    r"DOS",
    r"Report\s+Date",
    r"Date\s+of\s+Report",
    r"Discharge\s+Date",
    r"Date\s+of\s+Discharge",
    r"Admission\s+Date",
    r"Date\s+of\s+Admission",
    r"Visit\s+Date",
    r"Date\s+of\s+Visit",
    r"Procedure\s+Date",
    r"Date\s+of\s+Procedure",
    r"Exam\s+Date",
    r"Date\s+of\s+Exam",
    r"Collection\s+Date",
    r"Collected",
    r"Date\s+Collected",
    r"Date\s+Signed",
    r"Date",
]
DEFAULT_NOT_MRN_LABELS = [
    r"Acc(?:oun)?t\.?",
    r"Account",
    r"Encounter",
    r"Enc\.?",
    r"Visit",
    r"FIN",
    r"CSN",
    r"Billing",
    r"Claim",
    r"Invoice",
    r"Policy",
    r"Group",
    r"Member",
    r"Subscriber",
    r"Phone",
    r"Tel\.?",
    r"Fax",
    r"Pager",
    r"NPI",
    r"DEA",
    r"SSN",
    r"Social\s+Security",
    r"License",
    r"Order",
    r"Accession",
    r"Specimen",
    r"Requisition",
    r"Room",
    r"Bed",
    r"Zip",
]


# Words one OCR edit from a label that mean something else: an MRI or MRA number, Mrs,
# date of death / admission / injury / exam.
DEFAULT_LABEL_NEAR_MISSES = ["MRI", "MRA", "MRS", "DOD", "DOA", "DOI", "DOE"]


class ExtractionSettings(_Section):
    mrn_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_MRN_LABELS))
    mrn_pattern: str = r"\d{6,10}"
    not_mrn_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_NOT_MRN_LABELS))
    name_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_NAME_LABELS))
    dob_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_DOB_LABELS))
    doc_date_labels: list[str] = Field(default_factory=lambda: list(DEFAULT_DOC_DATE_LABELS))
    date_order: Literal["MDY", "DMY"] = "MDY"
    label_tolerance: int = Field(
        2,
        ge=0,
        le=2,
        description="OCR edits an MRN/name/DOB label word may carry: 0 none; 1 one per word of 3+ letters;"
        " 2 also two per word of 8+ letters (letter-shape confusions such as rn/m cost nothing)",
    )
    label_near_misses: list[str] = Field(
        default_factory=lambda: list(DEFAULT_LABEL_NEAR_MISSES),
        description="words that, spelt exactly, are never read as a garbled label (MRI is not MRN)",
    )

    @field_validator("mrn_labels", "not_mrn_labels", "name_labels", "dob_labels", "doc_date_labels", "mrn_pattern")
    @classmethod
    def _compiles(cls, value):
        for pattern in [value] if isinstance(value, str) else value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression {pattern!r}: {exc}") from None
        return value

    def is_mrn(self, text: str) -> bool:
        """Whether ``text`` is an MRN a clerk may file under: ASCII only (``\\d`` alone
        would take any script's digits, such as fullwidth ones) and the whole of mrn_pattern."""
        return text.isascii() and re.fullmatch(self.mrn_pattern, text, re.ASCII) is not None


class DocTypeRule(_Section):
    titles: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)
    review_below: float = Field(
        0,
        ge=0,
        le=1,
        description="a document whose best guess is this type, at a confidence below this, goes to review",
    )


DEFAULT_TAXONOMY: dict[str, dict[str, list[str]]] = {
    "discharge_summary": {
        "titles": ["Discharge Summary", "Hospital Discharge Summary", "Discharge Report"],
        "keywords": [
            "discharge diagnosis",
            "hospital course",
            "discharge medications",
            "condition at discharge",
            "discharge instructions",
            "admission date",
            "discharge date",
            "disposition",
            "follow-up",
        ],
    },
    "history_physical": {
        "titles": [
            "History and Physical",
            "History & Physical",
            "Admission H&P",
            "H&P",
            "Admission History and Physical",
        ],
        "keywords": [
            "chief complaint",
            "history of present illness",
            "past medical history",
            "review of systems",
            "physical examination",
            "social history",
            "family history",
            "assessment and plan",
        ],
    },
    "progress_note": {
        "titles": ["Progress Note", "SOAP Note", "Office Note", "Clinic Note", "Daily Progress Note"],
        "keywords": ["subjective", "objective", "assessment", "plan", "interval history", "follow up visit", "vitals"],
    },
    "consultation": {
        "titles": ["Consultation", "Consult Note", "Consultation Report", "Consultation Note"],
        "keywords": [
            "reason for consultation",
            "requesting physician",
            "thank you for this consultation",
            "referring physician",
            "recommendations",
            "consulted",
        ],
    },
    "operative_report": {
        "titles": ["Operative Report", "Operative Note", "Procedure Note", "Operation Report", "Brief Op Note"],
        "keywords": [
            "preoperative diagnosis",
            "postoperative diagnosis",
            "procedure performed",
            "anesthesia",
            "estimated blood loss",
            "surgeon",
            "findings",
            "specimens",
            "complications",
            "incision",
        ],
    },
    "radiology_report": {
        "titles": [
            "Radiology Report",
            "Diagnostic Imaging",
            "Diagnostic Imaging Report",
            "CT Report",
            "MRI Report",
            "X-ray Report",
            "Ultrasound Report",
        ],
        "keywords": [
            "impression",
            "technique",
            "comparison",
            "findings",
            "contrast",
            "radiologist",
            "views",
            "ct",
            "mri",
            "x-ray",
            "ultrasound",
        ],
    },
    "lab_result": {
        "titles": ["Laboratory Results", "Lab Report", "Laboratory Report", "Lab Results"],
        "keywords": [
            "reference range",
            "specimen",
            "collected",
            "result",
            "units",
            "hemoglobin",
            "glucose",
            "sodium",
            "potassium",
            "creatinine",
            "wbc",
            "flag",
        ],
    },
    "pathology_report": {
        "titles": ["Pathology Report", "Surgical Pathology", "Surgical Pathology Report", "Cytology Report"],
        "keywords": [
            "gross description",
            "microscopic description",
            "final diagnosis",
            "specimen received",
            "pathologist",
            "margins",
            "biopsy",
            "histologic",
        ],
    },
    "referral_letter": {
        "titles": ["Referral Letter", "Referral", "Letter of Referral"],
        "keywords": [
            "dear dr",
            "dear doctor",
            "i am writing",
            "sincerely",
            "kind regards",
            "thank you for seeing",
            "referred",
            "yours sincerely",
            "to refer",
            "enclosed",
            "regards",
        ],
    },
    "consent_form": {
        "titles": [
            "Consent for Treatment",
            "Informed Consent",
            "Consent Form",
            "Consent to Treatment",
            "Surgical Consent",
        ],
        "keywords": [
            "i consent",
            "i hereby",
            "risks",
            "benefits",
            "alternatives",
            "signature of patient",
            "witness",
            "i understand",
            "authorize",
            "voluntarily",
        ],
    },
    "prescription": {
        "titles": ["Prescription", "Medication Order", "Rx", "Medication Orders"],
        "keywords": [
            "sig",
            "dispense",
            "refills",
            "dispense as written",
            "daw",
            "quantity",
            "qty",
            "substitution",
            "prescriber",
        ],
    },
    "insurance_billing": {
        "titles": [
            "Explanation of Benefits",
            "Health Insurance Claim Form",
            "CMS-1500",
            "UB-04",
            "Billing Statement",
            "Statement of Account",
            "Insurance Claim",
        ],
        "keywords": [
            "amount billed",
            "amount due",
            "insurance",
            "payer",
            "claim",
            "deductible",
            "copay",
            "balance",
            "charges",
            "policy",
            "member id",
            "cpt",
        ],
    },
}


class ClassificationSettings(_Section):
    types: dict[str, DocTypeRule] = Field(
        default_factory=lambda: {k: DocTypeRule(**v) for k, v in DEFAULT_TAXONOMY.items()}
    )
    min_confidence: float = Field(0.5, ge=0, le=1)
    learned: bool = Field(True, description="use the model learned from the archive when one has been trained")
    min_examples: int = Field(200, ge=10, description="labelled documents needed before a model is trained")
    min_examples_per_type: int = Field(5, ge=2, description="a type with fewer labelled documents is left to the rules")
    max_examples: int = Field(
        20_000, ge=100, description="train on at most this many (a sample keeping each type's share); bounds memory"
    )
    retrain_at: str | None = Field(
        "02:00", description="local time (HH:MM) the daemon retrains when the labelled set changed; null = never"
    )

    @field_validator("retrain_at", mode="before")
    @classmethod
    def _clock_time(cls, value):
        # Unquoted 02:00 is a number to YAML (sexagesimal 120).
        if value is not None and not (isinstance(value, str) and re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value)):
            raise ValueError(f"{value!r} is not a time of day; write it in quotes as 'HH:MM' (24-hour)")
        return value

    @field_validator("types")
    @classmethod
    def _not_empty(cls, value):
        if not value:
            raise ValueError("define at least one document type")
        if "unclassified" in value:
            raise ValueError("'unclassified' is reserved for documents no type wins")
        return value


class FilingSettings(_Section):
    min_mrn_confidence: float = Field(
        60, ge=0, le=100, description="lowest tesseract confidence of the MRN's words that may file"
    )
    min_candidate_confidence: float = Field(
        0.6, ge=0, le=1, description="lowest extractor confidence of an MRN reading that may file"
    )


class RosterColumns(_Section):
    mrn: str = "mrn"
    last_name: str = "last_name"
    first_name: str = "first_name"
    dob: str = "dob"


class RosterSettings(_Section):
    """The master patient index: a CSV exported from registration."""

    path: Path | None = Field(None, description="CSV file; none = no roster checks")
    columns: RosterColumns = Field(default_factory=RosterColumns)
    dob_format: str = Field("%Y-%m-%d", description="strptime format of the DOB column")
    file_by_name_and_dob: bool = Field(
        False, description="file a document with no MRN whose name and DOB match exactly one patient"
    )
    check_digit: Literal["none", "luhn"] = Field("none", description="MRN check-digit scheme, used as evidence")


class BarcodeSettings(_Section):
    enabled: bool = True
    formats: list[str] = Field(default_factory=lambda: ["Code128", "Code39", "DataMatrix", "QRCode"])
    separator_value: str = Field("PATCHT", description="a page whose barcode reads this separates documents")
    patch_bars_alone: bool = Field(
        False, description="a page with the Kodak patch-T bar pattern along an edge separates documents, barcode or not"
    )
    whole_page: bool = Field(
        False, description="search whole pages of text for labels, not only their top 40 % (costs ~10 % more CPU)"
    )
    doc_types: dict[str, str] = Field(default_factory=dict, description="barcode value -> document type")


class SplitSettings(_Section):
    separator_sheets: bool = True
    automatic: bool = Field(False, description="also split where a page starts a new document (title or patient)")


# Words clerks search a document type by, besides the words of its own name
# (a plain query's words each match the text, the name, the MRN or these).
DEFAULT_TYPE_SYNONYMS: dict[str, list[str]] = {
    "discharge_summary": ["discharge", "dc summary", "discharge note"],
    "history_physical": ["hp", "admission note", "admission history"],  # (one-letter words are not indexed)
    "progress_note": ["progress", "soap", "office note", "clinic note", "visit note"],
    "consultation": ["consult", "consult note", "consult report"],
    "operative_report": ["op note", "op report", "operative", "operation", "surgery", "surgical", "procedure note"],
    "radiology_report": ["radiology", "imaging", "x-ray", "xray", "ct", "mri", "ultrasound"],
    "lab_result": ["lab", "labs", "laboratory", "blood work", "bloodwork"],
    "pathology_report": ["pathology", "path report", "biopsy", "cytology", "histology"],
    "referral_letter": ["referral", "letter", "referral letter"],
    "consent_form": ["consent", "informed consent"],
    "prescription": ["rx", "script", "medication order"],
    "insurance_billing": ["insurance", "billing", "bill", "claim", "eob", "invoice", "statement"],
}


class IndexSettings(_Section):
    batch_size: int = Field(200, ge=1)
    writer_timeout_seconds: float = Field(60, gt=0)
    limitmb: int = Field(256, ge=16)
    # Search budgets (CLI and web alike): past one, the search is refused with a message.
    max_query_chars: int = Field(500, ge=20, description="longest search accepted, in characters")
    min_wildcard_prefix: int = Field(2, ge=1, description="letters needed before a * or ? (diab*, not *ab*)")
    max_expansions: int = Field(300, ge=10, description="most words one wildcard or range may match")
    search_seconds: float = Field(5, gt=0, description="a search still running after this is stopped")
    type_synonyms: dict[str, list[str]] = Field(
        default_factory=lambda: {k: list(v) for k, v in DEFAULT_TYPE_SYNONYMS.items()},
        description="{doc_type: [words or phrases]} a plain search finds the type by, besides its own name",
    )


DEFAULT_IGNORE = ["*.tmp", "*.part", "*.crdownload", "~$*", ".*", "Thumbs.db", "desktop.ini", "@eaDir", "#recycle"]


class DropFolder(_Section):
    """One folder scanners drop into, and what its documents inherit."""

    path: Path
    recursive: bool = True
    polling: bool = Field(False, description="poll instead of native events (SMB/NFS shares)")
    poll_interval_seconds: float = Field(5, gt=0)
    doc_type_hint: str | None = Field(None, description="type used when the classifier cannot tell")
    source_label: str | None = Field(None, description="recorded in each document's sidecar")


class WatchSettings(_Section):
    folders: list[DropFolder] = Field(default_factory=list, description="empty = <data_root>/drop")
    quiet_seconds: float = Field(3, ge=0, description="size and mtime unchanged this long = complete")
    rescan_seconds: float = Field(60, gt=0, description="full sweep of every drop folder this often")
    extensions: list[str] = Field(default_factory=lambda: [".pdf"])
    ignore: list[str] = Field(default_factory=lambda: list(DEFAULT_IGNORE))
    keep_processed_days: int = Field(0, ge=0, description="0 = delete originals once filed and indexed")
    stop_grace_seconds: float = Field(20, ge=0, description="on SIGTERM, time to finish documents in flight")
    set_aside_after_crashes: int = Field(
        2, ge=1, description="an input in flight when the daemon died this often goes to failed/, not back in"
    )

    @field_validator("extensions")
    @classmethod
    def _dotted(cls, value):
        return [v.lower() if v.startswith(".") else "." + v.lower() for v in value]


class RetentionSettings(_Section):
    """How long documents are kept, from their document date."""

    default_years: int = Field(10, ge=1)
    years_by_type: dict[str, int] = Field(
        default_factory=dict, description="doc_type -> years; others use default_years"
    )
    age_of_majority: int = Field(18, ge=1)
    minor_years_after_majority: int = Field(
        3, ge=0, description="a minor's records are kept at least until majority plus this many years"
    )
    legal_holds: list[str] = Field(default_factory=list, description="MRNs whose documents are never purged")


class BacklogSettings(_Section):
    """Overnight runs over a folder tree of old charts (`medarchive backlog`)."""

    extensions: list[str] = Field(
        default_factory=lambda: [".pdf", ".tif", ".tiff", ".png", ".jpg", ".jpeg"],
        description="files taken from the tree; each is one document or a batch",
    )
    commit_every: int = Field(500, ge=1, description="index records per batch commit (merging waits for the end)")
    commit_seconds: float = Field(300, gt=0, description="commit at least this often, so clerks find new documents")
    limitmb: int = Field(1024, ge=64, description="index writer memory during a backlog run")
    progress_seconds: float = Field(60, gt=0, description="period of the log line when not on a terminal")
    shared_filesystem: bool = Field(
        False, description="Dask workers can read the inputs' paths; otherwise pages travel as bytes"
    )
    scheduler_timeout_seconds: float = Field(30, gt=0, description="how long to try to reach a Dask scheduler")
    set_aside_after_crashes: int = Field(
        2, ge=1, description="an input in flight when a run died this often goes to failed/, not back in"
    )


class WebSettings(_Section):
    """The clerks' web interface (`medarchive serve`)."""

    host: str = Field("127.0.0.1", description="localhost only; put a TLS reverse proxy in front for the ward")
    port: int = Field(8080, ge=1, le=65535)
    idle_timeout_minutes: float = Field(15, gt=0, description="automatic logoff after this long without a request")
    login_attempts: int = Field(5, ge=1, description="failed logins per user and address before a lockout")
    lockout_minutes: float = Field(15, gt=0)
    secure_cookies: bool = Field(
        True, description="cookies only over HTTPS (the proxy's); false for plain-HTTP testing"
    )
    page_size: int = Field(20, ge=1, le=200, description="search results per page")
    trusted_proxy: bool = Field(
        False,
        description="behind one reverse proxy: the client address comes from its "
        "X-Forwarded-For; otherwise that header is ignored",
    )
    concurrent_logins: int = Field(2, ge=1, description="password checks at a time (each takes 64 MiB and a core)")
    login_wait_seconds: float = Field(
        5, ge=0, description="how long a login waits for a password check before it is told the server is busy (503)"
    )


class DatabaseSettings(_Section):
    """The shared PostgreSQL database of a several-site deployment; no url = the embedded stores under the data root."""

    url: str | None = Field(
        None, description="postgresql://user@host:port/dbname; the password never goes here (password_file or env)"
    )
    password_file: Path | None = Field(None, description="a 0600 file holding the database password")
    pool_size: int = Field(5, ge=1, le=100, description="connections per process")

    @field_validator("url")
    @classmethod
    def _postgres_url_without_password(cls, url: str | None) -> str | None:
        if url is None:
            return None
        if not url.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql://user@host:port/dbname URL")
        userinfo = url.split("://", 1)[1].split("@", 1)[0] if "@" in url.split("://", 1)[1].split("/", 1)[0] else ""
        if ":" in userinfo or "password=" in url:
            raise ValueError("must not hold the password; put it in database.password_file or MEDARCHIVE_DB_PASSWORD")
        return url


class Config(_Section):
    """The whole configuration. ``path`` is the file it came from."""

    path: Path
    data_root: Path = Path("data")
    ocr: OcrSettings = Field(default_factory=OcrSettings)
    intake: IntakeSettings = Field(default_factory=IntakeSettings)
    extraction: ExtractionSettings = Field(default_factory=ExtractionSettings)
    classification: ClassificationSettings = Field(default_factory=ClassificationSettings)
    filing: FilingSettings = Field(default_factory=FilingSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    watch: WatchSettings = Field(default_factory=WatchSettings)
    retention: RetentionSettings = Field(default_factory=RetentionSettings)
    roster: RosterSettings = Field(default_factory=RosterSettings)
    barcodes: BarcodeSettings = Field(default_factory=BarcodeSettings)
    split: SplitSettings = Field(default_factory=SplitSettings)
    backlog: BacklogSettings = Field(default_factory=BacklogSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    hl7_listener: HL7ListenerSettings = Field(default_factory=HL7ListenerSettings)
    ehr: EhrSettings = Field(default_factory=EhrSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    site: str = Field("main", pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$", description="this site's name (several sites)")

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    def resolve(self, path: Path) -> Path:
        return path if path.is_absolute() else (self.base_dir / path).resolve()

    @property
    def root(self) -> Path:
        return self.resolve(self.data_root)

    @property
    def archive_dir(self) -> Path:
        return self.root / "archive"

    @property
    def review_dir(self) -> Path:
        return self.root / "review"

    @property
    def failed_dir(self) -> Path:
        return self.root / "failed"

    @property
    def index_dir(self) -> Path:
        return self.root / "index"

    @property
    def drop_folders(self) -> list[DropFolder]:
        """The configured drop folders with absolute paths."""
        folders = self.watch.folders or [DropFolder(path=self.root / "drop")]
        return [f.model_copy(update={"path": self.resolve(f.path)}) for f in folders]

    @property
    def drop_dir(self) -> Path:
        """The first drop folder (where samples go)."""
        return self.drop_folders[0].path

    @property
    def processing_dir(self) -> Path:
        return self.root / "processing"

    @property
    def processed_dir(self) -> Path:
        return self.root / "processed"

    @property
    def scratch_dir(self) -> Path:
        """Private working space for temp files that may hold patient data (see archive.scratch)."""
        return self.root / "tmp"

    @property
    def workers(self) -> int:
        return self.ocr.workers or os.cpu_count() or 1


def _describe(error: dict) -> str:
    key = ".".join(str(part) for part in error["loc"]) or "(top level)"
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown setting (check the spelling against config.yaml)"
    return f"{key}: {message}"


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a config file; raise ConfigError naming the bad key."""
    path = Path(path).resolve()
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config file {path} must be a mapping of settings")
    if "path" in raw:
        raise ConfigError(f"{path}: path: unknown setting (check the spelling against config.yaml)")
    try:
        return Config(path=path, **raw)
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ConfigError(f"{path}: {problems}") from None
