"""Extra read-only model folders: an existing ComfyUI install (`--comfy-models DIR`) and ComfyUI's
`extra_model_paths.yaml` files (`--extra-model-paths FILE`), read as ComfyUI reads them. Nothing is copied.

ComfyUI's yaml: top-level sections, each a mapping with an optional `base_path` (`~` and `$VARS` expanded;
relative to the yaml's folder), an optional `is_default` (its folders are searched first) and folder keys
(`checkpoints`, `unet`/`diffusion_models`, `clip`/`text_encoders`, `vae`, `clip_vision`, `controlnet`,
`loras`; others such as `embeddings` are not model folders we read) mapping to one path or several on
separate lines (a `|` block). Relative paths join `base_path`, or the yaml's folder without one.

Safety: the yaml is the user's own file, so absolute folders are taken as written, but a relative entry that
climbs out of its base (`../..`) is refused and reported. Names listed from a folder resolve only inside it
(`comfy_folders.resolve_in`: no `..`, no symlink out, no absolute name). A missing folder or an unreadable
yaml is reported at start-up (`Roots.problems`), never a crash.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from runtime import comfy_folders as cf

# ComfyUI folder keys whose files may hold our networks (offered to our typed loaders by kind).
MODEL_KEYS = ("checkpoints", "diffusion_models", "text_encoders", "vae")


@dataclass
class Roots:
    """Extra folders per ComfyUI folder key, in search order, and what was wrong with the configuration."""

    folders: dict[str, list[Path]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def add(self, key: str, path: Path, first: bool = False) -> None:
        dirs = self.folders.setdefault(key, [])
        if path not in dirs:
            dirs.insert(0, path) if first else dirs.append(path)

    # -- ComfyUI's loaders: names relative to the folder, merged over the folders (first wins) -------------
    def comfy_files(self, folder: str) -> list[str]:
        """Readable weight files under a folder key (or legacy key); [] for unknown keys."""
        names: dict[str, None] = {}
        for root in self.folders.get(cf.folder_key(folder) or "", []):
            for name in cf.list_files(root):
                if name not in names and cf.detected(root / name).error is None:
                    names[name] = None
        return sorted(names)

    def comfy_path(self, folder: str, name: str) -> Path | None:
        """Absolute path of a name `comfy_files(folder)` lists (first folder holding it), else None."""
        for root in self.folders.get(cf.folder_key(folder) or "", []):
            path = cf.resolve_in(root, name)
            if path is not None and cf.detected(path).error is None:
                return path
        return None

    # -- our loaders: `key/name` of files whose keys hold a network of the kind ----------------------------
    def offered(self, kind: str) -> list[str]:
        """`key/name` (key one of MODEL_KEYS) for every file holding a loadable `kind`, demo files last."""
        found = []
        for key in MODEL_KEYS:
            for name in self.comfy_files(key):
                d = cf.detected(self.comfy_path(key, name))
                if kind in d.kinds:
                    found.append((d.demo, f"{key}/{name}"))
        return [n for _, n in sorted(found, key=lambda t: t[0])]

    def offered_path(self, kind: str, name: str) -> Path | None:
        """Absolute path of an `offered(kind)` name (a legacy key such as `unet/x` too), else None."""
        key, _, rest = name.partition("/")
        key = cf.folder_key(key)
        if key not in MODEL_KEYS or not rest:
            return None
        path = self.comfy_path(key, rest)
        return path if path is not None and kind in cf.detected(path).kinds else None

    def report_lines(self) -> list[str]:
        """Start-up lines: each extra folder with its files (or 'does not exist'), then the problems."""
        lines = []
        for key, dirs in self.folders.items():
            for root in dirs:
                if not root.is_dir():
                    lines.append(f"  {key} (extra, read-only): {root} [does not exist]")
                    continue
                names = cf.list_files(root)
                lines.append(f"  {key} (extra, read-only): {root}: {', '.join(names) if names else '(empty)'}")
        return lines + [f"  extra model folders: {p}" for p in self.problems]


def add_comfy_install(roots: Roots, path: Path) -> None:
    """An existing ComfyUI `models/` folder, or the install root holding one: every model folder key."""
    path = Path(path).expanduser()
    if not path.is_dir():
        roots.problems.append(f"--comfy-models {path}: does not exist (or is not a folder); ignored")
        return
    if (path / "models").is_dir() and not any((path / s).is_dir() for s in cf.ALL_SUBFOLDERS):
        path = path / "models"  # the install root was given
    for key, subs in cf.COMFY_FOLDERS.items():
        for sub in subs:
            if (path / sub).is_dir():
                roots.add(key, (path / sub).resolve())


def _inside(base: Path, rel: str) -> bool:
    """Whether a relative entry stays inside its base once `..` parts are applied (lexically)."""
    joined = os.path.normpath(os.path.join(base, rel))
    return joined == os.path.normpath(base) or joined.startswith(os.path.normpath(base) + os.sep)


def add_yaml(roots: Roots, yaml_path: Path) -> None:
    """Every model folder of one ComfyUI `extra_model_paths.yaml` (see the module docstring)."""
    import yaml

    yaml_path = Path(yaml_path).expanduser()
    label = f"--extra-model-paths {yaml_path}"
    try:
        config = yaml.safe_load(yaml_path.read_text(encoding="utf-8"))
    except OSError as e:
        roots.problems.append(f"{label}: cannot read the file ({e.strerror or e}); ignored")
        return
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        roots.problems.append(f"{label}: not valid YAML ({str(e).splitlines()[0]}); ignored")
        return
    if config is None:
        return
    if not isinstance(config, dict):
        roots.problems.append(f"{label}: expected sections (name: {{base_path: …, checkpoints: …}}); ignored")
        return
    yaml_dir = yaml_path.resolve().parent
    for section, conf in config.items():
        if conf is not None:
            _add_section(roots, f"{label} [{section}]", conf, yaml_dir)


def _add_section(roots: Roots, label: str, conf: Any, yaml_dir: Path) -> None:
    if not isinstance(conf, dict):
        roots.problems.append(f"{label}: expected a mapping of folder keys to paths; ignored")
        return
    conf = dict(conf)
    base = conf.pop("base_path", None)
    first = conf.pop("is_default", False)
    if base is not None and (not isinstance(base, str) or "\0" in base):
        roots.problems.append(f"{label}: base_path must be a folder path; section ignored")
        return
    if base:
        base = Path(os.path.expandvars(os.path.expanduser(base)))
        base = Path(os.path.normpath(base if base.is_absolute() else yaml_dir / base))
    ignored = []
    for key, value in conf.items():
        canonical = cf.folder_key(str(key))
        if canonical is None:
            ignored.append(str(key))
            continue
        if not isinstance(value, str):
            roots.problems.append(f"{label} {key}: expected a path (or several, one a line); ignored")
            continue
        for line in (s.strip() for s in value.split("\n")):
            if not line:
                continue
            anchor = Path(base) if base else yaml_dir
            if "\0" in line or (not os.path.isabs(line) and not _inside(anchor, line)):
                roots.problems.append(f"{label} {key}: {line!r} leads out of {anchor}; refused")
                continue
            # A folder that does not exist (yet: a drive not mounted) is kept; report_lines names it.
            roots.add(canonical, Path(os.path.normpath(anchor / line)), first=bool(first))
    if ignored:
        roots.problems.append(f"{label}: not model folders Cascade Studio reads, ignored: {', '.join(ignored)}")


def build(comfy_models: Sequence[Path] = (), yaml_files: Sequence[Path] = ()) -> Roots:
    """All extra folders from the command line, in the order given (installs, then yaml files)."""
    roots = Roots()
    for path in comfy_models:
        add_comfy_install(roots, path)
    for path in yaml_files:
        add_yaml(roots, path)
    return roots


def from_config(config: Any) -> Roots:
    """Roots named by a Config (`comfy_models`, `extra_model_paths`); none for configs without them."""
    return build(getattr(config, "comfy_models", ()) or (), getattr(config, "extra_model_paths", ()) or ())
