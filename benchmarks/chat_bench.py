"""Chat speed in-process: tokens/s of brain.generate for a loaded model, warm-up excluded.

    python benchmarks/chat_bench.py [--rounds 5] [--reply 256] [--prompt 16] [--threads 1]

Default model: today's default baby (transformer 4x128, vocabulary 4200, window 128), with bold
random weights loaded (speed does not depend on what they say). A 16-token prompt, a 256-token
reply at the chat's default sampling (temperature 0.8, top-k 40), no stop rule so every reply is
full length. Each round times one reply without insight and one with (attention and top
alternatives, as the app's chat asks); the first-token time is prompt to first yielded token.
The window is 128 tokens, so a 256-token reply crosses re-prefills, as a long chat does.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brain import build_brain, preset_config  # noqa: E402
from brain.generate import Sampling, generate  # noqa: E402


def one_reply(model, prompt: list[int], n: int, insight: bool, seed: int) -> tuple[float, float]:
    """(tokens/s after the first token, first-token ms) of one reply of n tokens."""
    start = time.perf_counter()
    first = None
    count = 0
    for _ in generate(model, prompt, Sampling(max_tokens=n, seed=seed), insight=insight):
        count += 1
        if first is None:
            first = time.perf_counter()
    end = time.perf_counter()
    assert count == n and first is not None
    return (n - 1) / max(1e-9, end - first), (first - start) * 1000


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--reply", type=int, default=256)
    p.add_argument("--prompt", type=int, default=16)
    p.add_argument("--vocab", type=int, default=4200)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the app's trainer owns the rest)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build_brain(preset_config("transformer", "tiny", args.vocab))
    with torch.no_grad():
        for q in model.parameters():
            q.add_(0.3 * torch.randn_like(q))
    model.eval()
    prompt = torch.randint(3, args.vocab, (args.prompt,)).tolist()
    print(
        f"chat: transformer tiny ({model.num_params() / 1e6:.2f}M params, vocab {args.vocab}), "
        f"{args.prompt}-token prompt, {args.reply}-token reply, CPU "
        f"{torch.backends.cpu.get_cpu_capability()}, {args.threads} thread(s)",
        flush=True,
    )
    one_reply(model, prompt, 32, False, 0)  # warm-up: allocator, kernels, first-call paths
    one_reply(model, prompt, 32, True, 0)
    plain, seeing, firsts = [], [], []
    for r in range(args.rounds):
        a, first_ms = one_reply(model, prompt, args.reply, False, r)
        b, _ = one_reply(model, prompt, args.reply, True, r)
        plain.append(a)
        seeing.append(b)
        firsts.append(first_ms)
        print(f"round {r + 1}: {a:,.0f} tok/s, insight {b:,.0f} tok/s, first token {first_ms:.1f} ms")
    print(
        f"chat: insight on {statistics.median(seeing):,.0f} tok/s "
        f"(range {min(seeing):,.0f}-{max(seeing):,.0f}); first token {statistics.median(firsts):.1f} ms"
    )
    print(
        f"chat: median of {args.rounds} rounds {statistics.median(plain):,.0f} tok/s "
        f"(range {min(plain):,.0f}-{max(plain):,.0f}), insight off"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
