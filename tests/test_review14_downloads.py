"""Review of issue 14: two tasks that would write one partial file (an official file and a pasted link to
the same hub file) never write it at the same time."""
from __future__ import annotations

from runtime import hub_fetch as hf
from runtime.downloads import HUB_REPO, Downloads, resolve_request
from tests.test_downloads import hub, official_bytes  # noqa: F401  (the local hub fixture)


def test_official_file_and_a_link_to_it_at_once_do_not_share_a_partial_file(hub, tmp_path):  # noqa: F811
    hub.delay_s = 0.002  # both transfers overlap
    dl = Downloads(tmp_path, workers=2)
    name = "stage_a.safetensors"
    (first,) = dl.start_official(resolve_request([name]))
    second = dl.start_url(f"{hub.url}/{HUB_REPO}/resolve/main/{name}?download=true")
    assert second is not first
    assert dl.wait([first, second], 30)
    # The official one lands verified; the link (junk bytes, no network) is refused on its kind, not
    # on a hash broken by another thread appending to its partial file.
    assert first.state == "done", first.error
    assert (tmp_path / "stage_a" / name).read_bytes() == official_bytes(name)
    assert second.state == "error" and "sha256" not in second.error, second.error
    assert list((tmp_path / hf.PART_FOLDER).iterdir()) == []
