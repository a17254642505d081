"""Token-by-token generation with a cache: sampling rules and what the brain thought of each token."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import torch

from brain.base import Brain


@dataclass
class Sampling:
    """How the next token is chosen. temperature 0 is greedy (the first maximum wins).

    The rules run in this order: repetition penalty, temperature, top-k, top-p, min-p. With a
    dynamic temperature (dynatemp_range > 0) the filters run on the untempered logits and the
    temperature, scaled by the candidates' entropy, comes last, as in llama.cpp.
    """

    temperature: float = 0.8
    top_k: int | None = 40
    top_p: float | None = None
    repetition_penalty: float = 1.0
    """> 1 discourages tokens already in the context (CTRL-style); never used in training."""
    max_tokens: int = 120
    seed: int | None = None
    min_p: float | None = None
    """Keep only tokens at least min_p times as likely as the most likely one."""
    dynatemp_range: float = 0.0
    """> 0: the temperature moves within temperature ± range with the candidates' entropy
    (llama.cpp's dynatemp_range): max(0, t - range) when one token is certain, t + range at uniform."""
    dynatemp_exponent: float = 1.0
    """The curve from entropy to temperature: normalised entropy ** exponent (llama.cpp's
    dynatemp_exponent)."""


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


def rng_kept(model: Brain) -> contextlib.AbstractContextManager[None]:
    """Random state put back on leaving, so that talking changes nothing training draws next: the
    CPU's, and a CUDA device's where the brain is on one (its sampling draws there); on MPS the
    CPU's alone (no Mac was at hand to check more)."""
    device = next(model.parameters()).device
    if device.type == "cuda":
        return torch.random.fork_rng(devices=[device.index or 0], device_type="cuda")
    return torch.random.fork_rng(devices=[], device_type="cpu")


def penalise(logits: torch.Tensor, s: Sampling, seen: torch.Tensor | None) -> torch.Tensor:
    """CTRL's repetition penalty on the tokens marked in `seen` (a (V,) bool mask), on device."""
    if s.repetition_penalty == 1.0 or seen is None:
        return logits
    r = s.repetition_penalty
    return torch.where(seen, torch.where(logits > 0, logits / r, logits * r), logits)


def candidates(logits: torch.Tensor, s: Sampling) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokens that may be drawn, most likely first: (shaped logits (k,), their ids (k,)).

    logits are already penalised; dropped candidates come back as -inf. Only top-k's (or, without
    top-k, the sorted vocabulary's) entries are touched: everything runs on device, no loops.
    """
    dynamic = s.dynatemp_range > 0
    if not dynamic:
        logits = logits / s.temperature
    if s.top_k is not None and 0 < s.top_k < logits.numel():
        values, ids = torch.topk(logits, s.top_k)
    else:
        values, ids = torch.sort(logits, descending=True)
    if (s.top_p is not None and 0 < s.top_p < 1) or s.min_p is not None:
        probs = values.softmax(-1)
        drop = torch.zeros_like(values, dtype=torch.bool)
        if s.top_p is not None and 0 < s.top_p < 1:
            drop |= probs.cumsum(-1) - probs >= s.top_p  # keep the smallest prefix reaching top_p
        if s.min_p is not None:
            drop |= probs < s.min_p * probs[0]
        values = values.masked_fill(drop, float("-inf"))
    if dynamic:
        values = values / dynamic_temperature(values, s)
    return values, ids


def dynamic_temperature(values: torch.Tensor, s: Sampling) -> torch.Tensor:
    """llama.cpp's entropy-scaled temperature over the finite candidates in `values`, as a 0-d tensor.

    t = lo + (hi - lo) (H / ln n) ** exponent, lo = max(0, temperature - range), hi = temperature
    + range, H the entropy of their softmax and n their number. One candidate keeps temperature 1
    (nothing to choose); a temperature of 0 is made tiny, which draws the maximum.
    """
    lo, hi = max(0.0, s.temperature - s.dynatemp_range), s.temperature + s.dynatemp_range
    n = torch.isfinite(values).sum()
    entropy = torch.special.entr(values.softmax(-1)).sum()
    normalised = entropy / n.clamp(min=2).log()
    t = lo + (hi - lo) * normalised.clamp(0, 1).pow(s.dynatemp_exponent)
    return torch.where(n > 1, t.clamp(min=1e-6), torch.ones_like(t))


def shape_logits(logits: torch.Tensor, s: Sampling, context: Sequence[int]) -> torch.Tensor:
    """Apply the sampling rules to one row of logits (V,): the distribution drawn from, as logits."""
    logits = logits.float()
    seen = None
    if s.repetition_penalty != 1.0 and context:
        seen = torch.zeros(logits.numel(), dtype=torch.bool, device=logits.device)
        seen[torch.tensor(sorted(set(context)), dtype=torch.long, device=logits.device)] = True
    logits = penalise(logits, s, seen)
    if s.temperature <= 0:
        return logits.clone()
    values, ids = candidates(logits, s)
    return torch.full_like(logits, float("-inf")).scatter(0, ids, values)


def choose(
    logits: torch.Tensor, s: Sampling, context: Sequence[int], generator: torch.Generator | None
) -> int:
    shaped = shape_logits(logits, s, context)
    if s.temperature <= 0:
        return int(torch.argmax(shaped))
    return int(sample(shaped.softmax(-1), generator))


def describe(logits: torch.Tensor, token: int) -> TokenChoice:
    probs = logits.float().softmax(-1)
    top = torch.topk(probs, min(5, probs.numel()))
    values, ids = top.values.tolist(), top.indices.tolist()
    margin = values[0] - values[1] if len(values) > 1 else values[0]
    return TokenChoice(token, float(probs[token]), margin, tuple(zip(ids, values, strict=True)))


def sample(probs: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Draw one index (1,) from probs (k,) by inverting their running sum: on device, no loops.

    A uniform draw is scaled to the sum, so rounding never reaches a zero-probability tail.
    """
    cum = probs.cumsum(-1)
    u = torch.rand(1, generator=generator, device=probs.device) * cum[-1]
    return torch.searchsorted(cum, u).clamp_(max=probs.numel() - 1)


PLAIN_MAX_K = 256
"""Up to this top-k, reading every candidate back (2k floats) is cheaper than indexing on device."""


def _draw(
    logits: torch.Tensor, s: Sampling, seen: torch.Tensor | None, generator: torch.Generator | None
) -> TokenChoice:
    """choose() and describe() of one row (V,) in a handful of device ops and one read-back."""
    logits = logits.float()
    plain_rules = s.top_p is None and s.min_p is None and not s.dynatemp_range
    few = s.top_k is not None and 5 <= s.top_k <= PLAIN_MAX_K and s.top_k < logits.numel()
    if s.temperature > 0 and seen is None and plain_rules and few:
        return _draw_plain(logits, s, generator)
    shaped = penalise(logits, s, seen)
    top_ids = None
    if s.temperature <= 0:
        token = torch.argmax(shaped).view(1)
    else:
        values, ids = candidates(shaped, s)
        token = ids[sample(values.softmax(-1), generator)]
        if seen is None and ids.numel() >= 5:  # unpenalised, so the candidates lead with the top 5
            top_ids = ids[:5]
    probs = logits.softmax(-1)
    if top_ids is None:
        top_ids = torch.topk(probs, min(5, probs.numel())).indices
    k = top_ids.numel()
    # one read-back for all of it: ids below 2**24 are exact in float32
    row = torch.cat((token.float(), probs[token], probs[top_ids], top_ids.float())).tolist()
    values, top_ids = row[2 : 2 + k], [int(i) for i in row[2 + k :]]
    margin = values[0] - values[1] if k > 1 else values[0]
    return TokenChoice(int(row[0]), row[1], margin, tuple(zip(top_ids, values, strict=True)))


def _draw_plain(logits: torch.Tensor, s: Sampling, generator: torch.Generator | None) -> TokenChoice:
    """_draw under temperature and top-k alone (the chat's default), in a dozen ops.

    The candidates are the raw logits' top k, so they are also the plain top five: the read-back
    carries the candidates' ids and plain probabilities, and Python picks the drawn one.
    """
    raw, ids = torch.topk(logits, s.top_k)
    j = sample((raw / s.temperature).softmax(-1), generator)  # same draw as candidates() gives
    row = torch.cat((j.float(), logits.softmax(-1).gather(0, ids), ids.float())).tolist()
    k = len(raw)
    j, prob_row, id_row = int(row[0]), row[1 : 1 + k], row[1 + k :]
    margin = prob_row[0] - prob_row[1] if k > 1 else prob_row[0]
    top = tuple(zip((int(i) for i in id_row[:5]), prob_row[:5], strict=True))
    return TokenChoice(int(id_row[j]), prob_row[j], margin, top)


def _forward_last(
    model: Brain,
    new: torch.Tensor,
    bias: list[float] | None,
    pixel: torch.Tensor | None,
    cache: Any,
    insight: bool,
) -> tuple[torch.Tensor, Any]:
    """Run the new tokens (1, t) after what `cache` holds and return the last position's logits."""
    key_bias = torch.tensor(bias, device=new.device) if bias is not None else None
    out = model.step(new, cache, pixel, key_bias=key_bias, need_weights=insight, last_only=True)
    logits = out[0][0, -1]
    if not insight:
        return logits, None
    seen = out[2]
    if isinstance(seen, list):  # transformer: each layer's (1, nh, t, S) weights; keep the last row
        return logits, torch.stack([w[0, :, -1] for w in seen])  # (layers, heads, S)
    return logits, seen


@torch.inference_mode()
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
        device, window = model.device, model.config.max_seq_len
        # the prompt's last window - 1 tokens leave room for the first reply token (`[-0:]` would keep all)
        ids = list(prompt)
        context = ids[max(0, len(ids) - (window - 1)) :] if window > 1 else []
        context = context or [1]  # an empty prompt starts from <s>
        bias = [float(b) for b in (emphasis or [])][-len(context) :] if emphasis else []
        bias = [0.0] * (len(context) - len(bias)) + bias
        emphasised = any(bias)
        # unseeded replies draw from fresh entropy: from the global state, which rng_kept puts back
        # after every reply, each would start from the same place and say the same thing
        seed = sampling.seed if sampling.seed is not None else secrets.randbits(63)
        generator = torch.Generator(device=device).manual_seed(seed)
        seen = None
        if sampling.repetition_penalty != 1.0:
            seen = torch.zeros(model.config.vocab_size, dtype=torch.bool, device=device)
            seen[torch.tensor(context, device=device)] = True
        cache = model.new_cache(1)
        new = torch.tensor([context], device=device)
        logits, looked = _forward_last(model, new, bias if emphasised else None, pixel, cache, insight)
        produced: list[int] = []
        for _ in range(sampling.max_tokens):
            choice = _draw(logits, sampling, seen, generator)
            yield replace(choice, attention=looked) if insight else choice
            token = choice.id
            produced.append(token)
            context.append(token)
            bias.append(0.0)
            if seen is not None:
                seen[token] = True
            if stop is not None and stop(produced):
                return
            if len(context) > window:
                keep = max(1, window // 2)
                context, bias = context[-keep:], bias[-keep:]
                emphasised = any(bias)
                if seen is not None:  # the penalty looks at the context the brain still sees
                    seen.zero_()[torch.tensor(context, device=device)] = True
            if not use_cache or len(context) <= cache.pos:
                cache = model.new_cache(1)
            new = torch.tensor([context[cache.pos :]], device=device)
            logits, looked = _forward_last(model, new, bias if emphasised else None, pixel, cache, insight)
    finally:
        model.train(was_training)
