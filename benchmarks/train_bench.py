"""Train each brain and preset on a text file for a fixed training-time budget; one summary line per run.

    python benchmarks/train_bench.py --text ../shared/data/tinyshakespeare.txt --seconds 300

Each run is a fresh baby in a temporary home. Tokenizer training and corpus encoding happen before
the clock starts; evaluation time is kept off the clock (as in benchmarks/nanogpt_baseline.py), so
the two compare side by side. Bits per byte are measured on held-out text (`--val-text`, or the
text's last 10%), in UTF-8 bytes.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from school.compiler import COMPILE_MODES  # noqa: E402
from school.options import PRECISIONS, TrainOptions  # noqa: E402
from school.tutor import Tutor  # noqa: E402


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if sys.platform != "darwin" else kb / 2**20


def bench(args: argparse.Namespace, brain: str, preset: str, home: str) -> dict:
    overrides = json.loads(args.syllabus) if args.syllabus else {}
    brain_overrides = json.loads(args.brain_config) if args.brain_config else {}
    options = TrainOptions(
        baby=f"{brain}-{preset}",
        home=home,
        library=str(Path(args.text).resolve()),
        brain=brain,
        preset=None if preset == "recipe" else preset,  # recipe: sized to the text (school/recipe.py)
        device=args.device,
        precision=args.precision,
        threads=args.threads,
        vocab_size=None if preset == "recipe" else args.vocab,
        val_text=str(Path(args.val_text).resolve()) if args.val_text else None,
        compile=args.compile,
    )
    tutor = Tutor(options, syllabus_overrides=overrides, brain_overrides=brain_overrides)
    tutor.prepare()
    syl = tutor.syllabus
    t0 = time.perf_counter()
    tutor.train_step()  # compiles the step where --compile does: warm-up, off the clock
    print(f"  first step (the compile warm-up where compiled) {time.perf_counter() - t0:.1f} s", flush=True)
    if (
        "decay_steps" not in overrides
    ):  # let the schedule finish inside the budget, as a user's 5 minutes would
        t0 = time.perf_counter()
        for _ in range(5):
            tutor.train_step()
        per_step = (time.perf_counter() - t0) / 5
        syl.decay_steps = max(syl.warmup_steps + 1, int(args.seconds / per_step))
        tutor.train_step()
    params = tutor.model.num_params()
    train_s, next_eval, evals, t_first = 0.0, 0.0, [], {}
    tokens0 = tutor.tokens_seen
    while True:
        if train_s >= next_eval or train_s >= args.seconds:
            e = tutor.evaluate()
            evals.append((train_s, e.val_bpb))
            for bar in (2.72, 2.28, 2.0):
                if e.val_bpb <= bar and bar not in t_first:
                    t_first[bar] = train_s
            print(
                f"  {brain:<11} {preset:<8} t={train_s:6.1f}s step {tutor.step:6d}  loss {e.train_loss:.3f}  "
                f"val_loss {e.val_loss:.3f}  val_bpb {e.val_bpb:.3f}",
                flush=True,
            )
            next_eval += args.eval_every
            if train_s >= args.seconds:
                break
        t0 = time.perf_counter()
        tutor.train_step()
        train_s += time.perf_counter() - t0
    tokens = tutor.tokens_seen - tokens0
    at_80 = [b for t, b in evals if t <= 80 + args.eval_every / 2]  # the eval nearest 80 s
    return {
        "brain": brain,
        "preset": preset,
        "params": params,
        "precision": tutor.room.precision,
        "steps": tutor.step,
        "tokens_per_s": tokens / train_s,
        "batch": syl.batch_size,
        "block": tutor.block_size,
        "val_bpb_80s": at_80[-1],
        "val_bpb_end": evals[-1][1],
        "best": min(b for _, b in evals),
        "first": t_first,
        "peak_rss_mb": peak_rss_mb(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", default=str(ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"))
    p.add_argument("--val-text", default=None, help="score this file (default: the text's held-out tail)")
    p.add_argument("--seconds", type=float, default=300.0, help="training time per run (evaluation excluded)")
    p.add_argument("--eval-every", type=float, default=20.0, help="seconds of training between evaluations")
    p.add_argument("--brains", default="transformer,babyllm")
    p.add_argument("--presets", default="tiny", help="comma-separated; recipe: the size the recipe picks")
    p.add_argument("--device", default="cpu")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--compile", choices=COMPILE_MODES, default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--vocab", type=int, default=4200)
    p.add_argument("--syllabus", default=None, help="JSON overrides, e.g. '{\"batch_size\": 32}'")
    p.add_argument("--brain-config", default=None, help="JSON overrides of the brain, e.g. '{\"dim\": 128}'")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as home:
        for brain in args.brains.split(","):
            for preset in args.presets.split(","):
                r = bench(args, brain, preset, home)
                firsts = ", ".join(f"<= {k}: {v:.0f}s" for k, v in sorted(r["first"].items(), reverse=True))
                print(
                    f"babyterm {r['brain']} {r['preset']} ({r['precision']}): "
                    f"{r['params'] / 1e6:.2f}M params, "
                    f"batch {r['batch']}x{r['block']}, {r['tokens_per_s']:,.0f} tokens/s, "
                    f"val_bpb at 80s {r['val_bpb_80s']:.3f}, at {args.seconds:.0f}s {r['val_bpb_end']:.3f} "
                    f"(best {r['best']:.3f}; {firsts or 'no bar'}), "
                    f"{r['steps']} steps, peak RSS {r['peak_rss_mb']:.0f} MB",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
