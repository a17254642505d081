"""nanoGPT's CPU Shakespeare-char recipe, reimplemented in one file, as babyterm's performance bar.

Mirrors karpathy/nanoGPT's ``model.py`` GPT and ``train.py`` loop as run by the README's CPU recipe::

    python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
        --log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
        --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0

(config: lr 1e-3 -> 1e-4 cosine, 100 warmup iters, beta2 0.99; train.py defaults: no biases, weight
decay 0.1, grad clip 1.0). Unlike the recipe, the run also stops after ``--seconds`` of training time
(eval excluded) and evaluates (20 train + 20 val batches) every ``--eval-every-seconds``, not 250 iters.

Bits per byte: val_bpb = val_loss / ln 2. The loss is nats per character and tinyshakespeare is
ASCII, so one character is one byte.

Usage: ``python benchmarks/nanogpt_baseline.py [--seconds 300] [--threads 2] [--text PATH]``
"""

import argparse
import math
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
from torch.nn import functional as F

DEFAULT_TEXT = Path(__file__).resolve().parents[1].parent / "shared/data/tinyshakespeare.txt"
BPB_THRESHOLDS = (2.72, 2.28, 2.0)


@dataclass
class GPTConfig:
    """The recipe's model, as nanoGPT's GPTConfig with the command-line overrides applied."""

    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False  # nanoGPT train.py's default; the char config leaves it


