"""What the scribe costs: held-out bits/byte of one baby taught with its scribe's lines and without them.

    python benchmarks/scribe_cost.py --text ../shared/data/tinyshakespeare.txt --steps 3000

One baby is born (the recipe, or `--preset`), then copied before its first step, so both runs start
from the same weights, tokenizer, corpus and seed. Both let the scribe comment on guesses (so every
other draw is alike, and its cadence is counted in steps); "with" trains on its lines within their
bounded share (school/librarian.py), "without" never reads them (a share of 0). The target (issue
11): a cost of at most 0.01 bits/byte.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from school.options import TrainOptions  # noqa: E402
from school.tutor import Tutor  # noqa: E402
from soul.paths import baby_paths  # noqa: E402


def options(args: argparse.Namespace, home: str, baby: str) -> TrainOptions:
    return TrainOptions(
        baby=baby,
        home=home,
        library=str(Path(args.text).resolve()),
        preset=args.preset,
        device=args.device,
        threads=args.threads,
        steps=args.steps,
        val_text=str(Path(args.val_text).resolve()) if args.val_text else None,
    )


def teach(args: argparse.Namespace, home: str, baby: str, share: float | None) -> dict:
    """Train `baby` for `--steps`; share None keeps the syllabus's scribe share cap, 0 turns it off."""
    overrides = {"guess_every": args.guess_every} | ({} if share is None else {"scribe_max_share": share})
    tutor = Tutor(options(args, home, baby), syllabus_overrides=overrides)
    tutor.prepare()
    # the scribe's cadence in steps, not seconds: both runs hear it at the same steps
    tutor.scribe.clock = lambda: float(tutor.step)
    tutor.scribe.min_interval_s = tutor.scribe.record_interval_s = args.scribe_interval
    t0 = time.perf_counter()
    tutor.run()
    seconds = time.perf_counter() - t0
    e = tutor.evaluate()
    return {
        "val_bpb": e.val_bpb,
        "scribe_tokens": tutor.librarian.scribe_tokens,
        "share": tutor.librarian.scribe_share(),
        "cap": tutor.librarian.scribe_max_share,
        "seconds": seconds,
        "params": tutor.model.num_params(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    p.add_argument("--val-text", default=None)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--preset", default=None, help="tiny, small or original (default: the recipe)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--guess-every", type=int, default=100)
    p.add_argument("--cap", type=float, default=None, help="the scribe's share cap (default: the syllabus's)")
    p.add_argument(
        "--scribe-interval", type=float, default=100.0, help="steps between comments (the app: 20 s)"
    )
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as home:
        born = Tutor(options(args, home, "with"))
        born.prepare()  # birth only: tokenizer, corpus, config; no step taken
        shutil.copytree(born.paths.root, baby_paths("without", home).root)
        del born
        runs = {"with": teach(args, home, "with", args.cap), "without": teach(args, home, "without", 0.0)}
    w, wo = runs["with"], runs["without"]
    print(f"{w['params'] / 1e6:.2f}M params, {args.steps} steps each on {Path(args.text).name}")
    for name, r in runs.items():
        print(
            f"  {name:<8} held-out {r['val_bpb']:.4f} bits/byte  scribe {r['scribe_tokens']:,} tokens, "
            f"share {r['share']:.4f} (cap {r['cap']:.3f})  {r['seconds']:.0f} s"
        )
    print(f"cost of the scribe: {w['val_bpb'] - wo['val_bpb']:+.4f} bits/byte (target <= 0.01)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
