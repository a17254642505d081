"""Training tokens/s at nanoGPT's exact size: babyterm's transformer step against nanoGPT's, interleaved.

    python benchmarks/same_size.py [--rounds 5] [--seconds 10] [--precision auto|fp32|bf16]

Both models are 4 layers, 128 wide, 4 heads, block 64, batch 12, a 65-symbol vocabulary (nanoGPT's
Shakespeare characters). Each step is a whole training step: forward, cross-entropy, backward,
gradient clipping and AdamW, with random tokens (speed does not depend on the text). nanoGPT's step
is its train.py loop in fp32 (benchmarks/nanogpt_baseline.py); ours is the tutor's, in the precision
that `--precision` resolves to on this machine (auto: bf16 autocast only where the CPU or GPU runs
bf16 natively). The two alternate in rounds of `--seconds` each, so a busy neighbour slows both alike.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from nanogpt_baseline import GPT, GPTConfig, TrainConfig  # noqa: E402

from brain import build_brain, preset_config  # noqa: E402
from school.classroom import resolve_precision  # noqa: E402
from school.options import PRECISIONS  # noqa: E402
from school.syllabus import SYLLABI  # noqa: E402
from school.tutor import make_optimizer  # noqa: E402

VOCAB, BLOCK, BATCH = 65, 64, 12


def nanogpt_step() -> Callable[[], None]:
    model = GPT(GPTConfig(vocab_size=VOCAB, block_size=BLOCK))
    optimizer = model.configure_optimizers(TrainConfig())
    x, y = torch.randint(0, VOCAB, (2, BATCH, BLOCK))

    def step() -> None:
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step


def babyterm_step(precision: str) -> Callable[[], None]:
    model = build_brain(preset_config("transformer", "tiny", VOCAB, max_seq_len=BLOCK))
    syllabus = SYLLABI["tiny"]
    optimizer = make_optimizer(model, syllabus, torch.device("cpu"))
    x, y = torch.randint(0, VOCAB, (2, BATCH, BLOCK))
    pixel, target = torch.full((3,), 0.5), torch.full((3,), 0.5)
    autocast = (
        (lambda: torch.autocast("cpu", dtype=torch.bfloat16))
        if precision == "bf16"
        else contextlib.nullcontext
    )

    def step() -> None:
        with autocast():
            logits, pixel_pred = model(x, pixel)
            loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            loss = loss + syllabus.pixel_weight * F.mse_loss(pixel_pred, target.expand_as(pixel_pred))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), syllabus.grad_clip)
        optimizer.step()

    return step


def tokens_per_s(step: Callable[[], None], seconds: float) -> float:
    for _ in range(3):  # warm the allocator and the kernels' caches
        step()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        n += 1
    return n * BATCH * BLOCK / elapsed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10.0, help="timing per model per round")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    precision = resolve_precision(args.precision, torch.device("cpu"))
    ours, theirs = babyterm_step(precision), nanogpt_step()
    print(
        f"same-size: CPU {torch.backends.cpu.get_cpu_capability()}, {args.threads} threads, "
        f"babyterm in {precision}, nanoGPT in fp32",
        flush=True,
    )
    ratios = []
    for r in range(args.rounds):
        a, b = tokens_per_s(theirs, args.seconds), tokens_per_s(ours, args.seconds)
        ratios.append(b / a)
        print(
            f"round {r + 1}: nanoGPT {a:,.0f} tokens/s, babyterm {b:,.0f} tokens/s ({b / a:.2f}x)", flush=True
        )
    print(
        f"same-size: babyterm / nanoGPT tokens/s, median of {args.rounds} rounds: "
        f"{statistics.median(ratios):.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
