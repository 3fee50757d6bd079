"""The query tree (indexers/query_tree.py) as a Whoosh query.

The tree becomes the syntax nodes Whoosh's parser would have made of the same text, and
Whoosh's own back half turns them into a query: the multifield expansion of words without
a field (content, name, MRN: query.make_parser), then each node's analysis. So a query
means on Whoosh what it means on PostgreSQL, and is what Whoosh's parser made of it before.
"""

from __future__ import annotations

import warnings

from indexers import query_tree as qt

with warnings.catch_warnings():
    warnings.simplefilter("ignore", SyntaxWarning)
    warnings.simplefilter("ignore", DeprecationWarning)
    from whoosh.qparser import MultifieldPlugin, QueryParser, syntax
    from whoosh.qparser.plugins import PhrasePlugin, PrefixPlugin, WildcardPlugin
    from whoosh.query import NullQuery, Query


def to_whoosh(node: qt.Node, parser: QueryParser) -> Query:
    """The tree as the query parser.parse() returns for the same search."""
    group = syntax.AndGroup([_syntax(node)])
    for plugin in parser.plugins:
        if isinstance(plugin, MultifieldPlugin):
            group = plugin.do_multifield(parser, group)
    query = group.query(parser)
    return query.normalize() if query else NullQuery


def _syntax(node: qt.Node) -> syntax.SyntaxNode:
    if isinstance(node, qt.And):
        return syntax.AndGroup([_syntax(child) for child in node.children])
    if isinstance(node, qt.Or):
        return syntax.OrGroup([_syntax(child) for child in node.children])
    if isinstance(node, qt.Not):
        return syntax.NotGroup([_syntax(node.child)])
    if isinstance(node, qt.Word):
        leaf: syntax.SyntaxNode = syntax.WordNode(node.text)
    elif isinstance(node, qt.Phrase):
        leaf = PhrasePlugin.PhraseNode(" ".join(node.words), 0, node.slop)
    elif isinstance(node, qt.Wildcard):
        if node.is_prefix and len(node.pattern) > 1:
            leaf = PrefixPlugin.PrefixNode(node.pattern[:-1])
        else:
            leaf = WildcardPlugin.WildcardNode(node.pattern)
    elif isinstance(node, qt.Range):
        leaf = syntax.RangeNode(node.start, node.end, False, False)
    else:
        leaf = WildcardPlugin.WildcardNode("*")
    field = getattr(node, "field", None)
    if field:
        leaf.set_fieldname(field)
    boost = getattr(node, "boost", 1.0)
    if boost != 1.0:
        if not field:
            # The boost goes on the group the word becomes in every default field, as Whoosh's parser puts it.
            group = syntax.AndGroup([leaf])
            group.set_boost(boost)
            leaf.startchar = leaf.endchar = 0
            return group
        leaf.set_boost(boost)
    # Where the words were in the query's text: Whoosh copies it onto its queries; nothing reads it.
    leaf.startchar = leaf.endchar = 0
    return leaf
