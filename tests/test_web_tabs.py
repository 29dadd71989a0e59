"""Workflow tabs: several open workflows, each with its own undo stack, autosaved per tab (a reload
restores them), and closing one with unsaved changes asks in the page first."""
from __future__ import annotations

import json

import pytest

from tests.web_helpers import ROOT, browser, document, open_editor, server, strip_view  # noqa: F401
from tests.web_stub_nodes import pipeline_document

pytestmark = pytest.mark.browser


def tabs(page) -> list[dict]:
    """The tab bar as the user sees it: id, title, active, changed."""
    return page.locator(".tab").evaluate_all("""els => els.map(e => ({id: e.dataset.tabId,
        title: e.querySelector('.tab-title').textContent, active: e.classList.contains('active'),
        dirty: e.classList.contains('dirty')}))""")


def can_undo(page) -> bool:
    return page.evaluate("() => cascade.editor.history.canUndo")


def add_seed(page) -> None:
    page.evaluate("() => cascade.editor.addNode('SeedValue', [900, 600])")


def test_tabs_keep_their_own_graph_and_undo_stack_and_survive_a_reload(server, browser):
    page = open_editor(browser, server["base"])
    default = json.loads((ROOT / "web" / "workflows" / "default.json").read_text())
    page.wait_for_selector(".tab")
    [first] = tabs(page)
    assert first["active"] and not first["dirty"]
    add_seed(page)  # an edit in tab 1
    one = document(page)
    assert tabs(page)[0]["dirty"]

    page.locator(".tab-new").click()
    page.wait_for_function("() => document.querySelectorAll('.tab').length === 2")
    second = tabs(page)[1]
    assert second["active"] and not second["dirty"] and not tabs(page)[0]["active"]
    assert sorted(document(page)["nodes"]) == sorted(default["nodes"])
    assert not can_undo(page)  # its own, empty undo stack
    page.evaluate("() => cascade.editor.commit(() => cascade.editor.graph.removeNode('1'))")
    two = document(page)

    page.locator(f'.tab[data-tab-id="{first["id"]}"] .tab-title').click()
    assert strip_view(document(page)) == strip_view(one)
    page.keyboard.press("Control+z")  # undoes tab 1's edit, not tab 2's
    assert sorted(document(page)["nodes"]) == sorted(default["nodes"])
    assert not can_undo(page) and not tabs(page)[0]["dirty"]
    page.locator(f'.tab[data-tab-id="{second["id"]}"] .tab-title').click()
    assert strip_view(document(page)) == strip_view(two) and can_undo(page)
    assert page.locator(".node").count() == len(two["nodes"])

    page.wait_for_timeout(400)  # the autosave runs 250 ms after the last change
    page.reload()
    page.wait_for_selector("body[data-ready='1']")
    after = tabs(page)
    assert [(t["id"], t["active"], t["dirty"]) for t in after] == [(first["id"], False, False), (second["id"], True, True)]
    assert strip_view(document(page)) == strip_view(two)
    page.locator(f'.tab[data-tab-id="{first["id"]}"] .tab-title').click()
    assert sorted(document(page)["nodes"]) == sorted(default["nodes"])
    assert page.errors == []


def test_closing_a_changed_tab_asks_in_the_page(server, browser):
    page = open_editor(browser, server["base"], pipeline_document())
    page.wait_for_selector(".tab")
    page.evaluate("() => cascade.tabs.markClean()")
    page.locator(".tab-new").click()
    page.wait_for_function("() => document.querySelectorAll('.tab').length === 2")
    # An unchanged tab closes at once, no question.
    page.locator(".tab.active .tab-close").click()
    page.wait_for_function("() => document.querySelectorAll('.tab').length === 1")
    assert page.locator(".ask-dialog").count() == 0
    assert sorted(document(page)["nodes"]) == sorted(pipeline_document()["nodes"])

    add_seed(page)
    changed = document(page)
    tab = tabs(page)[0]
    assert tab["dirty"]
    page.locator(".tab.active .tab-close").click()
    dialog = page.locator("dialog.ask-dialog[open]")
    dialog.wait_for()
    assert "unsaved changes" in dialog.inner_text()
    dialog.locator("button[data-choice='cancel']").click()
    dialog.wait_for(state="detached")
    assert tabs(page) == [tab] and document(page) == changed

    # "Save and close" downloads the workflow, then closes; the last tab closed leaves a new one.
    page.locator(".tab.active .tab-close").click()
    with page.expect_download() as info:
        page.locator("dialog.ask-dialog[open] button[data-choice='save']").click()
    assert json.loads(open(info.value.path()).read())["nodes"] == changed["nodes"]
    page.wait_for_function(f"() => !document.querySelector('.tab[data-tab-id=\"{tab['id']}\"]')")
    [fresh] = tabs(page)
    assert fresh["active"] and not fresh["dirty"]
    assert page.evaluate(f"() => localStorage.getItem('cascade-studio.tab.{tab['id']}')") is None

    # "Close without saving" drops the changes of a tab in the background too.
    add_seed(page)
    page.locator(".tab-new").click()
    page.wait_for_function("() => document.querySelectorAll('.tab').length === 2")
    page.locator(f'.tab[data-tab-id="{fresh["id"]}"] .tab-close').click()
    page.locator("dialog.ask-dialog[open] button[data-choice='discard']").click()
    page.wait_for_function("() => document.querySelectorAll('.tab').length === 1")
    assert tabs(page)[0]["id"] != fresh["id"]
    assert page.errors == []


def test_opening_a_file_over_changes_keeps_the_tab_marked_changed(server, browser, tmp_path):
    page = open_editor(browser, server["base"], pipeline_document())
    page.wait_for_selector(".tab")
    page.evaluate("() => cascade.tabs.markClean()")
    path = tmp_path / "bottle.json"
    path.write_text(json.dumps(pipeline_document(steps=2)))
    page.locator("#open-file").set_input_files(str(path))
    page.wait_for_function("() => document.querySelector('.tab.active .tab-title').textContent === 'bottle'")
    assert not tabs(page)[0]["dirty"]  # nothing was unsaved: the tab is now the file
    add_seed(page)
    page.locator("#open-file").set_input_files(str(path))
    page.wait_for_function("() => !Object.values(cascade.editor.document().nodes).some(n => n.class_type === 'SeedValue')")
    assert tabs(page)[0]["dirty"]  # the seed is only an undo away: closing must still ask
    page.keyboard.press("Control+z")
    assert any(n["class_type"] == "SeedValue" for n in document(page)["nodes"].values())
