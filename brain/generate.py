"""Token-by-token generation with a cache: sampling rules and what the brain thought of each token."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch

from brain.base import Brain


@dataclass
class Sampling:
    """How the next token is chosen. temperature 0 is greedy (the first maximum wins)."""

    temperature: float = 0.8
    top_k: int | None = 40
    top_p: float | None = None
    repetition_penalty: float = 1.0
    """> 1 discourages tokens already in the context (CTRL-style); never used in training."""
    max_tokens: int = 120
    seed: int | None = None


@dataclass(frozen=True)
class TokenChoice:
    """A generated token and the brain's confidence in it (plain softmax of its logits)."""

    id: int
    prob: float
    margin: float
    """Probability of the top choice minus that of the second."""
    top: tuple[tuple[int, float], ...]
    """The five most likely tokens with their probabilities."""


def shape_logits(logits: torch.Tensor, s: Sampling, context: Sequence[int]) -> torch.Tensor:
    """Apply repetition penalty, temperature, top-k and top-p to one row of logits (V,)."""
    logits = logits.float().clone()
    if s.repetition_penalty != 1.0 and context:
        seen = torch.tensor(sorted(set(context)), dtype=torch.long, device=logits.device)
        picked = logits[seen]
        logits[seen] = torch.where(picked > 0, picked / s.repetition_penalty, picked * s.repetition_penalty)
    if s.temperature <= 0:
        return logits
    logits = logits / s.temperature
    if s.top_k is not None and 0 < s.top_k < logits.numel():
        kth = torch.topk(logits, s.top_k).values[-1]
        logits[logits < kth] = float("-inf")
    if s.top_p is not None and 0 < s.top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) >= s.top_p  # keep the smallest prefix reaching top_p
        logits[order[drop]] = float("-inf")
    return logits


def choose(
    logits: torch.Tensor, s: Sampling, context: Sequence[int], generator: torch.Generator | None
) -> int:
    shaped = shape_logits(logits, s, context)
    if s.temperature <= 0:
        return int(torch.argmax(shaped))
    probs = shaped.softmax(-1).cpu()
    return int(torch.multinomial(probs, 1, generator=generator))


def describe(logits: torch.Tensor, token: int) -> TokenChoice:
    probs = logits.float().softmax(-1)
    top = torch.topk(probs, min(5, probs.numel()))
    values, ids = top.values.tolist(), top.indices.tolist()
    margin = values[0] - values[1] if len(values) > 1 else values[0]
    return TokenChoice(token, float(probs[token]), margin, tuple(zip(ids, values, strict=True)))


@torch.no_grad()
def generate(
    model: Brain,
    prompt: Sequence[int],
    sampling: Sampling,
    pixel: torch.Tensor | None = None,
    stop: Callable[[list[int]], bool] | None = None,
) -> Iterator[TokenChoice]:
    """Yield up to sampling.max_tokens tokens after `prompt`, one forward step each.

    The cache makes a reply's cost linear in its length. When the window fills, the last half
    of the context is run again as a fresh prefill.
    """
    was_training = model.training
    model.eval()
    try:
        window = model.config.max_seq_len
        context = list(prompt)[-(window - 1) :] or [1]  # an empty prompt starts from <s>
        generator = torch.Generator().manual_seed(sampling.seed) if sampling.seed is not None else None
        device = model.device
        cache = model.new_cache(1)
        logits = model.step(torch.tensor([context], device=device), cache, pixel)[0][0, -1]
        produced: list[int] = []
        for _ in range(sampling.max_tokens):
            token = choose(logits, sampling, context, generator)
            yield describe(logits, token)
            produced.append(token)
            context.append(token)
            if stop is not None and stop(produced):
                return
            if cache.pos >= window:
                context = context[-(window // 2) :]
                cache = model.new_cache(1)
                logits = model.step(torch.tensor([context], device=device), cache, pixel)[0][0, -1]
            else:
                logits = model.step(torch.tensor([[token]], device=device), cache, pixel)[0][0, -1]
    finally:
        model.train(was_training)
