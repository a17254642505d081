"""Whether bf16 autocast trains faster than fp32 on this CPU: measured at the model's shapes, once."""

from __future__ import annotations

import functools
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

PROBE_ROUNDS = 5
BF16_MARGIN = 1.5
"""bf16 must make the step's matmuls at least this much faster: the rest of the step (norms, softmax,
the optimizer) gains nothing from it, and autocast pays a cast per weight per step."""


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: without them bf16 is emulated and many times slower than fp32."""
    # private torch helpers (present since 2.3); a torch without them is taken to have neither
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _time(fn: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


@functools.cache
def matmul_speedup(rows: int, dim: int, hidden: int, threads: int) -> float:
    """fp32 time / bf16-autocast time of the step's widest matmul, (rows, dim) x (dim, hidden).

    The two run interleaved, PROBE_ROUNDS times, so a busy neighbour slows both alike; the bf16
    side includes autocast's casts of the input and the weight. About 50 ms at the tiny preset;
    cached per shape and thread count for the life of the process.
    """
    x, w = torch.randn(rows, dim), torch.randn(hidden, dim)

    def fp32() -> object:
        return F.linear(x, w)

    def bf16() -> object:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return F.linear(x, w)

    repeats = max(1, int(2e8 // (2 * rows * dim * hidden)))  # ~5 ms of fp32 work per round
    fp32(), bf16()  # first calls pick and warm their kernels
    a, b = [], []
    for _ in range(PROBE_ROUNDS):
        a.append(_time(fp32, repeats))
        b.append(_time(bf16, repeats))
    return statistics.median(a) / max(1e-12, statistics.median(b))


def cpu_prefers_bf16(rows: int, dim: int, hidden: int) -> bool:
    """bf16 autocast where the CPU runs bf16 natively and it measured BF16_MARGIN faster here."""
    if not cpu_has_native_bf16():
        return False
    return matmul_speedup(rows, dim, hidden, torch.get_num_threads()) >= BF16_MARGIN
