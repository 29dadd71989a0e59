"""api.strict_json: what the routes parse and how replies are written."""
import json
from pathlib import Path

import pytest

from api.strict_json import (MAX_DEPTH, MAX_INT, JSONRefused, dumps, finite_copy, nesting_depth,
                             parse)

DATA = Path(__file__).parent / "data"
EXAMPLES = sorted(DATA.glob("stable_cascade__*.json")) + [
    Path(__file__).parent.parent / "web" / "workflows" / "default.json"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_real_workflows_pass_even_wrapped_in_a_prompt_body(path):
    doc = json.loads(path.read_text())
    body = {"prompt": doc, "extra_data": {"extra_pnginfo": {"workflow": doc}}}
    raw = json.dumps(body).encode()
    assert parse(raw) == body
    assert nesting_depth(raw.decode()) < MAX_DEPTH // 4  # ample headroom for real documents


@pytest.mark.parametrize("text,depth", [
    ("1", 0), ("[]", 1), ('{"a": [1, {"b": []}]}', 4), ('["[[[", "]]]]]"]', 1),
    ('{"k\\"[": "\\\\[[["}', 1), ('["\\u005b\\u005b"]', 1), ("[" * 1000, 1000),
])
def test_nesting_depth_ignores_brackets_in_strings(text, depth):
    assert nesting_depth(text) == depth


def test_depth_limit_is_exact():
    assert parse("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    with pytest.raises(JSONRefused, match=f"nested {MAX_DEPTH + 1} levels deep; the limit is "
                                          f"{MAX_DEPTH}"):
        parse("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("raw,where", [
    ('{"a": NaN}', "'a': NaN"), ('[1, {"b": [Infinity]}]', "'[1].b[0]': Infinity"),
    ('{"x": -Infinity}', "'x': -Infinity"), ('{"f": 1e309}', "'f': 1e309"),
    ('{"i": %d}' % (MAX_INT + 1), "'i': 18446744073709551616"),
    ('{"i": -%d}' % (MAX_INT + 1), "'i': -18446744073709551616"),
    ('{"s": "\\ud800"}', "'s': string contains a lone UTF-16 surrogate (\\ud800)"),
    ('{"\\udc00": 1}', "'\\udc00'"),
])
def test_refusals_name_the_path(raw, where):
    with pytest.raises(JSONRefused) as info:
        parse(raw.encode())
    assert where in str(info.value)


def test_valid_values_at_the_edges_pass():
    raw = '{"seed": %d, "neg": -%d, "f": 1.7976931348623157e308, "pair": "\\ud83d\\udca5"}' % (
        MAX_INT, MAX_INT)
    assert parse(raw) == {"seed": MAX_INT, "neg": -MAX_INT, "f": 1.7976931348623157e308,
                          "pair": "\U0001f4a5"}


@pytest.mark.parametrize("raw", [b"\xff{}", b'{"a": "\xed\xa0\x80"}', b"{", b"[1,]", b"",
                                 b'{"a": ' + b"9" * 5000 + b"}"])
def test_malformed_is_refused_with_a_value_error(raw):
    with pytest.raises(JSONRefused):
        parse(raw)


def test_dumps_and_reply_bodies_never_carry_bare_non_finite_numbers():
    value = {"a": [1.5, float("inf"), {"b": float("nan")}], "c": "NaN"}
    text = dumps(value)
    assert json.loads(text) == {"a": [1.5, None, {"b": None}], "c": "NaN"}
    assert finite_copy(value) == {"a": [1.5, None, {"b": None}], "c": "NaN"}


@pytest.mark.parametrize("tail", [b"", b"\\", b"[[["])
def test_unterminated_string_full_of_escaped_quotes_is_refused_in_linear_time(tail):
    """The depth scan runs on the event loop: '"' + '\\"' * n used to cost n² regex steps
    (50,000 pairs: ~20 s with every other request waiting)."""
    import time
    raw = b'{"prompt": "' + b'\\"' * 50_000 + tail
    started = time.monotonic()
    with pytest.raises(JSONRefused, match="malformed JSON"):
        parse(raw)
    assert time.monotonic() - started < 2.0
    assert nesting_depth('["a\\"]"[[') == 3  # brackets after a closed string still count
