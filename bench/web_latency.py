"""Search-page latency of the web interface over loopback on a large synthetic index.

Builds (once, cached under --cache) an index of --docs synthetic OCR-length documents
through the index writer (WhooshIndex.add in batches, then optimize), serves the app
with werkzeug in a thread, logs in, and sends --requests searches of each kind.
Prints p50/p95 of the server's time (inside the WSGI app: search, audit entry,
rendering) and of the round trip. Figures only; no thresholds.

The synthetic documents have no PDFs or sidecars, so the per-hit page-number lookup
finds nothing to read; on a real archive it reads one small sidecar per shown hit.
"""

from __future__ import annotations

import argparse
import http.client
import random
import re
import statistics
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import urlencode

import yaml
from werkzeug.serving import WSGIRequestHandler, make_server

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from indexers.base import IndexRecord  # noqa: E402
from indexers.whoosh_index import WhooshIndex  # noqa: E402
from pipeline.config import Config, load_config  # noqa: E402
from pipeline.dataroot import open_data_root  # noqa: E402
from web.app import create_app  # noqa: E402
from web.users import UserStore  # noqa: E402

LAST = ["SMITH", "JOHNSON", "WILLIAMS", "BROWN", "JONES", "GARCIA", "MILLER", "DAVIS", "RODRIGUEZ", "MARTINEZ",
        "HERNANDEZ", "LOPEZ", "GONZALEZ", "WILSON", "ANDERSON", "THOMAS", "TAYLOR", "MOORE", "JACKSON", "MARTIN",
        "LEE", "PEREZ", "THOMPSON", "WHITE", "HARRIS", "SANCHEZ", "CLARK", "RAMIREZ", "LEWIS", "ROBINSON", "WALKER",
        "YOUNG", "ALLEN", "KING", "WRIGHT", "SCOTT", "TORRES", "NGUYEN", "HILL", "FLORES", "GREEN", "ADAMS", "NELSON",
        "BAKER", "HALL", "RIVERA", "CAMPBELL", "MITCHELL", "CARTER", "ROBERTS", "OKAFOR", "KOWALSKI", "MURPHY"]
FIRST = ["JAMES", "MARY", "ROBERT", "PATRICIA", "JOHN", "JENNIFER", "MICHAEL", "LINDA", "DAVID", "ELIZABETH",
         "WILLIAM", "BARBARA", "RICHARD", "SUSAN", "JOSEPH", "JESSICA", "THOMAS", "SARAH", "CHARLES", "KAREN",
         "FRANCIS", "FRANCES", "PAUL", "NANCY", "MARK", "LISA", "ANNA", "PETER", "GRACE", "OMAR"]
WORDS = ("patient presents with chest pain shortness of breath history of hypertension diabetes mellitus type two "
         "denies fever chills nausea vomiting abdominal pain blood pressure heart rate respiratory rate temperature "
         "oxygen saturation room air physical examination alert oriented no acute distress lungs clear auscultation "
         "bilaterally regular rate rhythm murmurs abdomen soft tender distended extremities edema assessment plan "
         "continue current medications follow up clinic weeks labs ordered complete blood count metabolic panel "
         "creatinine potassium sodium glucose hemoglobin platelet white cell count normal limits elevated decreased "
         "impression findings consistent with mild moderate severe left right lower upper lobe opacity effusion "
         "fracture procedure performed under general anesthesia estimated blood loss minimal specimens sent pathology "
         "discharged home stable condition instructions return emergency department worsening symptoms signed "
         "attending physician resident nurse practitioner reviewed verified electronically").split()
RARE = ["sarcoidosis", "pheochromocytoma", "amyloidosis", "hemochromatosis", "myasthenia"]
TYPES = sorted(Config(path=Path("config.yaml")).classification.types)
BENCH_USER, BENCH_PASSWORD = "bench", "bench-password-1"


def _page(rng: random.Random, header: str, words: int) -> str:
    body = rng.choices(WORDS, k=words)
    if rng.random() < 0.002:
        body.insert(rng.randrange(len(body)), rng.choice(RARE))
    lines = [" ".join(body[i:i + 12]) for i in range(0, len(body), 12)]
    return header + "\n" + "\n".join(lines)


def _record(rng: random.Random, n: int, patients: list[tuple[str, str, str]]) -> IndexRecord:
    mrn, name, dob = rng.choice(patients)
    doc_type = rng.choice(TYPES)
    day = (date(2005, 1, 1) + timedelta(days=rng.randrange(7300))).isoformat()
    header = f"Northside General Hospital\nPatient: {name}   MRN: {mrn}   DOB: {dob}\nDate of service: {day}\n{doc_type.replace('_', ' ').upper()}"
    pages = [_page(rng, header, rng.randint(150, 420)) for _ in range(rng.choice((1, 1, 2, 3)))]
    status = "review" if rng.random() < 0.03 else "filed"
    doc_id = f"{n:016x}-1"
    return IndexRecord(
        doc_id=doc_id, status=status, mrn=mrn if status == "filed" else None, patient_name=name, dob=dob,
        doc_type=doc_type, doc_date=day, pages=len(pages), path=f"archive/{mrn}/{day}_{doc_type}_{doc_id}.pdf",
        sha256=f"{n:064x}", source_sha256=f"{n:064x}", source_file=f"scan-{n}.pdf", review_reason=None,
        content="\n\f\n".join(pages))


