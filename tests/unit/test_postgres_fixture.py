"""The throwaway cluster the PostgreSQL tests run against starts and hands out fresh databases."""

from __future__ import annotations

import psycopg


def test_each_test_gets_an_empty_database(pg_url):
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone() == (0,)
        conn.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
