"""Configs read from the weights' shapes, for Stage C/B/A checkpoints of sizes no preset names.

Finetunes with other widths and small research checkpoints carry real key names but other shapes.
Everything that shapes a weight is read from the weights (widths, levels, block layout per level,
block repeats, kernel size, c_r, conditioning widths, patch-free input/output channels, Stage A levels
and bottleneck). What no weight records comes from the official rules, and is said here:

* attention heads: nn.MultiheadAttention packs all heads into one in_proj, so the count is invisible.
  Every official Stable Cascade network uses 64-wide heads (2048/32, 1536/24, 1280/20, 1152/18, 576/9),
  so nhead = c // 64; a width below 64 (or not a multiple of it) gets the largest head count whose
  heads are at least 64 wide, i.e. max(1, c // 64) when it divides c, else 1.
* patch size (Stage C 1, Stage B 2), self_attn (True), Stage C switch_level (False: the official
  levels keep their resolution), dropout (eval ignores it), the order of the extra time conditions
  (the official ('sca', 'crp') first, then any others sorted), Stage A's scale factor (0.43).

Every inferred config is then checked against every key and shape of the file by the caller
(`shape_problems`), so what no config explains is refused naming the first key that does not fit.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import LoadError
from .safetensors_io import TensorInfo

HEAD_DIM = 64
OFFICIAL_T_CONDS = ("sca", "crp")
INFERRED = "custom"  # the preset name reported for a config read from the shapes


def official_nhead(c: int) -> int:
    """Heads of an attention block of width c under the official 64-wide-head rule (see above)."""
    n = max(1, c // HEAD_DIM)
    return n if c % n == 0 else 1


class _Shapes:
    """Shape lookups that name the key they needed when it is absent or has the wrong rank."""

    def __init__(self, infos: Mapping[str, TensorInfo]):
        self.infos = infos

    def __call__(self, key: str, rank: int | None = None) -> tuple[int, ...]:
        info = self.infos.get(key)
        if info is None:
            raise LoadError(f"key {key} is missing, and no config works without it")
        shape = tuple(info.shape)
        if rank is not None and len(shape) != rank:
            raise LoadError(f"key {key} is {list(shape)}; no config gives it a rank other than {rank}")
        return shape

    def count(self, prefix: str) -> int:
        """How many consecutive indices prefix.0, prefix.1, … the file has."""
        pat = re.compile(re.escape(prefix) + r"\.(\d+)\.")
        found = {int(m.group(1)) for k in self.infos for m in [pat.match(k)] if m}
        n = 0
        while n in found:
            n += 1
        return n

    def has(self, key: str) -> bool:
        return key in self.infos


def _vote(values: list[int], what: str) -> int:
    """The value most keys agree on (the first seen on a tie): a single damaged key is then the misfit
    named, not the healthy keys that disagree with it."""
    if not values:
        raise LoadError(f"no key records {what}")
    return max(dict.fromkeys(values), key=values.count)


def _block_kind(sh: _Shapes, prefix: str) -> str:
    if sh.has(f"{prefix}.depthwise.weight"):
        return "C"
    if sh.has(f"{prefix}.mapper.weight"):
        return "T"
    if sh.has(f"{prefix}.attention.attn.in_proj_weight"):
        return "A"
    raise LoadError(f"keys under {prefix}. are no ResBlock, TimestepBlock or AttnBlock that any config builds")


def _period(kinds: list[str], where: str) -> tuple[str, int]:
    """The level's block pattern (e.g. 'CTA') and its repeat count: the shortest period of the sequence."""
    for p in range(1, len(kinds) + 1):
        if len(kinds) % p == 0 and kinds == kinds[:p] * (len(kinds) // p):
            return "".join(kinds[:p]), len(kinds) // p
    raise LoadError(f"{where}: no pattern")  # unreachable: p = len(kinds) always fits


def _levels(sh: _Shapes) -> dict[str, Any]:
    """The U-Net level structure shared by Stage C and B (spec §1.2): widths, blocks, repeats, heads."""
    n = sh.count("down_blocks")
    if n == 0 or sh.count("up_blocks") != n:
        raise LoadError(f"key up_blocks.{sh.count('up_blocks')}/down_blocks.{n}: the down and up passes "
                        "need the same number of levels, at least one")
    widths, level_config, down, up, rep_down, rep_up = [], [], [], [], [], []
    for i in range(n):
        u = n - 1 - i  # up_blocks run deepest first
        kinds_d = [_block_kind(sh, f"down_blocks.{i}.{j}") for j in range(sh.count(f"down_blocks.{i}"))]
        kinds_u = [_block_kind(sh, f"up_blocks.{u}.{j}") for j in range(sh.count(f"up_blocks.{u}"))]
        pat_d, cnt_d = _period(kinds_d, f"down_blocks.{i}") if kinds_d else ("", 0)
        pat_u, cnt_u = _period(kinds_u, f"up_blocks.{u}") if kinds_u else ("", 0)
        if pat_d and pat_u and pat_d != pat_u:
            raise LoadError(f"key up_blocks.{u}.0: level {i} has blocks {pat_d!r} down but {pat_u!r} up; "
                            "no config builds that")
        level_config.append(pat_d or pat_u or "C")
        down.append(cnt_d)
        up.append(cnt_u)
        if not (kinds_d or kinds_u):
            raise LoadError(f"key down_blocks.{i}: level {i} has no blocks, so its width cannot be known")
        widths.append(_vote([_width(sh, f"down_blocks.{i}.{j}") for j in range(len(kinds_d))]
                            + [_width(sh, f"up_blocks.{u}.{j}") for j in range(len(kinds_u))], f"level {i}'s width"))
        rep_down.append(sh.count(f"down_repeat_mappers.{i}") + 1)
        rep_up.append(sh.count(f"up_repeat_mappers.{u}") + 1)
    return {"c_hidden": tuple(widths), "level_config": tuple(level_config),
            "blocks": (tuple(down), tuple(up[::-1])), "block_repeat": (tuple(rep_down), tuple(rep_up[::-1])),
            "nhead": tuple(official_nhead(c) if "A" in lc else -1 for c, lc in zip(widths, level_config))}


def _width(sh: _Shapes, prefix: str) -> int:
    kind = _block_kind(sh, prefix)
    if kind == "C":
        return sh(f"{prefix}.depthwise.weight", 4)[0]
    if kind == "T":
        return sh(f"{prefix}.mapper.weight", 2)[0] // 2
    return sh(f"{prefix}.attention.attn.out_proj.weight", 2)[0]


def _all(sh: _Shapes, suffix: str) -> list[str]:
    """Block keys ending in suffix, down pass then up pass, in index order."""
    def order(k: str) -> tuple:
        return tuple(int(p) if p.isdigit() else p for p in k.split("."))
    return sorted((k for k in sh.infos if k.endswith(suffix) and k.startswith(("down_blocks.", "up_blocks."))),
                  key=lambda k: (not k.startswith("down"), order(k)))


def _blocks_common(sh: _Shapes, kinds: str) -> dict[str, Any]:
    """kernel_size, c_r and t_conds from the first ResBlock/TimestepBlock found (consistency is checked later)."""
    out: dict[str, Any] = {}
    dws = _all(sh, ".depthwise.weight")
    if dws:
        out["kernel_size"] = _vote([sh(k, 4)[-1] for k in dws], "the kernel size")
    tms = [k for k in _all(sh, ".mapper.weight") if not k.endswith(".kv_mapper.weight")]
    tm = tms[0] if tms else None
    if tm is not None:
        out["c_r"] = _vote([sh(k, 2)[1] for k in tms], "c_r")
        base = tm[: -len("mapper.weight")]
        names = {k[len(base) + len("mapper_"):].split(".")[0] for k in sh.infos if k.startswith(base + "mapper_")}
        out["t_conds"] = tuple(c for c in OFFICIAL_T_CONDS if c in names) + tuple(sorted(names - set(OFFICIAL_T_CONDS)))
    return out


def _stage_c(sh: _Shapes) -> Any:
    from models.stage_c import StageCConfig
    lv = _levels(sh)
    c_text = sh("clip_txt_mapper.weight", 2)[1]
    c_cond = _vote([sh("clip_txt_mapper.weight")[0]] + [sh(k, 2)[1] for k in _all(sh, ".kv_mapper.1.weight")],
                   "c_cond")
    pooled_out, c_pooled = sh("clip_txt_pooled_mapper.weight", 2)
    if pooled_out % c_cond:
        raise LoadError(f"key clip_txt_pooled_mapper.weight is {[pooled_out, c_pooled]}: its rows are no "
                        f"multiple of c_cond {c_cond}")
    n = len(lv["c_hidden"])
    return StageCConfig(
        c_in=sh("embedding.1.weight", 4)[1], c_out=sh("clf.1.weight", 4)[0], c_cond=c_cond, c_clip_text=c_text,
        c_clip_text_pooled=c_pooled, c_clip_img=sh("clip_img_mapper.weight", 2)[1], c_clip_seq=pooled_out // c_cond,
        dropout=tuple(0.1 for _ in range(n)), switch_level=tuple(False for _ in range(n - 1)) or (False,),
        **lv, **_blocks_common(sh, "CTA"))


def _stage_b(sh: _Shapes) -> Any:
    from models.stage_b import StageBConfig
    lv = _levels(sh)
    rows, c_clip = sh("clip_mapper.weight", 2)
    kvs = _all(sh, ".kv_mapper.1.weight")
    c_cond = _vote([sh(k, 2)[1] for k in kvs], "c_cond") if kvs else rows // StageBConfig.c_clip_seq
    if rows % c_cond:
        raise LoadError(f"key clip_mapper.weight is {[rows, c_clip]}: its rows are no multiple of c_cond {c_cond}")
    p = StageBConfig.patch_size
    c_in, c_out = sh("embedding.1.weight", 4)[1], sh("clf.1.weight", 4)[0]
    if c_in % (p * p) or c_out % (p * p):
        raise LoadError(f"key embedding.1.weight/clf.1.weight: channels {c_in}/{c_out} are no multiple of "
                        f"the patch area {p * p}")
    return StageBConfig(
        c_in=c_in // (p * p), c_out=c_out // (p * p), c_cond=c_cond, c_clip=c_clip, c_clip_seq=rows // c_cond,
        c_effnet=sh("effnet_mapper.0.weight", 4)[1], c_pixels=sh("pixels_mapper.0.weight", 4)[1],
        dropout=tuple(0.1 if "A" in lc else 0.0 for lc in lv["level_config"]), **lv, **_blocks_common(sh, "CTA"))


def _stage_a(sh: _Shapes) -> Any:
    from models.stage_a import StageAConfig
    n_down, n_up = sh.count("down_blocks"), sh.count("up_blocks")
    if n_down < 2 or n_down % 2:
        raise LoadError(f"key down_blocks.{n_down - 1}: Stage A's encoder has 2 entries per level; {n_down} fit none")
    levels = n_down // 2
    bottleneck = n_up - 1 - 2 * (levels - 1)
    if bottleneck < 1:
        raise LoadError(f"key up_blocks.{n_up - 1}: {n_up} decoder entries leave no bottleneck block for "
                        f"{levels} levels")
    k = sh("vquantizer.codebook.weight", 2)[0]
    last = f"down_blocks.{n_down - 1}.0.weight"  # the encoder's latent projection [c_latent, c_hidden]
    c_latent = _vote([sh(last, 4)[0], sh("vquantizer.codebook.weight")[1], sh("up_blocks.0.0.weight", 4)[1]],
                     "c_latent")
    c_hidden = _vote([sh("up_blocks.0.0.weight")[0], sh(last)[1]], "c_hidden")
    return StageAConfig(levels=levels, bottleneck_blocks=bottleneck, c_hidden=c_hidden, c_latent=c_latent,
                        codebook_size=k)


_READERS = {"stage_c": _stage_c, "stage_b": _stage_b, "stage_a": _stage_a}


def infer_config(kind: str, infos: Mapping[str, TensorInfo]) -> Any:
    """Our config dataclass for a Stage C/B/A file from its canonical keys and shapes; None for other kinds.

    Raises LoadError naming the key that no config can explain. The result still has to be checked
    against every key (`first_misfit`).
    """
    reader = _READERS.get(kind)
    return reader(_Shapes(infos)) if reader is not None else None


def first_misfit(expected: Mapping[str, tuple[int, ...]], infos: Mapping[str, TensorInfo]) -> str | None:
    """The first key (in file order) an inferred config does not build with that shape, else the first it
    needs that the file lacks; None when every key fits."""
    for key, info in infos.items():
        if key not in expected:
            return f"key {key} {list(info.shape)} is built by no config that explains the other weights"
        if tuple(info.shape) != expected[key]:
            return (f"key {key} is {list(info.shape)}, but the config the other weights describe gives it "
                    f"{list(expected[key])}")
    missing = [k for k in expected if k not in infos]
    return f"key {missing[0]} is missing (the config the other weights describe needs it)" if missing else None
