"""The README's nginx example is what a site copies: it must send HSTS over TLS."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def test_the_nginx_example_sends_hsts_on_every_answer():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```nginx\n(.*?)```", readme, re.S)
    assert example, "the README has no nginx example"
    tls_server = example.group(1).split("server { listen 80;")[0]
    header = re.search(r'add_header Strict-Transport-Security "max-age=(\d+)[^"]*" always;', tls_server)
    assert header and int(header.group(1)) >= 31536000