@dataclass
class TrainConfig:
    """The recipe's optimisation settings (train.py defaults + train_shakespeare_char.py + CLI)."""

    batch_size: int = 12
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.99)
    grad_clip: float = 1.0
    eval_iters: int = 20


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention through scaled_dot_product_attention."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)
        self.n_head = config.n_head
        self.dropout = config.dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        nh = self.n_head
        q, k, v = (t.view(B, T, nh, C // nh).transpose(1, 2) for t in self.c_attn(x).split(C, dim=2))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    """Position-wise feed-forward: 4x expansion with GELU."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """nanoGPT's GPT: token + learned position embeddings, blocks, final LayerNorm, tied head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = nn.Dropout(config.dropout)
        self.h = nn.ModuleList([Block(config) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # weight tying
        for m in self.modules():  # nanoGPT's _init_weights (LayerNorms keep ones/zeros)
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        # GPT-2's scaled init: each residual projection adds to the stream, so shrink by depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per token) of predicting ``targets`` from ``idx``, both (B, T)."""
        x = self.drop(self.wte(idx) + self.wpe(torch.arange(idx.size(1))))  # (B, T, C)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, vocab)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)

    def configure_optimizers(self, tc: TrainConfig) -> torch.optim.AdamW:
        """AdamW with weight decay on matrices (>= 2-D) only, never on gains or biases."""
        params = [p for p in self.parameters() if p.requires_grad]
        groups = [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": tc.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ]
        # nanoGPT only fuses on CUDA.
        return torch.optim.AdamW(groups, lr=tc.learning_rate, betas=tc.betas, fused=False)


def get_lr(it: int, tc: TrainConfig) -> float:
    """Linear warmup, then cosine decay to min_lr at lr_decay_iters, then min_lr."""
    if it < tc.warmup_iters:
        return tc.learning_rate * (it + 1) / (tc.warmup_iters + 1)
    if it > tc.lr_decay_iters:
        return tc.min_lr
    ratio = (it - tc.warmup_iters) / (tc.lr_decay_iters - tc.warmup_iters)
    return tc.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (tc.learning_rate - tc.min_lr)


def get_batch(data: torch.Tensor, block_size: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of the split: inputs and the same windows shifted by one."""
    ix = torch.randint(len(data) - block_size, (batch_size,))
    x = torch.stack([data[i : i + block_size] for i in ix])
    y = torch.stack([data[i + 1 : i + 1 + block_size] for i in ix])
    return x, y


@torch.no_grad()
def estimate_loss(model: GPT, splits: dict[str, torch.Tensor], tc: TrainConfig) -> dict[str, float]:
    """Mean loss over eval_iters random batches of each split."""
    model.eval()
    out = {}
    for name, data in splits.items():
        batches = (get_batch(data, model.config.block_size, tc.batch_size) for _ in range(tc.eval_iters))
        out[name] = sum(model(x, y).item() for x, y in batches) / tc.eval_iters
    model.train()
    return out


def peak_rss_mb() -> float:
    """Peak resident set size of this process (ru_maxrss is KiB on Linux, bytes on macOS)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 2**10


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="text file to learn, char-level")
    ap.add_argument("--seconds", type=float, default=300.0, help="training-time budget (eval excluded)")
    ap.add_argument("--max-iters", type=int, default=2000, help="stop after this many iterations")
    ap.add_argument("--eval-every-seconds", type=float, default=20.0, help="eval interval, training time")
    ap.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    ap.add_argument("--seed", type=int, default=1337)
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    text = args.text.read_text(encoding="utf-8")
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n = int(0.9 * len(data))
    splits = {"train": data[:n], "val": data[n:]}

    tc = TrainConfig(lr_decay_iters=args.max_iters)
    model = GPT(GPTConfig(vocab_size=len(chars)))
    optimizer = model.configure_optimizers(tc)
    n_params = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()  # as nanoGPT counts
    tokens_per_iter = tc.batch_size * model.config.block_size
    print(
        f"nanogpt-baseline: {n_params / 1e6:.2f}M params, vocab {len(chars)}, "
        f"{len(data):,} chars, {args.threads} threads, {tokens_per_iter} tokens/iter",
        flush=True,
    )

    history: list[tuple[float, float, float]] = []  # (eval mark in s, training time in s, val_bpb)
    train_time, it, next_mark = 0.0, 0, 0.0

    def evaluate(mark: float) -> None:
        losses = estimate_loss(model, splits, tc)
        bpb = losses["val"] / math.log(2)
        history.append((mark, train_time, bpb))
        tps = it * tokens_per_iter / train_time if train_time > 0 else 0.0
        print(
            f"t={train_time:6.1f}s iter {it:5d}  train_loss {losses['train']:.2f}  "
            f"val_loss {losses['val']:.2f}  val_bpb {bpb:.2f}  tok/s {tps:.0f}",
            flush=True,
        )

    x, y = get_batch(splits["train"], model.config.block_size, tc.batch_size)
    while True:
        if train_time >= next_mark:
            evaluate(next_mark)
            next_mark += args.eval_every_seconds
        if train_time >= args.seconds or it >= args.max_iters:
            break
        t0 = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = get_lr(it, tc)
        loss = model(x, y)
        # Fetch the next batch before backward, as nanoGPT does (it overlaps on GPU; here it is just order).
        x, y = get_batch(splits["train"], model.config.block_size, tc.batch_size)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tc.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        it += 1
        train_time += time.perf_counter() - t0
    if history[-1][1] != train_time:
        evaluate(train_time)

    def bpb_at(seconds: float) -> str:
        if seconds > args.seconds:
            return "n/a"
        return f"{[bpb for mark, _, bpb in history if mark <= seconds][-1]:.3f}"

    def reached(threshold: float) -> str:
        times = [t for _, t, bpb in history if bpb <= threshold]
        return f"{times[0]:.0f}s" if times else "never"

    tps = it * tokens_per_iter / train_time if train_time > 0 else 0.0
    thresholds = ", ".join(f"<= {th}: {reached(th)}" for th in BPB_THRESHOLDS)
    print(
        f"nanogpt-baseline: tokens/s {tps:.0f}, val_bpb at 80s {bpb_at(80)}, at 300s {bpb_at(300)}, "
        f"best {min(bpb for _, _, bpb in history):.3f}, peak RSS {peak_rss_mb():.0f} MB "
        f"(stopped at iter {it}, t={train_time:.1f}s; first val_bpb {thresholds})",
        flush=True,
    )


if __name__ == "__main__":
    main()
