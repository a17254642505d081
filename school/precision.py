"""Whether bf16 autocast trains faster than fp32 on this CPU: measured on the baby's own step, once."""

from __future__ import annotations

import functools
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

PROBE_ROUNDS = 3
BF16_MARGIN = 1.1
"""bf16 must make the whole training step (forward, loss, backward) at least this much faster:
a closer call is within the probe's noise, and fp32 is the more exact of the two."""

PROBE_ROWS = 1024
"""Tokens per probe step (whole windows, at least one): the step's mix of matmuls and element-wise
work per token is what decides, and a smaller batch keeps the probe under a second."""


def cpu_has_native_bf16() -> bool:
    """AVX-512 BF16 or AMX: without them bf16 is emulated and many times slower than fp32."""
    # ATen's kernels may be held below what the chip has (ATEN_CPU_CAPABILITY=avx2, as on an
    # AVX2-only CPU); its bf16 kernels are then AVX2 ones, whatever the chip's flags say
    if torch.backends.cpu.get_cpu_capability() != "AVX512":  # what AMX chips report too
        return False
    # private torch helpers (present since 2.3); a torch without them is taken to have neither
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def _time(fn: Callable[[], object], repeats: int) -> float:
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


@functools.cache
def step_speedup(brain_json: str, threads: int) -> float:
    """fp32 time / bf16-autocast time of the brain's own training step (forward, loss, backward).

    Not a lone matmul: at small widths the norms, rotations and casts around the matmuls decide
    (at nanoGPT's size the matmul alone ran 3.5x faster in bf16 and the step only 1.2x). A
    throwaway brain of the baby's config, random tokens, PROBE_ROWS per step; the two precisions
    run interleaved, PROBE_ROUNDS times, so a busy neighbour slows both alike. Cached per config
    and thread count for the life of the process; the global RNG is left as it was.
    """
    from brain import build_brain, config_from_dict  # the probe alone needs a brain

    with torch.random.fork_rng():
        model = build_brain(config_from_dict(json.loads(brain_json)))
        block = model.config.max_seq_len
        x, y = torch.randint(0, model.config.vocab_size, (2, max(1, PROBE_ROWS // block), block))

        def step() -> None:
            if model.scores_targets:
                loss = model(x, None, y)[0]
            else:
                loss = F.cross_entropy(model(x, None)[0].float().flatten(0, 1), y.flatten())
            loss.backward()

        def fp32() -> None:
            step()

        def bf16() -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                step()

        fp32(), bf16()  # first calls pick and warm their kernels
        a, b = [], []
        for _ in range(PROBE_ROUNDS):
            a.append(_time(fp32, 2))
            b.append(_time(bf16, 2))
    return statistics.median(a) / max(1e-12, statistics.median(b))


def cpu_prefers_bf16(brain: dict) -> bool:
    """bf16 autocast where the CPU runs bf16 natively and its step measured BF16_MARGIN faster."""
    if not cpu_has_native_bf16():
        return False
    return step_speedup(json.dumps(brain, sort_keys=True), torch.get_num_threads()) >= BF16_MARGIN
