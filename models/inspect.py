"""`python -m models.inspect FILE_OR_DIR …`: what a checkpoint is, read from its headers only.

Prints, per network found: kind, size preset, dtype, key layout, parameter count and any problems; for a
LoRA file: its format, the model it targets, rank, alpha and tensor count (models/lora/classify.py).
Exit status 0 when every path holds at least one loadable Stable Cascade network or is a LoRA, 1 otherwise.
"""
from __future__ import annotations

import sys
from pathlib import Path

from models.loading import FileReport, LoadError, detect
from models.loading.networks import KIND_TITLES
from models.lora.classify import TARGET_TITLES, LoraInfo, describe_file


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return str(n)


def format_report(report: FileReport) -> str:
    """The human-readable text `inspect` prints for one path."""
    lines = [f"{report.path}", f"  format: {report.format} ({report.container}, {_size(report.size_bytes)})"]
    for c in report.components:
        lines.append(f"  - {KIND_TITLES[c.kind]}  [kind {c.kind}]")
        lines.append(f"      size preset: {c.preset or 'unknown'}")
        lines.append(f"      dtype: {c.dtype}")
        lines.append(f"      layout: {c.layout}")
        lines.append(f"      parameters: {c.params:,}")
        lines.append(f"      location: {c.where}")
        for p in c.problems:
            lines.append(f"      problem: {p}")
    if not report.components:
        lines.append("  no Stable Cascade network found")
    for p in report.problems:
        lines.append(f"  problem: {p}")
    return "\n".join(lines)


def format_lora(path: str, size: int, lora: LoraInfo) -> str:
    """The text `inspect` prints for a LoRA file."""
    return "\n".join([
        path, f"  format: LoRA, {'/'.join(lora.formats)} names (single file, {_size(size)})",
        "  - LoRA  [kind lora]",
        f"      targets: {', '.join(TARGET_TITLES[t] for t in lora.targets)}"
        + (f" (names of {lora.foreign}: not a Stable Cascade LoRA)" if lora.foreign else ""),
        f"      rank: {'/'.join(map(str, lora.ranks)) or 'unknown'}",
        f"      alpha: {lora.alpha}",
        f"      layers: {lora.layers}",
        f"      tensors: {lora.tensors}",
    ])


def _lora(path: Path) -> LoraInfo | None:
    if not path.is_file():
        return None
    try:
        return describe_file(path)
    except LoadError:
        return None  # detect already named why the file is unreadable


def main(argv: list[str] | None = None) -> int:
    """Inspect each path given on the command line."""
    argv = sys.argv[1:] if argv is None else argv
    if not argv:
        print("usage: python -m models.inspect FILE_OR_DIR [...]", file=sys.stderr)
        return 2
    ok = True
    for arg in argv:
        try:
            report = detect(Path(arg))
        except LoadError as e:
            print(f"{arg}\n  error: {e}")
            ok = False
            continue
        lora = None if report.components else _lora(Path(arg))
        if lora is not None:
            print(format_lora(arg, report.size_bytes, lora))
            continue
        print(format_report(report))
        ok &= any(c.loadable for c in report.components)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
