"""Search-page latency of the web interface over loopback on a large synthetic index.

Uses bench/index_scale.py's corpus and query mix, so the figures compare with its
WhooshIndex.search latencies query for query. With --index the index that
index_scale.py built (its --dir, with the same --docs and --seed) is served as it
is; otherwise one is built the same way in a temporary folder, which at 100,000
documents takes a long while. Serves the app with werkzeug in a thread, logs in,
and sends --requests searches of each kind. Prints p50/p95 of the server's time
(inside the WSGI app: search, audit entry, rendering) and of the round trip, and
the median server CPU time, which a noisy shared machine skews less.
Target: server p95 under 200 ms.

    python bench/web_latency.py [--index DIR] [--docs 100000] [--seed 0] [--requests 40]

The synthetic documents have no PDFs or sidecars, so the per-hit page-number lookup
finds nothing to read; on a real archive it reads one small sidecar per shown hit.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import re
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

import yaml

# Before the project's own modules: importing index_scale puts the project root on sys.path.
from index_scale import Corpus, build, make_corpus, percentile, query_mix
from werkzeug.serving import WSGIRequestHandler, make_server

from indexers.base import SearchFilters
from pipeline.archive.dataroot import open_data_root
from pipeline.archive.index import open_index
from pipeline.core.config import Config, load_config
from web.app import create_app, warm_up
from web.users import UserStore

BENCH_USER, BENCH_PASSWORD = "bench", "bench-password-1"


def make_site(folder: Path, index: Path | None) -> Config:
    """A data root whose index folder is ``index`` (left empty to build in when None)."""
    folder.joinpath("config.yaml").write_text(yaml.safe_dump({"data_root": "data", "web": {"secure_cookies": False}}))
    if index is not None:
        # A link rather than a copy: the web app only reads the index, and it is 600 MB at 100k.
        folder.joinpath("data").mkdir(mode=0o700)
        folder.joinpath("data", "index").symlink_to(index.resolve(), target_is_directory=True)
    config = load_config(folder / "config.yaml")
    open_data_root(config)
    UserStore.for_config(config).add(BENCH_USER, "clerk", BENCH_PASSWORD)
    return config


def check_index(config: Config, given: Path | None, docs: int, corpus: Corpus, seed: int) -> None:
    index = open_index(config)
    if given is None:
        build(index, docs, seed, corpus)
    elif index.count() != docs:
        # The queries are drawn from the corpus of (docs, seed); another corpus would not hold them.
        raise SystemExit(
            f"{given} holds {index.count()} documents, not --docs {docs}; "
            "give the --docs and --seed index_scale.py built it with"
        )
    index.close()


class Quiet(WSGIRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """No line per request: the bench prints its own summary."""


class Timed:
    """WSGI middleware that keeps the wall and CPU time spent inside the app for
    each request: on a shared machine the difference is time spent waiting for a core."""

    def __init__(self, app) -> None:
        self.app, self.seconds, self.cpu_seconds = app, [], []

    def __call__(self, environ, start_response):
        # The server gives each request its own thread, so thread time is this request's CPU.
        started = time.perf_counter(), time.thread_time()
        body = b"".join(self.app(environ, start_response))
        self.seconds.append(time.perf_counter() - started[0])
        self.cpu_seconds.append(time.thread_time() - started[1])
        return [body]


class Client:
    def __init__(self, port: int) -> None:
        self.port, self.cookies = port, {}

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, str]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        headers = {"Cookie": "; ".join(f"{name}={value}" for name, value in self.cookies.items())}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        # Every cookie the app sets (the session, and the device the login is remembered for).
        for cookie in response.headers.get_all("Set-Cookie") or ():
            name, _, value = cookie.split(";", 1)[0].partition("=")
            self.cookies[name] = value
        conn.close()
        return response.status, text

    def login(self) -> None:
        _, page = self.request("GET", "/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        status, _ = self.request(
            "POST", "/login", urlencode({"name": BENCH_USER, "password": BENCH_PASSWORD, "csrf_token": token})
        )
        if status != 302:
            raise SystemExit(f"login failed ({status})")


def search_path(query: str, filters: SearchFilters) -> str:
    """The search page's URL for an index query: the text in the box, the filters in their fields."""
    fields = {
        "q": query,
        "mrn": filters.mrn,
        "type": filters.doc_type,
        "status": filters.status,
        "from": filters.date_from,
        "to": filters.date_to,
    }
    return "/?" + urlencode({key: value for key, value in fields.items() if value})


def paths(corpus: Corpus, seed: int, requests: int) -> dict[str, list[str]]:
    # index_scale's first queries of each kind, repeated when more are asked for than it draws.
    return {
        kind: [search_path(*query) for query in itertools.islice(itertools.cycle(queries), requests)]
        for kind, queries in query_mix(corpus, seed).items()
    }


def run(config: Config, mix: dict[str, list[str]]) -> None:
    app = create_app(config)
    warm_up(app)  # as `medarchive serve` does before it listens
    timed = Timed(app.wsgi_app)
    app.wsgi_app = timed
    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = Client(server.server_port)
    client.login()
    client.request(
        "GET", search_path("warm up the caches", SearchFilters())
    )  # as index_scale does, and compiles the template
    print(
        f"{'kind':<14} {'server p50':>11} {'server p95':>11} {'CPU p50':>9} {'trip p50':>9} {'trip p95':>9}  found hits"
    )
    for kind, urls in mix.items():
        server_s, cpu, trips, found = [], [], [], 0
        for url in urls:
            started = time.perf_counter()
            status, page = client.request("GET", url)
            trips.append((time.perf_counter() - started) * 1000)
            server_s.append(timed.seconds[-1] * 1000)
            cpu.append(timed.cpu_seconds[-1] * 1000)
            found += status == 200 and 'class="title"' in page
        print(
            f"{kind:<14} {percentile(server_s, 0.5):>9.1f}ms {percentile(server_s, 0.95):>9.1f}ms {percentile(cpu, 0.5):>7.1f}ms "
            f"{percentile(trips, 0.5):>7.1f}ms {percentile(trips, 0.95):>7.1f}ms  {found}/{len(urls)}"
        )
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, help="an index built by index_scale.py --dir, served as it is")
    parser.add_argument("--docs", type=int, default=100_000, help="documents in the synthetic index")
    parser.add_argument("--seed", type=int, default=0, help="index_scale.py's --seed")
    parser.add_argument("--requests", type=int, default=40, help="requests of each kind")
    args = parser.parse_args()
    if args.index and not args.index.is_dir():
        parser.error(f"--index {args.index} is not a folder")
    corpus = make_corpus(args.docs, args.seed)
    with tempfile.TemporaryDirectory(prefix="medarchive-web-bench-") as tmp:
        config = make_site(Path(tmp), args.index)
        check_index(config, args.index, args.docs, corpus, args.seed)
        print(f"{args.docs} documents, {args.requests} requests per kind, page size {config.web.page_size}")
        run(config, paths(corpus, args.seed, args.requests))


if __name__ == "__main__":
    main()
