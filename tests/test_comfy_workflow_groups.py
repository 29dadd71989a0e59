"""ComfyUI editor groups -> our `ui.groups`: a pinned (or older `locked`) group stays pinned, which the
editor honours by not moving or resizing it (web/editor/group_model.js `isPinned`)."""
import pytest

from engine.comfy_workflow import convert
from tests.comfy_editor_files import COND, node, workflow
from tests.comfy_stub_classes import COMFY_STUBS as REG


def groups_of(*groups):
    wf = workflow([node(4, "CLIPTextEncode", ["a"], [("clip", "CLIP")], COND)], [], groups=list(groups))
    return convert(wf, REG).document["ui"]["groups"]


@pytest.mark.parametrize("extra", [{"flags": {"pinned": True}}, {"locked": True}, {"flags": {"pinned": True, "x": 1}}])
def test_a_pinned_group_stays_pinned(extra):
    g = {"title": "Loaders", "bounding": [0, 0, 300, 200], **extra}
    assert groups_of(g) == [{"title": "Loaders", "bounding": [0, 0, 300, 200], "flags": {"pinned": True}}]


@pytest.mark.parametrize("extra", [{}, {"flags": {}}, {"flags": {"pinned": False}}, {"flags": "pinned"}, {"locked": 1}])
def test_an_unpinned_group_has_no_flags(extra):
    assert groups_of({"title": "G", "bounding": [0, 0, 300, 200], **extra}) == [{"title": "G", "bounding": [0, 0, 300, 200]}]
