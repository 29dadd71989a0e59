"""PreviewImage's temp folder: emptied when the server starts (previews are never kept across runs).

The server calls ``wipe_temp(config)`` once at start-up, after it holds the data folder (so a second
server that fails to start never wipes the first one's previews). The CLI does not: it may run next to
a server that shares the folder.
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger("cascade.temp")


def _protected(config: Any) -> list[Path]:
    """Folders whose contents must never go with the temp folder's: ours, the home folder, the root."""
    paths = [Path(getattr(config, name)) for name in ("output_dir", "input_dir", "weights_dir", "data_dir")
             if getattr(config, name, None)]
    paths += [Path(__file__).resolve().parent.parent, Path.home(), Path(Path.cwd().anchor)]
    return [p.resolve() for p in paths]


def wipe_temp(config: Any) -> int:
    """Delete everything inside ``config.temp_dir``; returns how many entries were removed.

    Never follows a symlink (a link inside is removed, not its target), never removes the folder
    itself or anything above it, and does nothing when the folder is missing, not a directory, or
    is (or contains) one of the app's other folders, the project, the home folder or the root:
    a misconfigured ``--temp ~`` must not empty the home folder.
    """
    raw = Path(config.temp_dir)
    if not raw.is_dir():
        return 0
    root = raw.resolve()
    for other in _protected(config):
        if root == other or root in other.parents:
            log.warning("not emptying the temp folder %s: it is or contains %s", root, other)
            return 0
    removed = 0
    with os.scandir(root) as entries:
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(path)  # rmtree removes links inside without following them
                else:
                    path.unlink()  # a file, or a symlink (to a file or a folder): the link only
                removed += 1
            except OSError as exc:  # one stubborn file must not stop the server from starting
                log.warning("could not remove %s from the temp folder: %s", path, exc)
    if removed:
        log.info("emptied the temp folder %s (%d entries)", root, removed)
    return removed
