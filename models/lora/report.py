"""What one LoRA application did: matched tensors, skipped keys with reasons, a readable summary."""
from __future__ import annotations

import re
from dataclasses import dataclass, field


class LoraError(ValueError):
    """The LoRA file cannot be used at all (unreadable, or nothing in it fits the connected models)."""


# (pattern over file keys, model family). The first family with a hit is named in the message.
_FOREIGN = (
    (re.compile(r"lora_te[12]_|text_encoder_2\.|add_embedding|conditioner\.embedders"), "SDXL"),
    (re.compile(r"double_blocks|single_blocks|single_transformer_blocks|guidance_in"), "Flux"),
    (re.compile(r"joint_blocks|context_block|x_block"), "SD3"),
    (re.compile(r"input_blocks|output_blocks|middle_block|(down|up)_blocks[._]\d+[._]attentions|mid_block"
                r"|transformer_blocks|attn[12][._]to_"), "SD1.5/SDXL"),
    (re.compile(r"lora_decoder_unet_|^decoder\."), "Stable Cascade Stage B (decoder)"),
    (re.compile(r"lora_prior_unet_|^prior\."), "Stable Cascade Stage C (prior)"),
)


def guess_family(keys: list[str]) -> str | None:
    """Best guess of which model a set of unmatched LoRA keys was trained for."""
    for pattern, family in _FOREIGN:
        if any(pattern.search(k) for k in keys):
            return family
    return None


@dataclass
class LoraReport:
    """One application of one LoRA file; `text()` is what the user sees."""

    source: str
    formats: list[str] = field(default_factory=list)
    matched_tensors: int = 0
    patched: dict[str, int] = field(default_factory=dict)  # target ("stage_c", "text_encoder", …) → layers
    unmatched: list[tuple[str, str]] = field(default_factory=list)  # (file key, reason)
    notes: list[str] = field(default_factory=list)  # things not applied: also job warnings
    info: list[str] = field(default_factory=list)  # how it was applied: node output only
    total_tensors: int = 0

    def add_unmatched(self, keys: list[str], reason: str) -> None:
        """Record file keys that were not applied and why."""
        self.unmatched.extend((k, reason) for k in keys)

    def count(self, target: str, tensors: int) -> None:
        """Record one patched layer on `target` made from `tensors` file tensors."""
        self.patched[target] = self.patched.get(target, 0) + 1
        self.matched_tensors += tensors

    def warnings(self, limit: int = 8) -> list[str]:
        """One message per reason for unmatched keys (with a few example keys) plus the notes."""
        by_reason: dict[str, list[str]] = {}
        for key, reason in self.unmatched:
            by_reason.setdefault(reason, []).append(key)
        out = []
        for reason, keys in by_reason.items():
            shown = ", ".join(keys[:limit]) + (f", … ({len(keys) - limit} more)" if len(keys) > limit else "")
            out.append(f"LoRA {self.source}: {len(keys)} tensor(s) not applied: {reason}: {shown}")
        return out + [f"LoRA {self.source}: {n}" for n in self.notes]

    def nothing_matched_message(self) -> str:
        """The error text when no tensor of the file fits the connected models."""
        family = guess_family([k for k, _ in self.unmatched])
        first = ", ".join(k for k, _ in self.unmatched[:3])
        if family:
            head = f"this LoRA is for a different model: its keys look like {family} ({first}, …)"
        else:
            head = f"none of the LoRA's {self.total_tensors} tensors fit the connected models ({first}, …)"
        reasons = sorted({r for _, r in self.unmatched})
        return f"LoRA {self.source}: {head}. Reasons: " + "; ".join(reasons[:4])

    def text(self) -> str:
        """Multi-line human summary for the node's STRING output."""
        targets = ", ".join(f"{t}: {n} layers" for t, n in self.patched.items()) or "nothing"
        fmt = "/".join(self.formats) or "unknown"
        lines = [f"{self.source} ({fmt}): {self.matched_tensors} of {self.total_tensors} tensors applied "
                 f"({targets}); {len(self.unmatched)} not applied."]
        lines += self.warnings() + self.info
        return "\n".join(lines)