def _patients(rng: random.Random, count: int) -> list[tuple[str, str, str]]:
    return [(f"{rng.randrange(10**7, 10**8)}", f"{rng.choice(LAST)}, {rng.choice(FIRST)}",
             (date(1930, 1, 1) + timedelta(days=rng.randrange(30000))).isoformat()) for _ in range(count)]


def build(cache: Path, docs: int) -> tuple[Config, list[tuple[str, str, str]]]:
    site = cache / f"site-{docs}"
    site.mkdir(mode=0o700, parents=True, exist_ok=True)
    config_path = site / "config.yaml"
    config_path.write_text(yaml.safe_dump({"data_root": "data", "web": {"secure_cookies": False}}))
    config = load_config(config_path)
    open_data_root(config)
    rng = random.Random(docs)
    patients = _patients(rng, max(10, docs // 5))
    marker = site / "built"
    if not marker.exists():
        started = time.perf_counter()
        index = WhooshIndex(config.index_dir, config.index)
        batch = 5000
        for first in range(0, docs, batch):
            index.add((_record(rng, n, patients) for n in range(first, min(first + batch, docs))), merge=False)
            print(f"  indexed {min(first + batch, docs)}/{docs}", file=sys.stderr)
        index.optimize()
        marker.write_text(str(docs))
        print(f"built an index of {docs} documents in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    store = UserStore.for_config(config)
    if store.get(BENCH_USER) is None:
        store.add(BENCH_USER, "clerk", BENCH_PASSWORD)
    return config, patients


class Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line per request: the bench prints its own summary."""


class Timed:
    """WSGI middleware that keeps the time spent inside the app for each request."""

    def __init__(self, app) -> None:
        self.app, self.seconds = app, []

    def __call__(self, environ, start_response):
        started = time.perf_counter()
        body = b"".join(self.app(environ, start_response))
        self.seconds.append(time.perf_counter() - started)
        return [body]


class Client:
    def __init__(self, port: int) -> None:
        self.port, self.cookie = port, ""

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": self.cookie}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        cookie = response.getheader("Set-Cookie")
        if cookie:
            self.cookie = cookie.split(";", 1)[0]
        conn.close()
        return response.status, text

    def login(self) -> None:
        _, page = self.request("GET", "/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, _ = self.request("POST", "/login", urlencode({"name": BENCH_USER, "password": BENCH_PASSWORD, "csrf_token": token}))
        if status != 302:
            raise SystemExit(f"login failed ({status})")


def query_mix(rng: random.Random, patients: list[tuple[str, str, str]]) -> dict[str, dict]:
    mrn, name, _ = rng.choice(patients)
    year = rng.randrange(2005, 2024)
    return {
        "mrn lookup": {"q": mrn},
        "name + type": {"name": name.split(",")[0].lower(), "type": rng.choice(TYPES)},
        "phrase": {"q": f'"{rng.choice(["chest pain", "blood pressure", "shortness of breath", "general anesthesia"])}"'},
        "rare term": {"q": rng.choice(RARE)},
        "common + dates": {"q": rng.choice(["patient", "pain", "blood"]), "from": f"{year}-01-01", "to": f"{year + 1}-12-31"},
    }


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] * 1000


def run(config: Config, patients: list, requests: int) -> None:
    app = create_app(config)
    timed = Timed(app.wsgi_app)
    app.wsgi_app = timed
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = Client(server.server_port)
    client.login()
    rng = random.Random(7)
    for _ in range(5):  # warm the OS cache and Whoosh's first-open costs
        for params in query_mix(rng, patients).values():
            client.request("GET", "/?" + urlencode(params))
    results: dict[str, tuple[list[float], list[float], list[int]]] = {}
    for _ in range(requests):
        for kind, params in query_mix(rng, patients).items():
            started = time.perf_counter()
            status, page = client.request("GET", "/?" + urlencode(params))
            trip = time.perf_counter() - started
            server_s, trips, hits = results.setdefault(kind, ([], [], []))
            server_s.append(timed.seconds[-1])
            trips.append(trip)
            hits.append(page.count('class="title"') if status == 200 else -1)
    server.shutdown()
    print(f"{'kind':<16} {'n':>4} {'server p50':>11} {'server p95':>11} {'trip p50':>9} {'trip p95':>9} {'hits/page':>10}")
    for kind, (server_s, trips, hits) in results.items():
        print(f"{kind:<16} {len(server_s):>4} {_pct(server_s, 50):>9.1f}ms {_pct(server_s, 95):>9.1f}ms "
              f"{_pct(trips, 50):>7.1f}ms {_pct(trips, 95):>7.1f}ms {statistics.mean(hits):>10.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000, help="documents in the synthetic index")
    parser.add_argument("--requests", type=int, default=40, help="requests of each kind")
    parser.add_argument("--cache", type=Path, default=Path("/tmp/medarchive-web-bench"), help="where the index is kept between runs")
    args = parser.parse_args()
    config, patients = build(args.cache, args.docs)
    print(f"{args.docs} documents, {args.requests} requests per kind, page size {config.web.page_size}")
    run(config, patients, args.requests)


if __name__ == "__main__":
    main()
