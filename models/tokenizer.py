"""CLIP BPE tokenizer built offline from the merges shipped in models/data (MIT, OpenAI 2021)."""
from __future__ import annotations

import gzip
import html
from pathlib import Path

from transformers import CLIPTokenizer

MERGES_PATH = Path(__file__).parent / "data" / "clip_bpe_merges.txt.gz"
BOS_ID = 49406
EOS_ID = 49407
MAX_LENGTH = 77


def bytes_to_unicode() -> dict[int, str]:
    """CLIP/GPT-2's reversible byte -> printable unicode character table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def load_merges(path: Path = MERGES_PATH) -> list[tuple[str, str]]:
    """The 48,894 BPE merges CLIP uses, as (left, right) pairs."""
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    lines = [ln for ln in text.split("\n")[1:] if ln]
    return [tuple(ln.split(" ")) for ln in lines]  # type: ignore[misc]


def build_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """Bytes, bytes + '</w>', one token per merge, then the two specials: 49,408 entries."""
    base = list(bytes_to_unicode().values())
    tokens = base + [t + "</w>" for t in base] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {t: i for i, t in enumerate(tokens)}


def clean_text(text: str) -> str:
    """CLIP's clean-up without ftfy: unescape HTML twice and collapse whitespace."""
    return " ".join(html.unescape(html.unescape(text)).split())


def clip_tokenizer() -> CLIPTokenizer:
    """A transformers CLIPTokenizer for CLIP ViT-bigG/14, padding with <|endoftext|> to 77 tokens."""
    merges = load_merges()
    tok = CLIPTokenizer(vocab=build_vocab(merges), merges=merges, unk_token="<|endoftext|>",
                        bos_token="<|startoftext|>", eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                        model_max_length=MAX_LENGTH)
    return tok


def tokenize(tok: CLIPTokenizer, texts: list[str]) -> dict:
    """Token ids and attention mask [B,77] as torch tensors (truncated, padded with EOS)."""
    return tok([clean_text(t) for t in texts], padding="max_length", max_length=MAX_LENGTH, truncation=True,
               return_tensors="pt")
