"""Training tokens/s at nanoGPT's exact size: babyterm's transformer step against nanoGPT's, interleaved.

    python benchmarks/same_size.py [--rounds 5] [--seconds 10] [--precision auto|fp32|bf16]
                                   [--compile auto|on|off]

Both models are 4 layers, 128 wide, 4 heads, block 64, batch 12, a 65-symbol vocabulary (nanoGPT's
Shakespeare characters). Each step is a whole training step: forward, cross-entropy, backward,
gradient clipping and AdamW, with random tokens (speed does not depend on the text). nanoGPT's step
is its train.py loop in fp32 (benchmarks/nanogpt_baseline.py); ours is the tutor's, in the precision
that `--precision` resolves to on this machine (auto: bf16 autocast only where the CPU or GPU runs
bf16 natively and its step probed faster), compiled where `--compile` (the tutor's rule) says;
the warm-up is printed apart and kept off the clock. The two alternate in rounds of `--seconds`
each, so a busy neighbour slows both alike.
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
from school.compiler import COMPILE_MODES, maybe_compile  # noqa: E402
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


def babyterm_step(precision: str, compile_mode: str = "off") -> Callable[[], None]:
    """The tutor's step; compiled as the tutor compiles it (school.compiler), warm-up included in
    the first call (tokens_per_s warms every step up before timing)."""
    model = build_brain(preset_config("transformer", "tiny", VOCAB, max_seq_len=BLOCK))
    learner = maybe_compile(
        model,
        compile_mode,
        torch.device("cpu"),
        on_warmup=lambda s: print(f"babyterm {precision}: compile warm-up {s:.1f} s", flush=True),
        on_fallback=print,
    )
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
            loss, pixel_pred, _ = learner(x, pixel, y)  # the tutor's fused head and loss
            loss = loss + syllabus.pixel_weight * F.mse_loss(pixel_pred, target.expand_as(pixel_pred))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), syllabus.grad_clip)
        optimizer.step()

    return step


def tokens_per_s(step: Callable[[], None], seconds: float) -> float:
    for _ in range(3):  # warm the allocator and the kernels' caches (and compile, the first time)
        step()
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        step()
        n += 1
    return n * BATCH * BLOCK / elapsed


def flops_per_token(dim: int, layers: int, vocab: int, hidden: int) -> float:
    """Training FLOPs per token, PaLM's count: 6 x matmul weights + 12 x layers x dim x window."""
    per_layer = 4 * dim * dim + 3 * dim * hidden  # wqkv + wo, and the feed-forward's matrices
    return 6 * (layers * per_layer + vocab * dim) + 12 * layers * dim * BLOCK


def matmul_peak(dtype: torch.dtype, rows: int, dim: int, hidden: int, seconds: float = 0.5) -> float:
    """FLOP/s of a plain (rows, dim) x (dim, hidden) matmul in `dtype`: the ceiling at the step's shapes."""
    x, w = torch.randn(rows, dim).to(dtype), torch.randn(dim, hidden).to(dtype)
    for _ in range(3):
        x @ w
    n, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        x @ w
        n += 1
    return n * 2 * rows * dim * hidden / elapsed


def cpu_flags() -> str:
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split("flags")[1].split("\n")[0].split())
    except (OSError, IndexError):
        flags = set()
    return (
        " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags) or "?"
    )


def spread(values: list[float]) -> str:
    return f"median {statistics.median(values):,.0f} (range {min(values):,.0f}-{max(values):,.0f})"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seconds", type=float, default=10.0, help="timing per model per round")
    p.add_argument("--precision", choices=PRECISIONS, default="auto")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compile", choices=COMPILE_MODES, default="auto", help="babyterm's step, as the tutor's")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    cfg = preset_config("transformer", "tiny", VOCAB, max_seq_len=BLOCK)
    rows = BATCH * BLOCK
    precision = resolve_precision(args.precision, torch.device("cpu"), cfg.to_dict())
    steps = {"nanoGPT fp32": nanogpt_step(), "babyterm fp32": babyterm_step("fp32", args.compile)}
    if precision == "bf16":
        steps["babyterm bf16"] = babyterm_step("bf16", args.compile)
    print(
        f"same-size: CPU {torch.backends.cpu.get_cpu_capability()} ({cpu_flags()}), {args.threads} threads, "
        f"--precision {args.precision} resolves to {precision}, --compile {args.compile}",
        flush=True,
    )
    measured: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(args.rounds):
        for name, step in steps.items():
            measured[name].append(tokens_per_s(step, args.seconds))
        print(f"round {r + 1}: " + ", ".join(f"{n} {v[-1]:,.0f}" for n, v in measured.items()), flush=True)
    theirs = statistics.median(measured["nanoGPT fp32"])
    ours_flops = flops_per_token(cfg.dim, cfg.n_layers, VOCAB, cfg.hidden_dim)
    nano_flops = flops_per_token(128, 4, VOCAB, 4 * 128 * 2 // 3)  # nanoGPT's 4x MLP: same matmul weights
    peaks = {
        dtype_name: matmul_peak(dtype, rows, cfg.dim, 4 * cfg.dim)
        for dtype_name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16))
    }
    print(
        f"matmul peak at ({rows}, {cfg.dim}) x ({cfg.dim}, {4 * cfg.dim}): "
        + ", ".join(f"{k} {v / 1e9:,.0f} GFLOP/s" for k, v in peaks.items())
    )
    for name, values in measured.items():
        flops = nano_flops if name.startswith("nanoGPT") else ours_flops
        peak = peaks["bf16" if name.endswith("bf16") else "fp32"]
        share = statistics.median(values) * flops / peak
        print(
            f"{name}: tokens/s {spread(values)}, {statistics.median(values) / theirs:.2f}x nanoGPT, "
            f"{share:.0%} of the {name.split()[-1]} matmul peak"
        )
    ratios = [b / a for a, b in zip(measured["nanoGPT fp32"], measured[f"babyterm {precision}"], strict=True)]
    print(
        f"same-size: babyterm ({precision}) / nanoGPT tokens/s, median of {args.rounds} interleaved rounds: "
        f"{statistics.median(ratios):.2f}x (range {min(ratios):.2f}-{max(ratios):.2f})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
