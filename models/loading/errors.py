"""The one exception type the loading package raises, with helpers to name keys readably."""
from __future__ import annotations

from typing import Iterable


class LoadError(Exception):
    """A checkpoint could not be detected or loaded; the message is meant for the user."""


def name_keys(keys: Iterable[str], first: int = 5) -> str:
    """Return 'a, b, c … (N in all)' so error messages stay short but specific."""
    keys = sorted(keys)
    shown = ", ".join(keys[:first])
    if len(keys) > first:
        shown += f", … ({len(keys)} in all)"
    return shown
