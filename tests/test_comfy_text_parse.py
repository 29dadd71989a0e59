"""ComfyUI's prompt syntax: weights of hand-written prompts, token groups, and 77-token chunk boundaries.

Expected weights are worked out by hand from ComfyUI's published rules (its sd1_clip docstrings list
some of these very cases); token ids come from transformers' CLIPTokenizer (the oracle) on each piece.
"""
from __future__ import annotations

import pytest

from models.prompt_weights import chunk_groups, parse_weights, text_pieces, token_groups, truncate_groups
from models.tokenizer import clip_tokenizer

BOS, EOS = 49406, 49407


@pytest.fixture(scope="module")
def tok():
    return clip_tokenizer()


def ids(tok, text: str) -> list[int]:
    """The oracle: transformers' ids for `text`, start/end tokens stripped."""
    full = tok(text, verbose=False)["input_ids"]
    assert full[0] == BOS and full[-1] == EOS
    return full[1:-1]


@pytest.mark.parametrize("text, expected", [
    ("a cat", [("a cat", 1.0)]),
    ("a (b:1.3) c", [("a ", 1.0), ("b", 1.3), (" c", 1.0)]),
    ("(foo)", [("foo", 1.1)]),
    ("(foo)(bar)", [("foo", 1.1), ("bar", 1.1)]),
    ("((foo))", [("foo", 1.1 * 1.1)]),
    ("((foo):1.1)", [("foo", 1.1 * 1.1)]),          # set weight 1.1 on the outer group, ×1.1 inside
    ("((foo:1.1))", [("foo", 1.1)]),                # the inner set weight replaces the outer ×1.1
    ("((a):2)", [("a", 2.0 * 1.1)]),
    ("(foo:0.0)", [("foo", 0.0)]),
    ("((foo:1.0):0.0)", [("foo", 1.0)]),
    ("foo ((((lol (cat:666) attack:100)))) baz",
     [("foo ", 1.0), ("lol ", 100.0), ("cat", 666.0), (" attack", 100.0), (" baz", 1.0)]),
    ("foo ((((lol (cat:666) attack):100))) baz",
     [("foo ", 1.0), ("lol ", 100.0 * 1.1), ("cat", 666.0), (" attack", 100.0 * 1.1), (" baz", 1.0)]),
    ("(a:b:1.5)", [("a:b", 1.5)]),                  # the number after the LAST colon
    ("(f:x)", [("f:x", 1.1)]),                      # no number: the colon stays text, ×1.1
    ("(:2)", [(":2", 1.1)]),                        # a colon at the start is no weight
    ("(cat: 1.5 )", [("cat", 1.5)]),                # float() reads surrounding spaces
    ("[d] e", [("[d] e", 1.0)]),                    # no de-emphasis brackets in ComfyUI
    ("\\(a\\) (b)", [("(a) ", 1.0), ("b", 1.1)]),  # escaped parentheses are text
    ("(x \\) y:2)", [("x ) y", 2.0)]),
    ("a (b", [("a ", 1.0), ("(b", 1.0)]),           # unclosed: kept as text at the outer weight
    ("a) b", [("a) b", 1.0)]),                      # stray close: text
    ("", []),
])
def test_weights_by_hand(text, expected):
    got = parse_weights(text)
    assert [s for s, _ in got] == [s for s, _ in expected]
    assert [w for _, w in got] == [w for _, w in expected]  # exact: same float operations as ComfyUI's


@pytest.mark.parametrize("text", ["(cat:inf)", "(cat:nan)", "((cat:1e400))"])
def test_non_finite_weight_is_an_error_naming_it(text):
    with pytest.raises(ValueError, match="finite"):
        parse_weights(text)


@pytest.mark.parametrize("segment, expected", [
    ("a embedding:foo b", ["a ", "b"]),             # missing embedding: its name is dropped
    ("embedding:foo", [""]),
    ("a embedding:foo, b", ["a ", ", b"]),          # trailing commas stay text
    ("a embedding:foo<x> y", ["a ", "<x> y"]),      # text glued with < or [ stays text
    ("a\nembedding:foo", ["a\n", ""]),
    ("noembedding:foo", ["noembedding:foo"]),       # only after whitespace
])
def test_embedding_names_are_dropped(segment, expected):
    assert text_pieces(segment) == expected


