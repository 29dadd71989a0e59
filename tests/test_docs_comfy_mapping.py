"""docs/comfy_mapping.md cannot drift from the registry, and the README's ComfyUI example works as written.

The mapping page has one row per ComfyUI class (tables headed "ComfyUI class"): every class of the family has
exactly one row, and every class a row names exists. The side-by-side example's own nodes and its JSON are
checked against the registry too. The README's curl line is expanded by bash exactly as a reader's shell
would, then sent to a demo server.
"""
from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from nodes.comfy import COMFY_NODES
from nodes.registry import NODES
from runtime.env import Env
from tests.server_harness import http, make_config, running_server

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "comfy_mapping.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
SHARED_BY_NAME = ("LoadImage", "SaveImage", "PreviewImage")  # our classes, ComfyUI's names (nodes/images.py)
EDITOR_ONLY = ("Note", "MarkdownNote", "Reroute", "PrimitiveNode")  # resolved by the converter, never run
README_PORT = "http://127.0.0.1:8188"


def tables(text: str) -> list[list[list[str]]]:
    """Every markdown table as rows of cells (header first, the |---| line dropped)."""
    found, current = [], []
    for line in text.splitlines() + [""]:
        if line.startswith("|"):
            cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if not all(re.fullmatch(r":?-+:?", c) for c in cells):
                current.append(cells)
        elif current:
            found.append(current)
            current = []
    return found


def names_in(cell: str) -> list[str]:
    """The `code` spans of a cell."""
    return re.findall(r"`([^`]+)`", cell)


def class_rows() -> list[str]:
    """The class named in the first column of every row of the "ComfyUI class" tables."""
    rows = []
    for table in tables(DOC):
        if table[0][0].lower() == "comfyui class":
            for row in table[1:]:
                named = names_in(row[0])
                assert len(named) == 1, f"a class row must name one class in its first column: {row[0]!r}"
                rows.append(named[0])
    return rows


def test_every_comfy_class_has_exactly_one_row():
    rows = class_rows()
    expected = set(COMFY_NODES) | set(SHARED_BY_NAME)
    assert sorted(expected - set(rows)) == [], "classes without a row in docs/comfy_mapping.md"
    duplicated = sorted({n for n in rows if rows.count(n) > 1})
    assert duplicated == [], "classes with more than one row"


def test_every_class_a_row_names_exists():
    unknown = sorted(set(class_rows()) - set(NODES))
    assert unknown == [], "rows naming classes the registry does not have"


def test_editor_only_classes_are_listed_apart_from_the_registry():
    constructs = [n for table in tables(DOC) if table[0][0].lower() == "editor construct"
                  for row in table[1:] for n in names_in(row[0])]
    assert set(EDITOR_ONLY) <= set(constructs)
    assert not set(EDITOR_ONLY) & set(NODES)  # they never reach the executor


def test_side_by_side_names_our_real_nodes():
    (table,) = [t for t in tables(DOC) if t[0][0].lower().startswith("comfyui node")]
    ours = {n for row in table[1:] for n in names_in(row[2]) if re.fullmatch(r"[A-Z][A-Za-z]+", n)}
    assert {"StageCSampler", "StageBSampler", "TextEncode"} <= ours
    assert sorted(ours - set(NODES)) == []
    comfy = {n for row in table[1:] for n in names_in(row[0].split(" ")[0])}
    assert comfy <= set(NODES)


def test_side_by_side_json_is_a_valid_prompt_of_our_nodes():
    (block,) = re.findall(r"```json\n(.*?)```", DOC, re.DOTALL)
    prompt = json.loads(block)
    for node_id, node in prompt.items():
        cls = NODES[node["class_type"]]
        declared = {i.name for i in cls.INPUTS}
        assert set(node["inputs"]) <= declared, (node_id, set(node["inputs"]) - declared)
        required = {i.name for i in cls.INPUTS if not i.optional and i.default is None and not i.is_widget}
        assert required <= set(node["inputs"]), (node_id, required - set(node["inputs"]))
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                assert value[0] in prompt, (node_id, name, value)


def readme_curl() -> str:
    (line,) = [c for block in re.findall(r"```bash\n(.*?)```", README, re.DOTALL)
               for c in block.splitlines() if c.startswith("curl ")]
    return line


def curl_argv(command: str) -> list[str]:
    """The argv bash hands curl for `command`, run from the checkout's root as the README says."""
    words = shlex.split(command)
    assert words[0] == "curl"
    script = 'printf "%s\\0" ' + command[len("curl "):]
    out = subprocess.run(["bash", "-c", script], cwd=ROOT, capture_output=True, check=True, timeout=30)
    return out.stdout.decode().split("\0")[:-1]


def test_readme_curl_example_runs_comfyuis_example_on_demo_weights(tmp_path):
    argv = curl_argv(readme_curl())
    (url,) = [a for a in argv if a.startswith("http")]
    data = argv[argv.index("-d") + 1]
    assert url.startswith(README_PORT + "/prompt")
    config = make_config(tmp_path, demo=True)
    with running_server(config, NODES, Env(config)) as base:
        # curl -d sends its default form content type; the server reads the body as JSON regardless.
        status, _, raw = http("POST", url.replace(README_PORT, base), data.encode(),
                              {"Content-Type": "application/x-www-form-urlencoded"}, timeout=120)
        assert status == 200, raw[:2000]
        entry = json.loads(raw)
        assert entry["status"]["status_str"] == "success", entry["status"]
        (ref,) = entry["outputs"]["9"]["images"]
        status, _, png = http("GET", f"{base}/view?filename={ref['filename']}&subfolder={ref['subfolder']}"
                                     f"&type={ref['type']}")
    assert status == 200
    image = Image.open(io.BytesIO(png))
    assert image.size == (1024, 1024) and ref["filename"].startswith("ComfyUI_")
    assert json.loads(image.info["prompt"])["3"]["class_type"] == "KSampler"


if __name__ == "__main__":  # pragma: no cover
    pytest.main([__file__])
