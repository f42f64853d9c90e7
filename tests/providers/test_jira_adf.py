"""Atlassian Document Format ↔ plain text: our own text survives a round trip exactly; ADF
written by people (lists, code, mentions, tables) reads as readable text.

Why not a library: PyPI's `md2adf` (markdown → ADF) and `pyadf` (ADF → markdown) were tried on
our own text and lose it: `line1\\nline2` comes back `line1 line2`, `a\\n\\n\\nb` as `a\\n\\nb`,
leading spaces and a trailing newline are stripped, and `__init__` becomes `**init**` (plain
text is not markdown). Every echo of such a body would look like an edit.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from integrations.providers.jira import adf_to_text, text_to_adf


def p(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "paragraph", "content": list(content)}


def t(text: str, **marks: Any) -> dict[str, Any]:
    node: dict[str, Any] = {"type": "text", "text": text}
    if marks:
        node["marks"] = [{"type": name} for name in marks]
    return node


def doc(*content: dict[str, Any]) -> dict[str, Any]:
    return {"type": "doc", "version": 1, "content": list(content)}


BR = {"type": "hardBreak"}


@pytest.mark.parametrize(
    ("text", "adf"),
    [
        ("", doc()),
        ("one line", doc(p(t("one line")))),
        ("a\nb", doc(p(t("a"), BR, t("b")))),
        ("a\n\nb", doc(p(t("a")), p(t("b")))),
        ("a\n\n\nb", doc(p(t("a")), p(BR, t("b")))),
        ("trailing\n", doc(p(t("trailing"), BR))),
        ("\n\n", doc(p(), p())),
        ("  indented *not* __markdown__", doc(p(t("  indented *not* __markdown__")))),
    ],
    ids=["empty", "line", "break", "paragraphs", "three-newlines", "trailing", "blank", "spaces"],
)
def test_our_text_maps_to_this_adf_and_back(text: str, adf: dict[str, Any]):
    assert text_to_adf(text) == adf
    assert adf_to_text(adf) == text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200))
def test_any_text_survives_a_round_trip_exactly(text: str):
    assert adf_to_text(text_to_adf(text)) == text


@given(st.text(alphabet="ab \n", max_size=40))
def test_adf_we_write_has_no_empty_text_nodes(text: str):
    """Jira refuses a document with an empty text node."""
    for paragraph in text_to_adf(text)["content"]:
        assert all(node.get("text") != "" for node in paragraph["content"])


MENTION = {"type": "mention", "attrs": {"id": "5b10ac8d82e05b22cc7d4ef5", "text": "@Ann Lee"}}


@pytest.mark.parametrize(
    ("adf", "text"),
    [
        (None, ""),
        (doc(p(t("bold", strong=True), t(" and "), t("code", code=True))), "bold and code"),
        (doc({"type": "heading", "attrs": {"level": 2}, "content": [t("Steps")]}), "Steps"),
        (
            doc(
                {
                    "type": "bulletList",
                    "content": [
                        {"type": "listItem", "content": [p(t("one"))]},
                        {"type": "listItem", "content": [p(t("two"))]},
                    ],
                }
            ),
            "- one\n- two",
        ),
        (
            doc(
                {
                    "type": "orderedList",
                    "attrs": {"order": 3},
                    "content": [
                        {"type": "listItem", "content": [p(t("three"))]},
                        {"type": "listItem", "content": [p(t("four"), BR, t("more"))]},
                    ],
                }
            ),
            "3. three\n4. four\n   more",
        ),
        (
            doc({"type": "codeBlock", "attrs": {"language": "python"}, "content": [t("x = 1")]}),
            "```python\nx = 1\n```",
        ),
        (doc(p(t("ping "), MENTION, t(" please"))), "ping @Ann Lee please"),
        (doc(p({"type": "mention", "attrs": {"id": "abc"}})), "@abc"),
        (doc(p({"type": "emoji", "attrs": {"shortName": ":smile:", "text": "😄"}})), "😄"),
        (
            doc(p({"type": "inlineCard", "attrs": {"url": "https://x.example/1"}})),
            "https://x.example/1",
        ),
        (doc({"type": "blockquote", "content": [p(t("quoted"))]}), "> quoted"),
        (doc(p(t("a")), {"type": "rule"}, p(t("b"))), "a\n\n---\n\nb"),
        (
            doc({"type": "panel", "attrs": {"panelType": "info"}, "content": [p(t("note"))]}),
            "note",
        ),
        (
            doc(
                {
                    "type": "table",
                    "content": [
                        {
                            "type": "tableRow",
                            "content": [
                                {"type": "tableHeader", "content": [p(t("k"))]},
                                {"type": "tableHeader", "content": [p(t("v"))]},
                            ],
                        },
                        {
                            "type": "tableRow",
                            "content": [
                                {"type": "tableCell", "content": [p(t("a"))]},
                                {"type": "tableCell", "content": [p(t("1"))]},
                            ],
                        },
                    ],
                }
            ),
            "k | v\na | 1",
        ),
        (doc({"type": "mediaSingle", "content": [{"type": "media", "attrs": {}}]}), "[attachment]"),
        (doc({"type": "someFutureNode", "content": [p(t("kept"))]}), "kept"),
        ("h1. wiki markup from a v2 payload", "h1. wiki markup from a v2 payload"),
    ],
    ids=[
        "null",
        "marks",
        "heading",
        "bullets",
        "ordered",
        "code",
        "mention",
        "mention-id",
        "emoji",
        "card",
        "quote",
        "rule",
        "panel",
        "table",
        "media",
        "unknown-node",
        "v2-string",
    ],
)
def test_adf_written_by_people_reads_as_text(adf: Any, text: str):
    assert adf_to_text(adf) == text


def test_a_document_nested_without_end_is_cut_not_followed():
    node: dict[str, Any] = p(t("deep"))
    for _ in range(2000):
        node = {"type": "blockquote", "content": [node]}
    assert isinstance(adf_to_text(doc(node)), str)


NODE_TYPES = [
    "paragraph",
    "heading",
    "bulletList",
    "orderedList",
    "listItem",
    "codeBlock",
    "blockquote",
    "table",
    "tableRow",
    "tableCell",
    "panel",
    "mention",
    "emoji",
    "date",
    "status",
    "inlineCard",
    "mediaSingle",
    "rule",
    "hardBreak",
    "unknownThing",
]
JSONISH = st.none() | st.booleans() | st.integers() | st.text(max_size=5)
ADF_TREES = st.recursive(
    st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=10)}) | JSONISH,
    lambda children: st.fixed_dictionaries(
        {"type": st.sampled_from(NODE_TYPES)},
        optional={
            "content": st.lists(children, max_size=4) | JSONISH,
            "attrs": st.dictionaries(
                st.sampled_from(["text", "id", "order", "language", "url", "timestamp"]),
                JSONISH,
                max_size=3,
            )
            | JSONISH,
        },
    ),
    max_leaves=30,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ADF_TREES, max_size=4))
def test_any_document_jira_might_send_reads_as_text_without_failing(content: list[Any]):
    """A description is the tracker's data: whatever nodes, attributes or junk it holds, it
    reads as text (never an exception that would stop the issue from syncing)."""
    assert isinstance(adf_to_text({"type": "doc", "version": 1, "content": content}), str)
