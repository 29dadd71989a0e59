"""Scanning a path: every Stable Cascade network in it, with its conversion plan and config.

Used by both `detect` (to report) and `load` (to pick one). Only headers and config files are read.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import rules
from .containers import Group, Tree, open_group, open_tree, read_config
from .convert import PlannedSource
from .errors import LoadError
from .infer import INFERRED, first_misfit, infer_config
from .networks import (KIND_TITLES, closest_preset, config_from_json, describe_size, expected_shapes, match_preset,
                       network_spec, shape_problems)


@dataclass
class Candidate:
    """One network found in a path, ready to be loaded."""

    kind: str
    layout: str
    where: str
    group: Group
    prefix: str
    source: PlannedSource  # canonical names -> tensors
    preset: str | None
    config: Any  # our config dataclass, or None when the shapes match no known size
    problems: list[str]


@dataclass
class Scan:
    """Everything found at a path."""

    path: Path
    container: str
    tree: Tree
    candidates: list[Candidate]
    problems: list[str]
    other: str | None  # what the file is when it is something else we recognise
    size_bytes: int


def _size(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return path.stat().st_size


def scan(path: Path, kind: str | None = None) -> Scan:
    """Open a path and describe every network in it (raises LoadError only for unreadable input).

    Configs are resolved (which may build presets on meta) only for `kind`, or for all when None.
    """
    path = Path(path)
    tree, groups, container = open_tree(path)
    result = Scan(path, container, tree, [], [], None, _size(path))
    if not groups:
        result.problems.append("no .safetensors weights found")
    for group in groups:
        source = open_group(tree, group)
        keys = list(source.infos())
        found = rules.find_components(keys)
        if not found:
            other = rules.recognise_other(keys)
            result.other = result.other or other
            example = ", ".join(sorted(keys)[:3])
            result.problems.append(f"{group.label}: " + (f"this is {other}" if other else
                                   f"not a Stable Cascade file ({len(keys)} tensors, e.g. {example})"))
            continue
        owners = rules.owned_keys(found, keys)
        strays = set(keys) - set().union(*owners.values())
        if strays:
            tops = sorted({k.split(".")[0] + "." for k in strays})
            result.problems.append(f"{group.label}: {len(strays)} tensors belong to no supported network "
                                   f"(prefixes {', '.join(tops[:5])})")
        config_json = read_config(tree, group)
        for f in found:
            plan = rules.plan_for(f, owners[f])
            result.candidates.append(_candidate(f, group, PlannedSource(source, plan), config_json,
                                                resolve=kind in (None, f.kind)))
    return result


def _candidate(f: rules.Found, group: Group, source: PlannedSource, config_json: dict | None,
               resolve: bool = True) -> Candidate:
    """Resolve the config: config.json when it describes this network, else the matching preset."""
    where = group.label + (f" [{f.prefix}*]" if f.prefix else "")
    infos = source.infos()
    guess = rules.guess_preset(f.kind, infos)
    problems: list[str] = []
    if not resolve:
        return Candidate(f.kind, f.layout, where, group, f.prefix, source, guess, None, problems)
    spec = network_spec(f.kind)
    named = describe_size(f.kind, infos)
    if named:  # a known network of another size (even with a config.json that builds it): say which
        return Candidate(f.kind, f.layout, where, group, f.prefix, source, None, None, [f"this is {named}"])
    config = None
    if config_json is not None and not f.prefix:
        config = _config_from_json(spec, config_json, infos, problems)
    preset = next((n for n, p in spec.presets.items() if p == config), None) if config is not None else None
    preset = preset or match_preset(spec, infos, guess)
    if config is None and preset is not None:
        config = spec.presets[preset]
    if config is None and not problems:
        config, preset = _inferred(spec, infos, problems)
    if config is None:
        problems.append(f"the shapes match no known {KIND_TITLES[f.kind]} size ({', '.join(spec.presets)})")
        closest = closest_preset(spec, infos, guess)
        if closest is not None:
            diff = shape_problems(expected_shapes(spec, spec.presets[closest]), infos)
            problems.append(f"compared with the {closest} size: " + "; ".join(diff))
    return Candidate(f.kind, f.layout, where, group, f.prefix, source, preset, config, problems)


def _inferred(spec, infos, problems: list[str]):
    """(config, 'custom') read from the shapes (infer.py) when every key fits it; else (None, None) + why."""
    try:
        config = infer_config(spec.kind, infos)
    except LoadError as e:
        problems.append(f"no {KIND_TITLES[spec.kind]} config explains the weights: {e}")
        return None, None
    if config is None:
        return None, None
    try:
        misfit = first_misfit(expected_shapes(spec, config), infos)
    except (ValueError, RuntimeError, AssertionError) as e:  # the network refuses the inferred hyper-parameters
        misfit = f"the sizes read from the weights build no network ({e})"
    if misfit:
        problems.append(f"no {KIND_TITLES[spec.kind]} config explains the weights: {misfit}")
        return None, None
    return config, INFERRED


def _config_from_json(spec, config_json: dict, infos, problems: list[str]):
    """Our config from config.json, verified against the weights' shapes (None, with a problem, if not)."""
    try:
        config = config_from_json(spec.kind, config_json)
    except LoadError as e:
        problems.append(str(e))
        return None
    bad = shape_problems(expected_shapes(spec, config), infos) if config is not None else []
    if bad:
        problems.append("config.json does not match the weights: " + "; ".join(bad))
        return None
    return config
