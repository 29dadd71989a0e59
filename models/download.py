"""`python -m models.download lite|full|FILE|URL … [--weights DIR]`: fetch weights into the weights folder.

`lite` / `full` are the official sets (runtime/downloads.py SETS), FILE an official file name
(`stage_a.safetensors`), URL any http(s) link (a hub `blob/` page link works too; the file goes to the
folder its keys say). From the Hugging Face hub (HF_ENDPOINT, default huggingface.co) with the token
of HF_TOKEN or `hf auth login`; resumable (run it again after an interruption), sha256-checked,
renamed into place only once complete. Exit status 0 when every file is in place, 1 otherwise.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from config import PROJECT_ROOT
from runtime.downloads import SETS, Downloads, resolve_request
from runtime.hub_fetch import DownloadError
from runtime.weights import OFFICIAL_FILES


def build_parser() -> argparse.ArgumentParser:
    names = ", ".join(o.name for o in OFFICIAL_FILES)
    p = argparse.ArgumentParser(prog="python -m models.download", description=__doc__.split("\n\n")[0],
                                epilog=f"official files: {names}")
    p.add_argument("what", nargs="+", metavar="lite|full|FILE|URL",
                   help=f"a set ({', '.join(SETS)}), official file names, or http(s) links")
    p.add_argument("--weights", default=None,
                   help="weights folder (default weights/; env CASCADE_WEIGHTS)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    weights = Path(args.weights or os.environ.get("CASCADE_WEIGHTS") or PROJECT_ROOT / "weights").expanduser()
    sets = [w for w in args.what if w in SETS]
    urls = [w for w in args.what if "://" in w]
    files = [w for w in args.what if w not in SETS and w not in urls]
    dl = Downloads(weights, terminal=True, workers=1)  # one at a time: one readable bar
    try:
        tasks = dl.start_official(resolve_request(files))
        for s in sets:
            tasks += dl.start_official(resolve_request(set_name=s))
        tasks += [dl.start_url(u) for u in urls]
    except DownloadError as exc:
        dl.close()
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        dl.wait(tasks)
    except KeyboardInterrupt:
        dl.close()
        print("\ninterrupted: run the same command again to resume", file=sys.stderr)
        return 1
    dl.close()
    failed = 0
    for t in {t.id: t for t in tasks}.values():  # a file in two sets is one task
        if t.state == "done":
            print(f"ok    {weights / t.path}")
        else:
            failed += 1
            print(f"FAIL  {t.name}: {t.error or t.state}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
