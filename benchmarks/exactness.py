"""fp32 loss at step 500 at a fixed seed: run it on two versions of the code and compare (issue 12).

    python benchmarks/exactness.py [--text ../shared/data/tinyshakespeare.txt] [--steps 500] [--compile off]

A transformer tiny brain (window 64, batch 8, a 300-token tokenizer) on the text's first 200 kB,
1 thread, fp32. Prints the training-batch loss at steps 30 and N, the mean of the last 10, and the
validation loss over 16 fixed batches at step N. The single-batch loss is noisy: rounding-level
differences grow into a different trajectory by step 500, so compare the validation loss too.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from school.compiler import COMPILE_MODES  # noqa: E402
from school.options import TrainOptions  # noqa: E402
from school.tutor import Tutor  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", default=str(ROOT.parent / "shared/data/tinyshakespeare.txt"))
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--compile", choices=COMPILE_MODES, default="auto", help="the tutor's rule by default")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as home:
        library = Path(home) / "library.txt"
        library.write_text(Path(args.text).read_text(encoding="utf-8")[:200_000], encoding="utf-8")
        options = TrainOptions(
            baby="ref",
            home=home,
            library=str(library),
            brain="transformer",
            preset="tiny",
            vocab_size=300,
            threads=1,
            precision="fp32",
            compile=args.compile,
        )
        overrides = dict(batch_size=8, eval_batches=16, save_every=10**6, save_minutes=600.0)
        tutor = Tutor(options, syllabus_overrides=overrides, brain_overrides=dict(max_seq_len=64))
        torch.manual_seed(1234)  # prepare() builds the brain before it seeds: seed here
        tutor.prepare()
        losses = [tutor.train_step()["loss"] for _ in range(args.steps)]
        print(f"step 30 loss {losses[29]:.5f}; step {args.steps} loss {losses[-1]:.5f}")
        print(f"mean of the last 10 {sum(losses[-10:]) / 10:.5f}")
        print(f"validation loss at step {args.steps}: {tutor.evaluate().val_loss:.5f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
