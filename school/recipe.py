"""The recipe: a new baby's vocabulary, size, context and regularisation, chosen from its library and machine.

A small library is learned by heart long before its baby can say anything new, so the enemy here is
memorising, not speed. Two budgets bound the brain's parameters P (its matrices, embeddings apart):

    P_data    = DATA_PARAMS_PER_TOKEN × N         N ≈ the library's bytes / BYTES_PER_TOKEN
    P_compute = sqrt(C / 60)                      C = FLOP/s × TRAINING_SPEEDUP × RECIPE_SECONDS
                                                    (C = 6 P D with D = 10 P:
                                                    half Chinchilla's 20 tokens a weight, as a short
                                                    run favours a bigger brain)
    P         = (P_data⁻² + P_compute⁻²)^-½       (near the smaller, and growing with the library
                                                    whatever the machine)

The machine's speed is an input (tokens/s of an eager fp32 training step of the PROBE brain,
measured once at birth by `measure_speed`), so the choice is deterministic for a given library and
speed; the batch is ~0.1 s of steps at that pace. Dropout and weight decay fall as the library
grows; the context and vocabulary grow with it (the vocabulary until its head would outweigh the
brain: HEAD_SHARE). A width of
d = (4P)^(1/3) with d/48 layers gives 12·L·d² ≈ P. Every choice can be overridden by the user.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass
from typing import Any

BYTES_PER_TOKEN = 3.6
"""About what a words-v2 tokenizer of a recipe's size gets on English prose."""
DATA_PARAMS_PER_TOKEN = 8.0
"""With dropout and weight decay, a brain of ~8 matrix weights per library token learns for a
while before it starts to memorise (the default library memorised at ~13 without either; at 3, a
200 KB library plateaued sooner, and higher, than the old tiny preset: README)."""
RECIPE_SECONDS = 300.0
"""The run the recipe plans for: `babyterm train --minutes 5`."""
MIN_PARAMS = 40_000
ATTENTION_DROPOUT = 0.0
"""A recipe's brain drops out on its residual branches only. Dropout on the attention weights sends
a CPU's scaled_dot_product_attention from the flash kernel to the math one, which materialises
every (T, T) score: at 1 MB (3x128, context 256) the compiled step ran at 12.2k tokens/s with it and
24.7k without, and held-out bits/byte after 5 minutes on nanoGPT's split came out the same (README)."""
BPE_DROPOUT = 0.1
"""Each training token is read as its merge's two pieces with this chance, at each of two levels
(school/unmerge.py). Measured in pairs, 5 minutes from cold on one 2-core Xeon, best held-out
bits/byte and the gap to the baby's own text: the default library 0.957 and 0.504 against 0.975 and
0.836 without; a 190 KB notes folder 2.028 and 0.821 against 2.097 and 1.004; tinyshakespeare's
first 90% 2.143 on the last 10% (scored by transformers) against 2.183. 0.2 and 0.25 learned less
(2.259 on tinyshakespeare; 1.200 on the default library). Not measured at 10 MB, which 5 minutes
read less than once (README)."""
HEAD_SHARE = 0.7
"""The output head's weights (vocabulary x width) are at most this share of the body's matrices.
The data alone asks for 4·sqrt(bytes) tokens, 12,672 at 10 MB, where on a 2-core CPU the brain is
3 x 160: the head then held 2.2x the body's weights and took most of each step. 5 minutes on 10 MB
of the standard library (held-out whole modules; one 2-core Xeon, back to back) read 1.414
bits/byte with 12,672 tokens (1,050 steps, a 44 s compile), 1.280 with 4,096 and 1.310 with the
4,032 this cap gives (2,100 and 2,250 steps, ~20 s). At that Xeon's probe speed (~30k tokens/s)
libraries under ~1 MB ask for fewer tokens than the cap; a slower machine's smaller brain caps
sooner (1 MB at 15k tokens/s: 3 x 128 and 3,200 tokens, not 3,968; unmeasured)."""
TRAINING_SPEEDUP = 1.9
"""How much more a recipe's brain computes per second in training (compiled, and in bf16 where the
CPU has it natively) than the probe's eager fp32 step: 3 x 128 at 1 MB trained at 26.4k tokens/s,
2.0e11 FLOP/s, where the probe read 30k tokens/s, 1.06e11 (one 2-core Xeon with AMX). Without it
the compute budget was half the real one and tinyshakespeare's brain (3 x 128) ended a 5-minute
run no better with 25% more steps (2.153 bits/byte held out both ways), bound by its size; 3 x 160
reached 2.134 in less time (README). Measured on a CPU alone: CUDA and MPS, which train eager, take
it unmeasured (no GPU was at hand)."""
PROBE = dict(dim=128, n_layers=2, n_heads=4, max_seq_len=128, vocab_size=1024, batch_size=8)
"""The brain the speed probe trains for a few steps (its FLOPs per token are known below)."""


