"""The weights folder: what is in each subfolder, and which official files belong where."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from runtime import comfy_folders as comfy
from runtime.comfy_folders import WEIGHT_SUFFIXES, list_files  # noqa: F401  (re-exported)

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
    """{subfolder: [files]} for every weights subfolder."""
    return {folder: list_folder(weights_dir, folder) for folder in SUBFOLDERS}


def missing_official(weights_dir: Path) -> list[OfficialFile]:
    """Official files absent from their subfolder (only kinds with no real, non-demo file at all).

    A kind held by a real (non-demo) file in ComfyUI's folders counts as present: an all-in-one
    `checkpoints/stable_cascade_stage_c.safetensors` covers Stage C, the text encoder, EffNet and previewer.
    """
    found = listing(weights_dir)
    have_real = {f: any(not Path(n).name.startswith("demo_") for n in names) for f, names in found.items()}
    for kind, folder in KIND_FOLDERS.items():
        if not have_real.get(folder):
            have_real[folder] = any(not comfy.detected(_offered_file(weights_dir, n)).demo
                                    for n in comfy.offered(weights_dir, kind))
    return [o for o in OFFICIAL_FILES if not have_real.get(o.folder) and o.name not in found.get(o.folder, [])]


def _offered_file(weights_dir: Path, name: str) -> Path:
    sub, _, rest = name.partition("/")
    return Path(weights_dir) / sub / rest


def guidance(weights_dir: Path, *, demo: bool = False) -> str:
    """Human-readable report: what was found, and which official files to put where."""
    weights_dir = Path(weights_dir)
    lines = [f"Weights folder: {weights_dir.resolve()}"]
    for folder, names in listing(weights_dir).items():
        lines.append(f"  {folder}/: {', '.join(names) if names else '(empty)'}")
    lines.extend(comfy.report_lines(weights_dir))
    missing = missing_official(weights_dir)
    if missing:
        lines.append("Missing official files (download from the Stable Cascade repo and place them as shown; "
                     "for stage_c/ and stage_b/ one file each is enough, full or lite):")
        for o in missing:
            note = f"  — {o.note}" if o.note else ""
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


def file_stamp(env, folder: str, name: object) -> tuple[int, int] | None:
    """(mtime, size) of a weights file for cache keys: a file replaced under the same name re-runs."""
    path = env.weight_path(folder, name) if isinstance(name, str) else None
    if path is None:
        return None
    stat = path.stat()
    return (stat.st_mtime_ns, stat.st_size)
