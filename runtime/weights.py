"""The weights folder: what is in each subfolder, and which official files belong where."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime import catalogue
from runtime import comfy_folders as comfy
from runtime.comfy_folders import WEIGHT_SUFFIXES, list_files  # noqa: F401  (re-exported)
from runtime.stamps import Stamp, stamp

# Weights subfolder per model kind (also the `kind` names understood by models.loading.load).
KIND_FOLDERS = {
    "stage_c": "stage_c",
    "stage_b": "stage_b",
    "stage_a": "stage_a",
    "text_encoder": "text_encoder",
    "effnet": "effnet",
    "previewer": "previewer",
    "clip_vision": "clip_vision",  # also ComfyUI's folder of that name (image variation's vision tower)
}
LORA_FOLDER = "loras"

SUBFOLDERS = tuple(KIND_FOLDERS.values()) + (LORA_FOLDER,)


@dataclass(frozen=True)
class OfficialFile:
    """One official file: where it goes, its name, approximate size and where to download it."""

    folder: str
    name: str
    size: str
    source: str
    note: str = ""


_REPO = "huggingface.co/stabilityai/stable-cascade"
OFFICIAL_FILES: tuple[OfficialFile, ...] = (
    OfficialFile("stage_c", "stage_c_bf16.safetensors", "7.2 GB", _REPO, "3.6B prior (recommended)"),
    OfficialFile("stage_c", "stage_c_lite_bf16.safetensors", "2.1 GB", _REPO, "1B prior (small/fast)"),
    OfficialFile("stage_b", "stage_b_bf16.safetensors", "3.1 GB", _REPO, "1.5B decoder (recommended)"),
    OfficialFile("stage_b", "stage_b_lite_bf16.safetensors", "1.4 GB", _REPO, "700M decoder (small/fast)"),
    OfficialFile("stage_a", "stage_a.safetensors", "74 MB", _REPO),
    OfficialFile("text_encoder", "model.bf16.safetensors", "1.4 GB", _REPO + " (text_encoder/)",
                 "CLIP ViT-bigG text tower; model.safetensors (2.8 GB, fp32) works too"),
    OfficialFile("effnet", "effnet_encoder.safetensors", "81 MB", _REPO, "only for image-to-image"),
    OfficialFile("previewer", "previewer.safetensors", "16 MB", _REPO, "optional live previews"),
)
# ComfyUI's all-in-one files (what its example workflows load); either set of files is enough.
COMFY_OFFICIAL: tuple[OfficialFile, ...] = (
    OfficialFile("checkpoints", "stable_cascade_stage_c.safetensors", "9.2 GB", _REPO + " (comfyui_checkpoints/)",
                 "Stage C + text encoder + EffNet + previewer"),
    OfficialFile("checkpoints", "stable_cascade_stage_b.safetensors", "4.6 GB", _REPO + " (comfyui_checkpoints/)",
                 "Stage B + Stage A"),
)

# The file each loader of the default workflow names (first official choice per kind).
DEFAULT_FILES = {
    "stage_c": "stage_c_bf16.safetensors",
    "stage_b": "stage_b_bf16.safetensors",
    "stage_a": "stage_a.safetensors",
    "text_encoder": "model.bf16.safetensors",
    "effnet": "effnet_encoder.safetensors",
    "previewer": "previewer.safetensors",
    # The official ComfyUI all-in-one Stage C holds the tower (`clip_l_vision.*`); our loader offers its part.
    "clip_vision": "checkpoints/stable_cascade_stage_c.safetensors",
}


def list_folder(weights_dir: Path, folder: str) -> list[str]:
    """Weight files in one subfolder (relative paths, nested folders allowed), sorted, demo files last."""
    names = list_files(Path(weights_dir) / folder)
    return sorted(names, key=lambda n: (Path(n).name.startswith("demo_"), n.lower()))


def listing(weights_dir: Path) -> dict[str, list[str]]:
    """{subfolder: [files]} for every weights subfolder (every weight file, loadable or not)."""
    return {folder: list_folder(weights_dir, folder) for folder in SUBFOLDERS}


def missing_official(weights_dir: Path, held: frozenset[str] = frozenset()) -> list[OfficialFile]:
    """Official files of every kind that no real (non-demo) file *holds*, read from the keys (runtime/catalogue.py):
    a junk or misplaced file in stage_c/ does not count as a Stage C.

    A kind held by a real file in ComfyUI's folders counts as present: an all-in-one
    `checkpoints/stable_cascade_stage_c.safetensors` covers Stage C, the text encoder, EffNet and previewer.
    """
    have_real = {KIND_FOLDERS[k]: True for k in held if k in KIND_FOLDERS}  # read-only model roots, the HF cache
    for kind, folder in KIND_FOLDERS.items():
        if have_real.get(folder):
            continue
        have_real[folder] = (any(kind in e.info.kinds and not e.info.demo for e in catalogue.entries(weights_dir, folder))
                             or any(not comfy.detected(_offered_file(weights_dir, n)).demo
                                    for n in comfy.offered(weights_dir, kind)))
    return [o for o in OFFICIAL_FILES if not have_real.get(o.folder)]


def _offered_file(weights_dir: Path, name: str) -> Path:
    sub, _, rest = name.partition("/")
    return Path(weights_dir) / sub / rest


def _entry_text(entry: catalogue.Entry) -> str:
    """'name [what it holds]', with '[PROBLEM: …]' when something is wrong, for the start-up report."""
    info = entry.info
    tags = ([info.summary()] if info.kinds else []) + (["demo"] if info.demo else [])
    if entry.problems:
        unused = "" if catalogue.usable(entry) else "; offered by no loader"
        tags.append(f"PROBLEM: {'; '.join(entry.problems)}{unused}")
    return f"{entry.name} [{'; '.join(tags)}]"


MAX_LISTED = 40  # files described per folder at start-up; a folder of thousands must not flood the console


def _folder_text(found: list, folder: str) -> str:
    shown = ", ".join(map(_entry_text, found[:MAX_LISTED]))
    rest = found[MAX_LISTED:]
    if not rest:
        return shown
    bad = sum(1 for e in rest if e.problems)
    return (f"{shown}, … and {len(rest)} more ({bad} with problems; "
            f"GET /api/models/{folder}?details=1 describes them all)")


def guidance(weights_dir: Path, *, demo: bool = False, held: frozenset[str] = frozenset()) -> str:
    """Human-readable report: what each file holds (from its keys) and its problems, then the official files
    missing and where they go. A weights folder that does not exist is said so in one line."""
    weights_dir = Path(weights_dir)
    if not weights_dir.is_dir():
        lines = [f"Weights folder {weights_dir.resolve()} does not exist"
                 + (" (it is a file)" if weights_dir.exists() else "")
                 + ": create it (with the subfolders below) or pass --weights DIR"]
    else:
        lines = [f"Weights folder: {weights_dir.resolve()}"]
        for folder in SUBFOLDERS:
            found = catalogue.entries(weights_dir, folder)
            empty = "(empty)" if (weights_dir / folder).is_dir() else "(no such folder)"
            lines.append(f"  {folder}/: {_folder_text(found, folder) if found else empty}")
        lines.extend(comfy.report_lines(weights_dir))
    missing = missing_official(weights_dir, held)
    if missing:
        lines.append("Missing official files (`python -m models.download lite` fetches the lite set into place, "
                     "or the editor's Models button; by hand, place them as shown; for stage_c/ and stage_b/ one "
                     "file each is enough, full or lite):")
        for o in missing:
            note = f"  — {o.note}" if o.note else ""
            if (weights_dir / o.folder / o.name).exists():  # a junk or misplaced file holds the official name
                note += "  — a file of this name is there but is not usable (see above): replace it"
            lines.append(f"  {weights_dir / o.folder / o.name}  ({o.size}, from {o.source}){note}")
        lines.append("Or ComfyUI's all-in-one files (each read by our loaders too):")
        for o in COMFY_OFFICIAL:
            lines.append(f"  {weights_dir / o.folder / o.name}  ({o.size}, from {o.source})  — {o.note}")
        if not demo:
            lines.append("Or run with --demo to try the whole flow with tiny random demo weights.")
    return "\n".join(lines)


def missing_file_message(weights_dir: Path, folder: str, name: str) -> str:
    """Validation message for a loader whose file is not in the weights folder."""
    hint = next((o for o in OFFICIAL_FILES if o.folder == folder and o.name == name), None)
    where = Path(weights_dir) / folder / name
    sub, _, rest = name.partition("/")
    try:
        comfy_file = comfy.resolve_in(Path(weights_dir) / sub, rest) if sub in comfy.MODEL_SUBFOLDERS and rest else None
    except ValueError:  # a name the OS cannot represent (NUL): simply not found
        comfy_file = None
    if comfy_file is not None:
        held = comfy.detected(comfy_file)
        what = f"unreadable ({held.error})" if held.error else f"holds {', '.join(held.kinds) or 'no loadable network'}"
        msg = f"weights file '{name}' holds no loadable {folder} network: the file {what}"
    else:
        msg = f"weights file '{name}' not found: expected at {where}"
    if hint is not None:
        msg += f" ({hint.size}, download from {hint.source})"
    found = list_folder(weights_dir, folder)
    msg += f"; files in {folder}/: {', '.join(found) if found else 'none'}"
    return msg


def file_stamp(env, folder: str, name: object) -> Stamp | None:
    """The file stamp (runtime/stamps.py) of a weights file for cache keys: a file replaced under the same
    name re-runs."""
    path = env.weight_path(folder, name) if isinstance(name, str) else None
    return None if path is None else stamp(path)
