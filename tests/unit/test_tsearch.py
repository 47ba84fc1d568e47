"""PostgreSQL's documents and queries hold the tokens SQLite's FTS5 index holds."""

from __future__ import annotations

import pytest

from shopai.search import tsearch


def test_documents_hold_the_index_text_weighted_by_field():
    document = tsearch.document("Stratos Wi-Fi 6", "Networking", "Café 索尼无线")
    assert document == (
        "'stratos':1A 'wi':2A 'fi':3A '6':4A 'wifi':5A 'networking':6B "
        "'cafe':7D '索尼':8D '尼无':9D '无线':10D"
    )


def test_repeated_words_keep_their_positions_up_to_postgresql_s_limit():
    document = tsearch.document("echo", "", " ".join(["echo"] * 400))
    positions = document.removeprefix("'echo':").split(",")
    assert len(positions) == tsearch.MAX_POSITIONS
    assert positions[:2] == ["1A", "2D"]


@pytest.mark.parametrize(
    ("q", "every_field"),
    [
        ("Café", "'cafe':*"),
        ("a", "'a'"),  # one letter: a whole word, not a prefix
        ("wi-fi 7", "((('wi':* & 'fi':*) | 'wifi':*) & '7')"),
        ("降噪耳机", "('降噪' & ('噪耳' | '降噪') & ('噪耳' | '耳机') & '耳机')"),
        ("无", "'无':*"),
        ("abc_def", "'abc' <-> 'def':*"),
        ("it's", "('it':* & 's')"),
        ('NOT "x" | !y', "('not':* & 'x' & 'y')"),  # operators typed are plain words
    ],
)
def test_queries_are_fts5_s_terms_in_tsquery_syntax(q, every_field):
    assert tsearch.tsquery(q)[0] == every_field


def test_name_queries_ask_for_the_name_s_weight():
    every_field, in_names, not_in_names = tsearch.tsquery("abc_def kit")
    assert in_names == "('abc':A <-> 'def':*A & 'kit':*A)"
    assert not_in_names == f"{every_field} & !({in_names})"


@pytest.mark.parametrize("q", ["", "_", "hello _", "¿?"])
def test_queries_without_letters_match_nothing_as_in_fts5(q):
    assert tsearch.tsquery(q) == (tsearch.NOTHING,) * 3
