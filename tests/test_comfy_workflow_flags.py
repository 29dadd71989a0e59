"""ComfyUI node flags (collapsed, pinned) become the editor's `ui.collapsed` / `ui.pinned`."""
from engine.comfy_workflow import convert
from engine.workflow import document_to_prompt
from tests.comfy_editor_files import COND, node, workflow
from tests.comfy_stub_classes import COMFY_STUBS as REG


def test_collapsed_and_pinned_flags_kept_in_ui_and_ignored_by_the_run():
    wf = workflow([node(4, "CLIPTextEncode", ["a"], [("clip", "CLIP")], COND, flags={"collapsed": True, "pinned": True}),
                   node(5, "CLIPTextEncode", ["b"], [("clip", "CLIP")], COND, flags={"collapsed": False, "pinned": "yes"})],
                  [])
    d = convert(wf, REG).document
    assert d["nodes"]["4"]["ui"]["collapsed"] is True and d["nodes"]["4"]["ui"]["pinned"] is True
    # Only a real `true` counts; anything else leaves the node as it is.
    assert "collapsed" not in d["nodes"]["5"]["ui"] and "pinned" not in d["nodes"]["5"]["ui"]
    assert document_to_prompt(d, REG)["4"]["inputs"] == {"text": "a"}
