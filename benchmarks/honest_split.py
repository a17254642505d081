"""babyterm against nanoGPT on nanoGPT's own split: learn the first 90%, score the last 10%.

One run, one machine, from a cold start:

1. The text is cut as nanoGPT's ``prepare.py`` cuts it: the first 90% of its characters to learn
   from, the contiguous last 10% held out.
2. ``babyterm train --minutes M --library first90 --val-text last10`` runs in a fresh home, in its
   own process, exactly as a user would run it (tokenizer training and corpus encoding included,
   reported separately: ``--minutes`` is the training run itself).
3. The baby is exported to Hugging Face's format and scored by ``transformers`` — not by our code — on
   the held-out text and on a same-sized slice of its own training text: the sum of next-token
   losses over non-overlapping windows of the model's context, in bits, divided by the UTF-8 bytes of
   the text scored.
4. nanoGPT's CPU recipe (benchmarks/nanogpt_baseline.py: 4x128, block 64, batch 12, chars) trains on
   the same 90% for the same training seconds, its cosine schedule stretched over that time, and is
   scored the same way on the same held-out text (one char is one byte: tinyshakespeare is ASCII).

Usage: ``python benchmarks/honest_split.py [--minutes 5] [--text PATH] [--preset tiny] [--skip-nanogpt]
[--train-args '--dropout 0.2'] [--probe-speed 30000]``.
Run it alone: a second busy process on 2 cores slows torch several times.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
import probe_pin  # noqa: E402

DEFAULT_TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"


def cpu_line() -> str:
    """The CPU's model name and the flags that decide matmul speed."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "cpu: unknown"
    lines = info.splitlines()
    model = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), "?")
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith("flags")), [])
    wanted = " ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if f in flags)
    return f"cpu: {model}; {torch.get_num_threads()} threads; flags: {wanted}"


def split_text(text: str) -> tuple[str, str]:
    n = int(0.9 * len(text))  # nanoGPT's data/shakespeare_char/prepare.py
    return text[:n], text[n:]


@torch.no_grad()
def bits_per_byte(logits_of, ids: list[int], window: int, n_bytes: int) -> float:
    """Sum of next-token losses over non-overlapping windows (every token after the first is a
    target once), in bits, per UTF-8 byte of the text."""
    data = torch.tensor(ids)
    nats = 0.0
    for i in range(0, len(data) - 1, window):
        x = data[i : i + window]
        y = data[i + 1 : i + window + 1]
        x = x[: len(y)]
        logits = logits_of(x[None])[0]
        nats += F.cross_entropy(logits.float(), y, reduction="sum").item()
    return nats / math.log(2) / n_bytes


