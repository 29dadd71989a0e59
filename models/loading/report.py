"""`detect(path) -> FileReport`: what a checkpoint file or folder holds, from headers only."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from . import rules
from .errors import LoadError
from .networks import KIND_TITLES
from .scan import Candidate, scan


@dataclass(frozen=True)
class Component:
    """One network inside a file: its kind, size preset, dtype, naming layout and parameter count."""

    kind: str
    preset: str | None
    dtype: str
    layout: str
    params: int
    where: str
    problems: tuple[str, ...] = ()

    @property
    def loadable(self) -> bool:
        """True when a config was resolved and nothing is known to be wrong."""
        return self.preset is not None and not self.problems

    def describe(self) -> str:
        """One line: 'Stage C (lite), bfloat16, original layout, 1,030,785,040 params'."""
        size = self.preset or "unknown size"
        return (f"{KIND_TITLES[self.kind]} ({size}), {self.dtype}, {self.layout} layout, "
                f"{self.params:,} params — {self.where}")


@dataclass(frozen=True)
class FileReport:
    """Everything `detect` found at a path."""

    path: str
    format: str  # "original" | "diffusers" | "all-in-one" | "transformers" | "mixed" | "unknown"
    container: str  # "single file" | "sharded" | "folder" | "zip"
    size_bytes: int
    components: tuple[Component, ...]
    problems: tuple[str, ...]

    @property
    def kinds(self) -> tuple[str, ...]:
        """Kinds present, in a stable order."""
        return tuple(k for k in rules.KINDS if any(c.kind == k for c in self.components))

    @property
    def is_stable_cascade(self) -> bool:
        """True when at least one Stable Cascade network was found."""
        return bool(self.components)

    def component(self, kind: str) -> Component:
        """The (first) component of a kind; LoadError when there is none."""
        for c in self.components:
            if c.kind == kind:
                return c
        raise LoadError(f"{Path(self.path).name} holds no {KIND_TITLES.get(kind, kind)}")


def component_of(c: Candidate) -> Component:
    """Summarise a scan candidate."""
    infos = c.source.infos()
    return Component(c.kind, c.preset, rules.dtype_summary(infos), c.layout, rules.count_params(infos), c.where,
                     tuple(c.problems))


def file_format(candidates: list[Candidate]) -> str:
    """Name the overall format from the components' prefixes, layouts and config files."""
    formats = set()
    per_group = Counter(c.group.files for c in candidates)
    for c in candidates:
        if c.prefix or per_group[c.group.files] > 1:
            formats.add("all-in-one")
        elif c.layout == "diffusers" or c.group.config:
            formats.add("diffusers")
        else:
            formats.add("transformers" if c.layout == "transformers" else "original")
    if not formats:
        return "unknown"
    if len(formats) > 1 and "transformers" in formats:
        formats.discard("transformers")  # a text encoder beside other files takes their format's name
    return formats.pop() if len(formats) == 1 else "mixed"


def detect(path: str | Path) -> FileReport:
    """Describe the Stable Cascade networks at a path (file, diffusers folder, zip, sharded index)."""
    s = scan(Path(path))
    comps = tuple(component_of(c) for c in s.candidates)
    problems = list(s.problems)
    if not comps and not any("not a Stable Cascade" in p or "this is" in p for p in problems):
        problems.append("not a Stable Cascade file")
    return FileReport(str(path), file_format(s.candidates), s.container, s.size_bytes, comps,
                      tuple(problems))
