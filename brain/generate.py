"""Token-by-token generation with a cache: sampling rules and what the brain thought of each token."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

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
    attention: Any = None
    """With insight: the transformer's (layers, heads, positions) weights of the step that chose
    this token, or the babyllm's windows, gates and emphasis."""


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


def _forward_last(
    model: Brain, context: list[int], bias: list[float], pixel: torch.Tensor | None, cache: Any, insight: bool
) -> tuple[torch.Tensor, Any]:
    """Run the context's new tokens (all of them when `cache` is fresh) and return the last logits."""
    device = model.device
    new = context[cache.pos :]
    key_bias = torch.tensor(bias, device=device) if any(bias) else None
    out = model.step(
        torch.tensor([new], device=device), cache, pixel, key_bias=key_bias, need_weights=insight
    )
    logits = out[0][0, -1]
    if not insight:
        return logits, None
    seen = out[2]
    if isinstance(seen, list):  # transformer: each layer's (1, nh, t, S) weights; keep the last row
        return logits, torch.stack([w[0, :, -1] for w in seen])  # (layers, heads, S)
    return logits, seen


@torch.no_grad()
def generate(
    model: Brain,
    prompt: Sequence[int],
    sampling: Sampling,
    pixel: torch.Tensor | None = None,
    stop: Callable[[list[int]], bool] | None = None,
    emphasis: Sequence[float] | None = None,
    insight: bool = False,
    use_cache: bool = True,
) -> Iterator[TokenChoice]:
    """Yield up to sampling.max_tokens tokens after `prompt`, one forward step each.

    Args:
        emphasis: a log-weight per prompt token (0 = none) that generation adds to the attention
            each position receives (babyllm: to its weight in the windows).
        insight: attach what the brain looked at to each token (`TokenChoice.attention`).
        use_cache: False recomputes the whole context for every token (the reference the cache
            is tested against).

    The cache makes a reply's cost linear in its length. When the window fills, the last half
    of the context is run again as a fresh prefill.
    """
    was_training = model.training
    model.eval()
    try:
        window = model.config.max_seq_len
        context = list(prompt)[-(window - 1) :] or [1]  # an empty prompt starts from <s>
        bias = [float(b) for b in (emphasis or [])][-len(context) :] if emphasis else []
        bias = [0.0] * (len(context) - len(bias)) + bias
        generator = torch.Generator().manual_seed(sampling.seed) if sampling.seed is not None else None
        cache = model.new_cache(1)
        logits, seen = _forward_last(model, context, bias, pixel, cache, insight)
        produced: list[int] = []
        for _ in range(sampling.max_tokens):
            token = choose(logits, sampling, context, generator)
            choice = describe(logits, token)
            yield replace(choice, attention=seen) if insight else choice
            produced.append(token)
            context.append(token)
            bias.append(0.0)
            if stop is not None and stop(produced):
                return
            if len(context) > window:
                context, bias = context[-(window // 2) :], bias[-(window // 2) :]
            if not use_cache or len(context) <= cache.pos:
                cache = model.new_cache(1)
            logits, seen = _forward_last(model, context, bias, pixel, cache, insight)
    finally:
        model.train(was_training)
