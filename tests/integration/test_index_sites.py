"""Several sites on one PostgreSQL index (issue 26): the CLI picks the database when
database.url is set; `reindex --site` rebuilds only that site's rows, `verify --site` compares
one site's documents, `search --site` narrows to one site."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path

import pytest

from pipeline.archive.index import open_index
from pipeline.core.config import load_config
from tests.conftest import invoke_cli, json_lines, write_config
from tests.unit.test_sidecar import WRITTEN


def archive_document(root: Path, doc_id: str, site: str | None, mrn: str, text: str) -> None:
    """A document in the archive as a site files it: its PDF and its sidecar (with the site)."""
    (root / "archive").mkdir(exist_ok=True, mode=0o700)
    folder = root / "archive" / mrn
    folder.mkdir(mode=0o700)
    pdf = folder / f"2024-03-05_lab_report_{doc_id}.pdf"
    pdf.write_bytes(b"%PDF-1.4 " + doc_id.encode())
    pdf.chmod(0o600)
    sidecar = copy.deepcopy(WRITTEN)
    sidecar.update(
        doc_id=doc_id,
        mrn=mrn,
        sha256=hashlib.sha256(pdf.read_bytes()).hexdigest(),
        path=str(pdf.relative_to(root)),
        page_texts=[{**WRITTEN["page_texts"][0], "text": text, "barcodes": []}],
        history=[],
    )
    sidecar["source"] = {**WRITTEN["source"], "sha256": hashlib.sha256(doc_id.encode()).hexdigest()}
    if site is not None:
        sidecar["site"] = site
    path = pdf.with_suffix(".json")
    path.write_text(json.dumps(sidecar))
    path.chmod(0o600)


@pytest.fixture
def shared(tmp_path: Path, pg_url: str) -> Path:
    config_path = write_config(tmp_path, database={"url": pg_url}, site="north")
    invoke_cli(config_path, "db", "upgrade", check=True)
    root = tmp_path / "data"
    root.mkdir(mode=0o700, exist_ok=True)
    archive_document(root, "north-1", "north", "1000001", "anemia follow up north clinic")
    archive_document(root, "south-1", "south", "1000002", "anemia follow up south clinic")
    archive_document(root, "old-1", None, "1000003", "anemia from before sites")
    return config_path


def test_reindex_and_search_per_site_on_the_shared_index(shared: Path) -> None:
    assert "reindexed 3 document(s)" in invoke_cli(shared, "reindex", check=True).stdout
    index = open_index(load_config(shared))
    assert type(index.engine).__name__ == "PostgresIndex"
    found = json_lines(invoke_cli(shared, "search", "anemia", "--json", check=True).stdout)
    assert sorted(row["doc_id"] for row in found) == ["north-1", "old-1", "south-1"]
    south = json_lines(invoke_cli(shared, "search", "anemia", "--site", "south", "--json", check=True).stdout)
    assert [row["doc_id"] for row in south] == ["south-1"]
    main = json_lines(invoke_cli(shared, "search", "anemia", "--site", "main", "--json", check=True).stdout)
    assert [row["doc_id"] for row in main] == ["old-1"]  # archived before sites: the default site

    # The south site's rows go astray; rebuilding the north site's leaves them as they are.
    index.delete(["south-1"])
    done = invoke_cli(shared, "reindex", "--site", "north", check=True)
    assert "reindexed 1 document(s) of site north" in done.stdout
    assert index.get("south-1") is None
    verified = invoke_cli(shared, "verify", "--site", "north")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    verified = invoke_cli(shared, "verify", "--site", "south")
    assert verified.returncode != 0
    assert "not_indexed" in verified.stdout and "south-1" in verified.stdout
    assert (
        "reindexed 1 document(s) of site south" in invoke_cli(shared, "reindex", "--site", "south", check=True).stdout
    )
    assert invoke_cli(shared, "verify").returncode == 0
    index.close()


def test_a_site_rebuild_is_refused_by_the_embedded_index(tmp_path: Path) -> None:
    config_path = write_config(tmp_path)
    done = invoke_cli(config_path, "reindex", "--site", "north")
    assert done.returncode != 0
    assert "keeps no sites" in done.stderr


def test_the_web_search_has_a_site_facet(shared: Path) -> None:
    from tests.web.fixtures import app_for, login
    from web.users import UserStore

    config = load_config(
        write_config(
            shared.parent,
            database={"url": load_config(shared).database.url},
            site="north",
            web={"secure_cookies": False},
        )
    )
    invoke_cli(shared, "reindex", check=True)
    UserStore.for_config(config).add("cal", "clerk", "cal-clerk-pass")
    client = app_for(config).test_client()
    assert login(client, "cal", "cal-clerk-pass").status_code == 302
    every = client.get("/?q=anemia")
    assert every.status_code == 200
    assert all(doc in every.text for doc in ("north-1", "south-1", "old-1"))
    assert 'name="site"' in every.text
    south = client.get("/?q=anemia&site=south")
    assert "south-1" in south.text and "north-1" not in south.text
    assert client.get("/?q=anemia&site=%27%3B--").status_code == 400
