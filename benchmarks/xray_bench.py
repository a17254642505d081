"""Time the x-ray of a 128-token text, in-process with the weights loaded, for each brain's tiny preset.

    python benchmarks/xray_bench.py [--repeats 5] [--threads 2]

Also prints what the update-size recorder costs training: one weight copy and one measurement per
logged step (every `log_every` = 10 steps by default), as a share of ten training steps' time.
Targets (issue 13): x-ray under 300 ms on a 2-core CPU; training slowed by at most 5%.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from brain import BRAIN_NAMES, build_brain, preset_config  # noqa: E402
from school.tokenizer import train_tokenizer  # noqa: E402
from school.update_sizes import measure, snapshot  # noqa: E402
from school.xray import encode_for_xray, xray  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--vocab", type=int, default=4200)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    text = (ROOT / "tests" / "data" / "tinyshakespeare-start.txt").read_text(encoding="utf-8")
    tok = train_tokenizer([text], vocab_size=args.vocab)
    V = tok.get_vocab_size()
    sample = text[5000:9000]
    for brain in BRAIN_NAMES:
        model = build_brain(preset_config(brain, "tiny", V)).eval()
        ids = encode_for_xray(tok, sample, model.config.max_seq_len)[:128]
        xray(model, tok, "", ids=ids)  # warm up
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            xray(model, tok, "", ids=ids).to_dict()
            times.append(time.perf_counter() - t0)
        # the recorder's cost against training steps at batch 16 x 128 tokens
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        x = torch.randint(0, V, (16, model.config.max_seq_len))

        def train_step(model=model, x=x, opt=opt) -> None:
            logits, _ = model(x)
            loss = F.cross_entropy(logits.flatten(0, 1), x.flatten())
            opt.zero_grad()
            loss.backward()
            opt.step()

        train_step()
        t0 = time.perf_counter()
        for _ in range(10):
            train_step()
        ten_steps = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(args.repeats):  # the copy and the measurement, around no step at all
            measure(model, snapshot(model))
        recorded = (time.perf_counter() - t0) / args.repeats
        print(
            f"{brain:<12} x-ray of {len(ids)} tokens: median {1000 * statistics.median(times):6.1f} ms "
            f"(best {1000 * min(times):.1f})   recorder: +{100 * recorded / ten_steps:.2f}% of 10 steps"
        )


if __name__ == "__main__":
    main()
