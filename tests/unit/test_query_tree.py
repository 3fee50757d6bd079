"""One query language (issue 26): the clerk's search parsed once into a tree, which the Whoosh
index reads exactly as Whoosh's own parser read the same text before."""

from __future__ import annotations

import warnings

import pytest

from indexers.base import IndexFailure
from indexers.query_tree import And, Everything, Not, Or, Phrase, Range, Wildcard, Word, parse
from indexers.whoosh.query import make_parser
from indexers.whoosh.schema import build_schema
from indexers.whoosh.tree import to_whoosh

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from whoosh.qparser import MultifieldParser

QUERIES = [
    "hypertension",
    "chest pain",
    '"chest pain"',
    "DOE, JANE",
    "name:doe",
    "patient:doe",
    "text:smith",
    "mrn:00482913",
    "doc_type:lab_result",
    "diab*",
    "wo001?x",
    "chest *",
    "chest AND NOT glucose",
    "hypertension OR ulcer AND diabetic",
    "(chest OR referral) smith",
    "NOT chest",
    'chest NOT "chest pain"',
    "doc_date:[2024-02-01 TO 2024-02-29]",
    "content:[a TO z]",
    "x-ray kim",
    "king h and p",
    "king H/P",
    '"atrial fibrillation" consult',
    "10:30 follow",
    "the",
    "name:smith^3 pain",
    '"pain in the chest"~2',
    "pain^2.5 chest",
    "Glucose 182 mg/dL",
]


def whoosh_parser() -> MultifieldParser:
    return make_parser(build_schema())


@pytest.mark.parametrize("query", QUERIES)
def test_the_tree_is_what_whooshs_parser_made_of_the_text(query: str) -> None:
    from indexers.query_tree import _JOINED_INITIALS

    parser = whoosh_parser()
    tree = parse(query)
    assert tree is not None
    assert to_whoosh(tree, parser) == parser.parse(_JOINED_INITIALS.sub(r"\1\2", query))


@pytest.mark.parametrize(
    ("query", "tree"),
    [
        ("a b OR c", And((Word("a"), Or((Word("b"), Word("c")))))),
        ("aa AND bb OR cc", Or((And((Word("aa"), Word("bb"))), Word("cc")))),
        ("NOT a b", And((Not(Word("a")), Word("b")))),
        ('name:"jane doe"', Phrase(("jane", "doe"), "patient_name")),
        ("text:diab*", Wildcard("diab*", "content")),
        ("doc_date:[2024 TO]", Range("doc_date", "2024", None)),
        ("[a TO b]", Range("content", "a", "b")),
        ("mrn:*", Everything("mrn")),
        ("(a OR b", Or((Word("a"), Word("b")))),
        ('"unclosed', Word("unclosed")),
        ("a )b", And((Word("a"), Word("b")))),
        ("OR a", Word("a")),
        ("mrn:", None),
        ("  ", None),
        ("*", None),
        ("h&p note", And((Word("hp"), Word("note")))),
        ("10:30", Word("10:30")),
    ],
)
def test_precedence_and_leniency(query: str, tree) -> None:
    assert parse(query) == tree


def test_a_stored_only_field_is_refused_with_the_searchable_ones() -> None:
    with pytest.raises(IndexFailure, match=r"cannot understand the search 'pages:2'.*one of content, dob, doc_date"):
        parse("pages:2")
