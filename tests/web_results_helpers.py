"""A server fixture for the results/errors browser tests: the editor's stub nodes plus a node that
reports text (like the LoRA loader's "48 of 48 tensors applied") and a loader whose file list is the
input folder read at request time (for the model-list refresh)."""
from __future__ import annotations

from typing import Iterator

import pytest

from engine.schema import COMBO, INT, STRING, Input, Node, Output, Result
from tests.server_harness import make_config, running_server
from tests.web_helpers import ROOT, skip_without_chromium
from tests.web_stub_nodes import IMAGE, WEB_STUB_NODES, WebStubEnv


class ShowReport(Node):
    """Output node returning `lines` copies of `text` as a ui text list (a report shown on the node)."""

    TITLE = "Show Report"
    CATEGORY = "debug"
    OUTPUT_NODE = True
    INPUTS = (Input("text", STRING, default="48 of 48 tensors applied"), Input("lines", INT, default=1, min=1, max=500))

    def run(self, ctx, text, lines):
        return Result(ui={"text": [f"{text} ({i + 1})" if lines > 1 else text for i in range(lines)]})


class LoadPicture(Node):
    """Loader whose choices are the input folder's files, listed when /object_info is asked."""

    TITLE = "Load Picture"
    CATEGORY = "image"
    INPUTS = (Input("file", COMBO, choices=lambda env: env.input_files()),)
    OUTPUTS = (Output("image", IMAGE),)

    def run(self, ctx, file):
        return (len(file),)


RESULT_NODES = {**WEB_STUB_NODES, "ShowReport": ShowReport, "LoadPicture": LoadPicture}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[dict]:
    """The real app with RESULT_NODES; yields base URL, output and input folders."""
    skip_without_chromium()
    tmp = tmp_path_factory.mktemp("web_results")
    config = make_config(tmp, web_dir=ROOT / "web")
    config.input_dir.mkdir(parents=True, exist_ok=True)
    env = WebStubEnv(config.output_dir, config.input_dir)
    with running_server(config, RESULT_NODES, env) as base:
        yield {"base": base, "output": config.output_dir, "input": config.input_dir}