def test_token_groups_carry_segment_weights(tok):
    groups = token_groups(lambda s: ids(tok, s), "a photo of (a black cat:1.4), (dog)")
    assert groups == [
        [(t, 1.0) for t in ids(tok, "a photo of ")],
        [(t, 1.4) for t in ids(tok, "a black cat")],
        [(t, 1.0) for t in ids(tok, ", ")],
        [(t, 1.1) for t in ids(tok, "dog")],
    ]
    assert [len(g) for g in groups] == [3, 3, 1, 1]


def test_emphasis_off_reads_parentheses_as_text(tok):
    groups = token_groups(lambda s: ids(tok, s), "a (cat:1.4) \\(", emphasis=False)
    assert groups == [[(t, 1.0) for t in ids(tok, "a (cat:1.4) \\(")]]


def _layout(chunk):
    return [t for t, _ in chunk], [w for _, w in chunk]


def test_long_segment_is_cut_every_75_tokens(tok):
    text = ", ".join(f"word{i}" for i in range(60))  # one segment, far over 75 tokens
    full = ids(tok, text)
    assert len(full) > 150
    chunks = chunk_groups(token_groups(lambda s: ids(tok, s), text))
    assert len(chunks) == -(-len(full) // 75)
    for i, chunk in enumerate(chunks):
        body = full[75 * i:75 * (i + 1)]
        assert _layout(chunk)[0] == [BOS] + body + [EOS] * (77 - 1 - len(body))
        assert len(chunk) == 77


def test_short_group_moves_whole_to_the_next_chunk(tok):
    cat = ids(tok, "cat")[0]
    big_dog = ids(tok, "big dog")
    assert len(big_dog) == 2
    chunks = chunk_groups(token_groups(lambda s: ids(tok, s), "cat " * 74 + "(big dog:1.2)"))
    first, second = (_layout(c) for c in chunks)
    assert len(chunks) == 2
    assert first[0] == [BOS] + [cat] * 74 + [EOS, EOS]       # 74 + 2 > 75: the pair moves on
    assert second[0] == [BOS] + big_dog + [EOS] * 74
    assert second[1] == [1.0, 1.2, 1.2] + [1.0] * 74


def test_group_of_8_or_more_is_cut_at_the_boundary(tok):
    dog, cat = ids(tok, "dog")[0], ids(tok, "cat")[0]
    chunks = chunk_groups(token_groups(lambda s: ids(tok, s), "dog " * 70 + "(" + "cat " * 10 + ":1.2)"))
    first, second = (_layout(c) for c in chunks)
    assert first[0] == [BOS] + [dog] * 70 + [cat] * 5 + [EOS]
    assert first[1] == [1.0] * 71 + [1.2] * 5 + [1.0]
    assert second[0] == [BOS] + [cat] * 5 + [EOS] * 71
    assert second[1] == [1.0] + [1.2] * 5 + [1.0] * 71


def test_exactly_75_tokens_is_one_chunk_and_empty_prompt_is_one(tok):
    cat = ids(tok, "cat")[0]
    assert _layout(chunk_groups(token_groups(lambda s: ids(tok, s), "cat " * 75))[0])[0] == [BOS] + [cat] * 75 + [EOS]
    assert len(chunk_groups(token_groups(lambda s: ids(tok, s), "cat " * 76))) == 2
    assert _layout(chunk_groups([])[0])[0] == [BOS] + [EOS] * 76


def test_truncate_keeps_the_first_75_tokens_like_the_tokenizer(tok):
    text = ", ".join(f"word{i}" for i in range(60))
    oracle = tok(text, padding="max_length", max_length=77, truncation=True)["input_ids"]
    assert _layout(truncate_groups(token_groups(lambda s: ids(tok, s), text, emphasis=False))[0])[0] == oracle