@dataclass(frozen=True)
class Recipe:
    """What a new baby is born with; written to config.json under "recipe" with its inputs."""

    vocab_size: int
    dim: int
    n_layers: int
    n_heads: int
    context: int
    """The training window (the brain's max_seq_len)."""
    dropout: float
    weight_decay: float
    lr: float
    bpe_dropout: float
    """Chance a training token is read as its merge's two pieces (school/unmerge.py)."""
    batch_size: int
    decay_steps: int
    warmup_steps: int
    eval_every: int
    library_bytes: int
    tokens_per_s: float
    """The probe's measured speed, the input the rest follows from."""

    def brain(self) -> dict[str, Any]:
        """The transformer config fields the recipe sets (vocab_size comes from the tokenizer)."""
        return dict(
            dim=self.dim,
            n_layers=self.n_layers,
            n_heads=self.n_heads,
            max_seq_len=self.context,
            dropout=self.dropout,
            attention_dropout=ATTENTION_DROPOUT,
        )

    def syllabus(self) -> dict[str, Any]:
        """The syllabus fields the recipe sets; the rest keep Syllabus's defaults."""
        return dict(
            batch_size=self.batch_size,
            lr=self.lr,
            min_lr=self.lr / 10,
            warmup_steps=self.warmup_steps,
            decay_steps=self.decay_steps,
            weight_decay=self.weight_decay,
            eval_every=self.eval_every,
            bpe_dropout=self.bpe_dropout,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def flops_per_token(dim: int, n_layers: int, vocab_size: int, context: int) -> float:
    """Training FLOPs per token: 6 per weight (forward and backward) plus attention's 12·L·T·d."""
    matrices = 12 * n_layers * dim * dim + vocab_size * dim
    return 6 * matrices + 12 * n_layers * context * dim


def max_vocab(dim: int, n_layers: int) -> int:
    """The largest vocabulary, in whole 64s, whose head (vocab x dim) is at most HEAD_SHARE of the
    body's matrices (12·L·d²); the epsilon keeps 0.7 x 5,760 at 4,032, not a float's 4,031.99."""
    return 64 * math.floor(HEAD_SHARE * 12 * n_layers * dim / 64 + 1e-9)


def _round_to(x: float, step: int) -> int:
    return max(step, step * round(x / step))


def _pow2_floor(x: float) -> int:
    return 1 << max(0, math.floor(math.log2(max(1.0, x))))


def choose(
    library_bytes: int,
    tokens_per_s: float,
    *,
    vocab_size: int | None = None,
    context: int | None = None,
    dropout: float | None = None,
    weight_decay: float | None = None,
    lr: float | None = None,
    bpe_dropout: float | None = None,
) -> Recipe:
    """The recipe for a library of `library_bytes` on a machine that trains the PROBE brain at
    `tokens_per_s`; a keyword given (not None) is the user's choice and wins."""
    if library_bytes <= 0 or not tokens_per_s > 0:
        raise ValueError("the recipe needs a library size and a speed above 0")
    size = math.log10(library_bytes / 1e5)  # 0 at 100 KB, 2 at 10 MB
    tokens = library_bytes / BYTES_PER_TOKEN
    p = PROBE
    flop_s = tokens_per_s * flops_per_token(p["dim"], p["n_layers"], p["vocab_size"], p["max_seq_len"])
    p_compute = math.sqrt(flop_s * TRAINING_SPEEDUP * RECIPE_SECONDS / 60)
    p_data = DATA_PARAMS_PER_TOKEN * tokens
    params = max(MIN_PARAMS, (p_data**-2 + p_compute**-2) ** -0.5)
    dim = max(64, _round_to((4 * params) ** (1 / 3), 32))
    n_layers = max(2, min(12, round(dim / 48)))
    n_heads = dim // 32  # heads of 32

    wanted = max(512, _round_to(4 * math.sqrt(library_bytes), 64))
    vocab = vocab_size or int(min(16384, max_vocab(dim, n_layers), wanted))
    if context is None:
        context = 64 if library_bytes < 50_000 else 128 if library_bytes < 500_000 else 256
    if dropout is None:
        dropout = round(min(0.25, max(0.05, 0.2 - 0.05 * size)), 3)
    if weight_decay is None:
        weight_decay = round(min(0.2, max(0.1, 0.15 - 0.025 * size)), 3)
    if bpe_dropout is None:
        bpe_dropout = BPE_DROPOUT
    if lr is None:
        lr = float(f"{min(3e-3, 2e-3 * math.sqrt(128 / dim)):.2g}")

    # a step of ~0.1 s of this brain's tokens, in whole windows, and no more than the library holds
    speed = flop_s / flops_per_token(dim, n_layers, vocab, context)
    batch_tokens = min(32768, _pow2_floor(max(2048, tokens)), max(2048, _pow2_floor(speed / 8)))
    batch_size = max(4, batch_tokens // context)
    steps = speed * RECIPE_SECONDS / (batch_size * context)
    decay_steps = int(max(1000, _round_to(steps, 100)))
    eval_every = int(min(1000, max(50, _round_to(steps / 20, 50))))
    return Recipe(
        vocab_size=vocab,
        dim=dim,
        n_layers=n_layers,
        n_heads=n_heads,
        context=context,
        dropout=dropout,
        weight_decay=weight_decay,
        lr=lr,
        bpe_dropout=bpe_dropout,
        batch_size=batch_size,
        decay_steps=decay_steps,
        warmup_steps=min(100, decay_steps // 20),
        eval_every=eval_every,
        library_bytes=int(library_bytes),
        tokens_per_s=float(tokens_per_s),
    )


SPEED_ENV = "BABYTERM_PROBE_SPEED"
"""Tokens/s to size a new baby by instead of measuring: two runs compared in a benchmark then get
the same brain (the probe's reading drifts ~10% with the machine's hour, enough to move the recipe
from 3 x 128 to 3 x 160 on the default library)."""


def pinned_speed() -> float | None:
    """The speed SPEED_ENV pins, or None where it is unset; ValueError for anything but tokens/s above 0."""
    value = os.environ.get(SPEED_ENV, "").strip()
    if not value:
        return None
    try:
        speed = float(value)
    except ValueError:
        speed = math.nan
    if not (speed > 0 and math.isfinite(speed)):
        raise ValueError(f"{SPEED_ENV} must be a speed in tokens/s above 0, not {value!r}")
    return speed


def measure_speed(device: Any, steps: int = 9) -> float:
    """Tokens/s of a training step of the PROBE brain on `device`: the median of `steps` steps
    after two warm-up ones, ~0.4 s on a 2-core CPU.

    The median, as a few steps of ~35 ms are at the mercy of whatever else the machine does: the
    mean of three read 17k and 21k tokens/s in two births and 29-33k in the next five, which sized
    a 190 KB library's brain 2 x 96 instead of 3 x 128."""
    if steps < 1:
        raise ValueError("the probe needs at least one timed step")
    import torch
    import torch.nn.functional as F

    from brain import build_brain, config_class

    p = PROBE
    cfg = config_class("transformer")(
        vocab_size=p["vocab_size"], dim=p["dim"], n_layers=p["n_layers"], n_heads=p["n_heads"],
        max_seq_len=p["max_seq_len"],
    )  # fmt: skip
    model = build_brain(cfg).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(p["vocab_size"], (p["batch_size"], p["max_seq_len"] + 1), generator=gen).to(device)
    kind = getattr(device, "type", str(device))
    sync = torch.cuda.synchronize if kind == "cuda" else torch.mps.synchronize if kind == "mps" else None
    rng = torch.get_rng_state()  # the probe must not change what the baby draws
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        logits, _ = model(x[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if sync is not None:  # a GPU's step has only been queued
            sync()
        if i >= 2:
            times.append(time.perf_counter() - t0)
    torch.set_rng_state(rng)
    median = sorted(times)[len(times) // 2]
    return p["batch_size"] * p["max_seq_len"] / max(median, 1e-9)