def run_babyterm(
    train: Path, val: Path, home: Path, minutes: float, preset: str | None, extra: list[str]
) -> dict:
    cmd = [sys.executable, "-m", "babyterm", "train", "--home", str(home), "--baby", "split",
           "--library", str(train), "--val-text", str(val), "--minutes", str(minutes)]  # fmt: skip
    if preset is not None:
        cmd += ["--preset", preset]
    cmd += extra
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode != 0:
        sys.exit(f"babyterm train failed ({done.returncode}):\n{done.stderr[-2000:]}")
    records = []
    for log in sorted((home / "babies" / "split" / "logs").glob("*.jsonl")):
        records += [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    elapsed = {r["step"]: r["elapsed_s"] for r in records if r.get("kind") == "step"}
    evals = [
        (elapsed.get(r["step"], 0.0), r["step"], r["val_bpb"]) for r in records if r.get("kind") == "eval"
    ]
    steps = [r for r in records if r.get("kind") == "step"]
    speeds = sorted(r["tokens_per_s"] for r in steps[5:])  # the first steps may compile
    brain = json.loads((home / "babies" / "split" / "config.json").read_text()).get("brain", {})
    return {
        "wall_s": wall,
        "evals": evals,
        "tokens_per_s": speeds[len(speeds) // 2] if speeds else 0.0,
        "train_s": steps[-1]["elapsed_s"] if steps else 0.0,
        "steps": steps[-1]["step"] if steps else 0,
        "brain": f"{brain.get('n_layers')} x {brain.get('dim')}, context {brain.get('max_seq_len')}",
    }


def score_hf(home: Path, texts: dict[str, str]) -> dict[str, float]:
    """Export the baby to hf and let transformers score each text."""
    out = home / "hf"
    cmd = [sys.executable, "-m", "babyterm", "export", "--home", str(home), "--baby", "split",
           "--format", "hf", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    from transformers import LlamaForCausalLM, PreTrainedTokenizerFast

    model = LlamaForCausalLM.from_pretrained(out).eval()
    tok = PreTrainedTokenizerFast.from_pretrained(out)
    window = model.config.max_position_embeddings
    return {
        name: bits_per_byte(lambda x: model(x).logits, tok(text)["input_ids"], window, len(text.encode()))
        for name, text in texts.items()
    }


def run_nanogpt(train_text: str, val_text: str, seconds: float, threads: int) -> dict:
    """nanoGPT's recipe for `seconds` of training, its cosine decay spread over that time."""
    import nanogpt_baseline as ng

    torch.manual_seed(1337)
    chars = sorted(set(train_text + val_text))
    stoi = {c: i for i, c in enumerate(chars)}
    train = torch.tensor([stoi[c] for c in train_text])
    tc = ng.TrainConfig()
    model = ng.GPT(ng.GPTConfig(vocab_size=len(chars)))
    optimizer = model.configure_optimizers(tc)
    spent, it, marks = 0.0, 0, {}
    while spent < seconds:
        t0 = time.perf_counter()
        frac = min(1.0, spent / seconds)
        warm = tc.learning_rate * (it + 1) / (tc.warmup_iters + 1)
        decayed = tc.min_lr + 0.5 * (1 + math.cos(math.pi * frac)) * (tc.learning_rate - tc.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = warm if it < tc.warmup_iters else decayed
        x, y = ng.get_batch(train, model.config.block_size, tc.batch_size)
        model(x, y).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        it += 1
        spent += time.perf_counter() - t0
        if spent >= 80 and 80 not in marks:
            marks[80] = score_nanogpt(model, stoi, val_text)
    tokens_per_s = it * tc.batch_size * model.config.block_size / spent
    return {"at80": marks.get(80), "final": score_nanogpt(model, stoi, val_text),
            "own": score_nanogpt(model, stoi, train_text[: len(val_text)]), "tokens_per_s": tokens_per_s,
            "iters": it}  # fmt: skip


def score_nanogpt(model, stoi: dict[str, int], text: str) -> float:
    model.eval()

    def logits_of(x: torch.Tensor) -> torch.Tensor:  # GPT.forward returns the loss; rebuild the logits
        tok = model.wte(x) + model.wpe(torch.arange(x.shape[1]))
        for block in model.h:
            tok = block(tok)
        return model.lm_head(model.ln_f(tok))

    bpb = bits_per_byte(logits_of, [stoi[c] for c in text], model.config.block_size, len(text.encode()))
    model.train()
    return bpb


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT)
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--preset", default=None, help="a named preset instead of the recipe (e.g. tiny)")
    p.add_argument("--skip-nanogpt", action="store_true")
    probe_pin.add_option(p)
    p.add_argument("--train-args", default="", help="more `babyterm train` options, e.g. '--dropout 0.2'")
    args = p.parse_args(argv)
    probe_pin.apply(args)
    torch.set_num_threads(args.threads)
    print(cpu_line(), flush=True)
    learn, held = split_text(args.text.read_text(encoding="utf-8"))
    print(f"text: {args.text.name}, {len(learn):,} chars to learn, {len(held):,} held out (the last 10%)")
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        (home / "first90.txt").write_text(learn, encoding="utf-8")
        (home / "last10.txt").write_text(held, encoding="utf-8")
        b = run_babyterm(
            home / "first90.txt",
            home / "last10.txt",
            home,
            args.minutes,
            args.preset,
            args.train_args.split(),
        )
        setup = b["wall_s"] - b["train_s"]
        at80 = [bpb for t, _, bpb in b["evals"] if t <= 80]
        print(f"babyterm: {b['brain']}; {b['tokens_per_s']:,.0f} tokens/s (median step), "
              f"{b['steps']:,} steps; "
              f"{b['train_s']:.0f} s training, "
              f"{setup:.0f} s else (tokenizer, encoding, evals, start); own evals: "
              + ", ".join(f"{t:.0f}s {bpb:.3f}" for t, _, bpb in b["evals"]), flush=True)  # fmt: skip
        scores = score_hf(home, {"held-out": held, "own training text": learn[: len(held)]})
        print(f"babyterm (scored by transformers): held-out {scores['held-out']:.3f} bits/byte, "
              f"own training text {scores['own training text']:.3f}; its own eval at 80 s: "
              f"{at80[-1] if at80 else float('nan'):.3f}", flush=True)  # fmt: skip
    if not args.skip_nanogpt:
        n = run_nanogpt(learn, held, b["train_s"], args.threads)
        print(f"nanoGPT recipe, {b['train_s']:.0f} s: {n['tokens_per_s']:,.0f} tokens/s, {n['iters']} iters; "
              f"held-out {n['final']:.3f} bits/byte (at 80 s {n['at80'] or float('nan'):.3f}), "
              f"own training text {n['own']:.3f}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
