"""A llama-style decoder, with the exact conventions llama2.c and Hugging Face Llama share.

For a window of tokens t_0..t_{T-1}:

    x_0   = E[t] + P (pixel - 0.5)                         token embedding (not scaled) + pixel input
    x'    = x + Wo · attn(rope(Wq n(x)), rope(Wk n(x)), Wv n(x))     n = RMSNorm, causal
    x''   = x' + W2 (silu(W1 n(x')) * W3 n(x'))                       SwiGLU feed-forward
    logits = Wcls n(x_L)                                   Wcls = E when tied

RMSNorm(x) = w * x / sqrt(mean(x²) + 1e-5). Rotary embedding rotates adjacent pairs (2j, 2j+1) of
each head by pos * 10000^(-2j/head_size). Attention scores are q·k/sqrt(head_size); grouped KV
heads serve query head h from kv head h // (n_heads / n_kv_heads). No biases anywhere.

The pixel input is centred on grey, so with pixel=None (or grey) this is exactly a plain Llama:
exports are the baby at grey.

For speed on small CPUs, Wq/Wk/Wv are stored as one matrix `wqkv` (rows: q heads, k heads, v
heads) and W1/W3 as one `w13` (rows: W1, then W3): one matmul each instead of three and two.
Exports split them back into Llama's separate matrices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from brain.base import Brain, BrainConfig, PixelHead, pause_point, pixel_input
from brain.head_loss import linear_cross_entropy
from brain.native import NativeDecoder, library


@dataclass
class TransformerConfig(BrainConfig):
    brain: ClassVar[str] = "transformer"
    dim: int = 128
    """Width of the residual stream."""
    n_layers: int = 4
    n_heads: int = 4
    n_kv_heads: int | None = None
    """Key/value heads; fewer than n_heads is grouped-query attention. None means n_heads."""
    hidden_dim: int | None = None
    """Feed-forward width; None means 4*dim*2/3 rounded up to a multiple of 32."""
    tie_embeddings: bool = True
    dropout: float = 0.0
    """On the residual stream's two branches, while training."""
    attention_dropout: float | None = None
    """On the attention weights; None means `dropout` (as babies born before the recipe set it)."""
    norm_eps: float = 1e-5
    rope_base: float = 10000.0

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            self.n_kv_heads = self.n_heads
        if self.hidden_dim is None:
            self.hidden_dim = 32 * math.ceil(4 * self.dim * 2 / 3 / 32)
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads or (self.dim // self.n_heads) % 2:
            raise ValueError("need dim % n_heads == 0, n_heads % n_kv_heads == 0 and an even head size")

    @property
    def head_size(self) -> int:
        return self.dim // self.n_heads


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # w * x / sqrt(mean(x²) + eps), in one kernel
        return F.rms_norm(x, (x.size(-1),), self.weight, self.eps)


def rope_tables(head_size: int, max_len: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin, each (max_len, head_size/2): angle pos * base^(-2j/head_size)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, head_size, 2, dtype=torch.float64) / head_size))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float64), inv_freq)
    return angles.cos().float(), angles.sin().float()


def apply_rope(x: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """Rotate adjacent pairs (2j, 2j+1). x: (B, T, h, hs); rot: (T, 1, hs/2) complex, or its
    (T, 1, hs/2, 2) real view (cos, sin), which torch.compile gets: inductor has no complex kernels.

    Eager, one complex product forward and one backward: on CPU this measured ~5% faster per
    training step than the same rotation in reals (which needs a pair swap); compiled, the reals
    fuse into the kernels around them. There the rotation is x·(c0 c0 c1 c1 ..) + swap(x)·(-s0 s0
    -s1 s1 ..), the pair swap a flip of each pair: the same products and sums as picking x0 and x1
    apart and stacking them back, but inductor's kernels for it, the backward's above all, ran in
    ~75% of the time (a 5-7% faster step at nanoGPT's size on a 2-core Xeon).
    """
    pairs = x.float().unflatten(-1, (-1, 2))  # (B, T, h, hs/2, 2)
    if rot.is_complex() and x.device.type != "mps":  # complex kernels are patchy on mps
        return torch.view_as_real(torch.view_as_complex(pairs) * rot).flatten(-2).type_as(x)
    c, s = (rot.real, rot.imag) if rot.is_complex() else (rot[..., 0], rot[..., 1])
    cos = torch.stack((c, c), dim=-1).flatten(-2)  # (T, 1, hs)
    sin = torch.stack((-s, s), dim=-1).flatten(-2)
    return (pairs.flatten(-2) * cos + pairs.flip(-1).flatten(-2) * sin).type_as(x)


class KVCache:
    """Keys and values of every position generated so far, per layer."""

    def __init__(
        self, cfg: TransformerConfig, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        nkv, shape = cfg.n_kv_heads, (batch_size, 2 * cfg.n_kv_heads, cfg.max_seq_len, cfg.head_size)
        self.kv = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(cfg.n_layers)]
        """Per layer, keys (heads :nkv) and values (nkv:) side by side, as wqkv's output holds them:
        the one-token step writes both with one copy. `k` and `v` are views into it."""
        self.k = [kv[:, :nkv] for kv in self.kv]
        self.v = [kv[:, nkv:] for kv in self.kv]
        self.pos = 0
        self.capacity = cfg.max_seq_len
        self.pixel: torch.Tensor | None = None
        self.pixel_shift: torch.Tensor | None = None
        """The pixel's input shift for `pixel`, computed once per reply."""
        self.weights: Any = None
        """The brain's matrices as the one-token step reads them, copied at its first use: a cache
        serves one reply, during which the weights do not change."""
        self.native: NativeDecoder | bool | None = None
        """The C one-token step over these weights and this cache (brain/native.py); False where
        there is none (not one row of float32 on a CPU, or no kernel built); None: not yet asked."""


def _attention_mask(
    start: int, T: int, key_bias: torch.Tensor | None, need_weights: bool, device: torch.device
) -> torch.Tensor | None:
    """Additive (.., T, S) mask for T queries after `start` cached keys, built once for all layers.

    None where scaled_dot_product_attention's own causal rule is exact: a window from position 0,
    or a single new token, which sees every key there is.
    """
    S = start + T
    if key_bias is None and not need_weights and (start == 0 or T == 1):
        return None
    visible = torch.arange(S, device=device)[None, :] <= (start + torch.arange(T, device=device))[:, None]
    mask = torch.zeros(T, S, device=device).masked_fill(~visible, float("-inf"))
    if key_bias is not None:  # emphasis: extra log-weight on chosen key positions, (S,) or (B, S)
        mask = mask + key_bias[..., None, :S].float().unsqueeze(-3)
    return mask


def attend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    cache: tuple[torch.Tensor, torch.Tensor, int] | None,
    mask: torch.Tensor | None,
    need_weights: bool,
    dropout: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """softmax(q k^T / sqrt(hs) + mask) v over the cached keys and these; stores k, v in the cache.

    q (B, nh, T, hs); k, v (B, nkv, T, hs) -> (B, nh, T, hs), and the weights with need_weights.
    """
    if q.device.type == "cpu" and q.dtype == torch.bfloat16:
        # under bf16 autocast: the CPU's bf16 flash-attention backward is ~5x slower than fp32's,
        # and attention is a small share of the step's flops, so it runs in fp32
        with torch.autocast("cpu", enabled=False):  # autocast would send sdpa back to bf16
            y, weights = attend(q.float(), k.float(), v.float(), cache, mask, need_weights, dropout)
        return y.to(torch.bfloat16), weights
    nh, nkv, T, hs = q.size(1), k.size(1), q.size(2), q.size(3)
    if cache is not None:
        ck, cv, start = cache
        ck[:, :, start : start + T] = k
        cv[:, :, start : start + T] = v
        k, v = ck[:, :, : start + T], cv[:, :, : start + T]
    if nkv != nh:
        k, v = k.repeat_interleave(nh // nkv, dim=1), v.repeat_interleave(nh // nkv, dim=1)
    if need_weights:
        att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
        if mask is not None:
            att = att + mask
        weights = att.float().softmax(dim=-1)  # (B, nh, T, S)
        return weights.type_as(v) @ v, weights
    if mask is None:  # the whole window from position 0, or one new token seeing every key
        return F.scaled_dot_product_attention(q, k, v, is_causal=T > 1, dropout_p=dropout), None
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask.to(q.dtype)), None


class Attention(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
        self.wqkv = nn.Linear(cfg.dim, (cfg.n_heads + 2 * cfg.n_kv_heads) * self.hs, bias=False)
        self.wo = nn.Linear(cfg.n_heads * self.hs, cfg.dim, bias=False)
        self.dropout = cfg.dropout if cfg.attention_dropout is None else cfg.attention_dropout

    def forward(
        self,
        x: torch.Tensor,
        rope: torch.Tensor,
        cache: tuple[torch.Tensor, torch.Tensor, int] | None = None,
        mask: torch.Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        B, T, _ = x.shape
        nh, nkv, hs = self.n_heads, self.n_kv_heads, self.hs
        qkv = self.wqkv(x)  # (B, T, (nh + 2 nkv) hs)
        # q and k sit side by side in wqkv's output: one rotation for both
        qk = apply_rope(qkv[..., : (nh + nkv) * hs].view(B, T, nh + nkv, hs), rope).transpose(1, 2)
        q, k = qk.split([nh, nkv], dim=1)  # (B, nh, T, hs), (B, nkv, T, hs)
        v = qkv[..., (nh + nkv) * hs :].view(B, T, nkv, hs).transpose(1, 2)
        y, weights = attend(q, k, v, cache, mask, need_weights, self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, nh * hs)
        return self.wo(y), weights


class FeedForward(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.w13 = nn.Linear(cfg.dim, 2 * cfg.hidden_dim, bias=False)
        self.w2 = nn.Linear(cfg.hidden_dim, cfg.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, up = self.w13(x).chunk(2, dim=-1)  # W1 x, W3 x
        return self.w2(F.silu(gate) * up)


class Block(nn.Module):
    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.attention_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attention = Attention(cfg)
        self.ffn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.feed_forward = FeedForward(cfg)
        self.dropout = nn.Dropout(cfg.dropout)

    def forward(self, x, rope, cache=None, mask=None, need_weights=False):
        a, weights = self.attention(self.attention_norm(x), rope, cache, mask, need_weights)
        if self.dropout.p == 0 or not self.training:  # skip two no-op calls: a token is ~1 ms
            h = x + a
            return h + self.feed_forward(self.ffn_norm(h)), weights
        x = x + self.dropout(a)
        x = x + self.dropout(self.feed_forward(self.ffn_norm(x)))
        return x, weights


class Transformer(Brain):
    scores_targets = True

    def __init__(self, cfg: TransformerConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pixel_in = nn.Linear(3, cfg.dim, bias=False)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight
        self.pixel_head = PixelHead(cfg.dim)
        cos, sin = rope_tables(cfg.head_size, cfg.max_seq_len, cfg.rope_base)
        self.register_buffer("rope", torch.complex(cos, sin).unsqueeze(1), persistent=False)  # (T, 1, hs/2)
        self.register_buffer("rope_real", torch.stack((cos, sin), -1).unsqueeze(1), persistent=False)
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2's scaled init of residual projections
            if name.endswith(("wo.weight", "w2.weight")):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * cfg.n_layers))
        nn.init.zeros_(self.pixel_in.weight)  # a newborn is a plain Llama; the pixel earns its say
        self._decode_memo: tuple[tuple[tuple[int, int], ...], Any] | None = None

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)

    def _run(self, tokens, pixel, cache=None, key_bias=None, need_weights=False, head=True, last_only=False):
        B, T = tokens.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.config.max_seq_len:
            raise ValueError(f"window of {start + T} tokens exceeds max_seq_len {self.config.max_seq_len}")
        x = self.tok_embeddings(tokens)  # (B, T, C)
        x = x + self._pixel_shift(pixel, B, x, cache).unsqueeze(1)
        rope = (self.rope_real if torch.compiler.is_compiling() else self.rope)[start : start + T]
        mask = _attention_mask(start, T, key_bias, need_weights, x.device)
        attentions = []
        for i, layer in enumerate(self.layers):
            layer_cache = (cache.k[i], cache.v[i], start) if cache is not None else None
            x, w = layer(x, rope, layer_cache, mask, need_weights)
            attentions.append(w)
            if self.pause is not None and torch.is_grad_enabled():
                x = pause_point(x, self.pause)
        if cache is not None:
            cache.pos += T
        h = self.norm(x)
        out = h[:, -1:] if last_only else h  # the pixel still pools every position
        return self.output(out) if head else out, self.pixel_head(h), attentions

    def _pixel_shift(self, pixel, B, x, cache):
        """P (pixel - 0.5), (B, C); a reply keeps one pixel, so its cache keeps the shift."""
        if cache is not None and cache.pixel_shift is not None and cache.pixel is pixel:
            return cache.pixel_shift
        shift = self.pixel_in(pixel_input(pixel, B, x.device, x.dtype))
        if cache is not None and not torch.is_grad_enabled():
            cache.pixel, cache.pixel_shift = pixel, shift
        return shift

    def forward(
        self, tokens: torch.Tensor, pixel: torch.Tensor | None = None, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, ...]:
        """tokens (B, T) -> logits (B, T, V) for the next token at every position, pixel (B, 3).

        With targets (B, T): (mean cross-entropy, pixel (B, 3), argmax accuracy on every 8th of
        the B*T positions) instead, the head and the loss fused so the (B, T, V) logits never exist
        (brain/head_loss.py)."""
        if targets is not None:
            h, pixel_pred, _ = self._run(tokens, pixel, head=False)
            loss, accuracy = linear_cross_entropy(h, self.output.weight, targets)
            return loss, pixel_pred, accuracy
        logits, pixel_pred, _ = self._run(tokens, pixel)
        return logits, pixel_pred

    def _decode(self, tokens, pixel, cache, key_bias, need_weights):
        """One new token (B, 1) after the cache: _run's equations without module calls, on the
        cache's copies of the matrices. Returns (logits (B, 1, V), None, attentions): generation
        never reads the pixel, so the one-token step does not predict it.

        At a 1.3M-parameter size a token is ~115 small ops at a few us each plus ~270 us of
        matmuls that stream the weights (5 MB in fp32) from cache, so the common case (no mask, no
        weights wanted) takes the fewest ops: rows stay (B, C), so `@` is one mm; each RMSNorm's
        weight is folded into the matrix after it; the rotation is one complex product over all of
        wqkv's heads (v's turn by 1, exactly); and k and v go into the cache in one copy. Where
        it can (one row of float32 on a CPU, a C compiler at hand), the C step in brain/native.py
        does all of it in one call instead: 2.5x the tokens/s of this on a 2-core AVX2 CPU.
        """
        cfg, (B, _), start = self.config, tokens.shape, cache.pos
        if start + 1 > cfg.max_seq_len:
            raise ValueError(f"window of {start + 1} tokens exceeds max_seq_len {cfg.max_seq_len}")
        if cache.weights is None:
            cache.weights = self._decode_weights_now()
        if cache.native is None:
            cache.native = self._native_decoder(cache, B)
        if cache.native:
            return self._decode_native(tokens, pixel, cache, key_bias, need_weights)
        layers, head, turns = cache.weights
        nh, nkv, hs, C, eps = cfg.n_heads, cfg.n_kv_heads, cfg.head_size, cfg.dim, cfg.norm_eps
        x = F.embedding(tokens[:, 0], self.tok_embeddings.weight)  # (B, C)
        if pixel is not None:  # grey (None) shifts by exactly zero
            x = x + self._pixel_shift(pixel, B, x, cache)
        mask = _attention_mask(start, 1, key_bias, need_weights, x.device)
        plain = mask is None and not need_weights and turns is not None
        if plain:
            turn = turns[start]  # (nh + 2 nkv, hs/2) complex: this position's rotation
        else:
            rope = self.rope[start : start + 1]
        attentions = []
        for i, (wqkv, wo, w13, w2) in enumerate(layers):
            qkv = F.rms_norm(x, (C,), None, eps) @ wqkv  # the norm's weight is in wqkv
            if plain:
                pairs = torch.view_as_complex(qkv.view(B, nh + 2 * nkv, hs // 2, 2))
                heads = torch.view_as_real(pairs * turn).view(B, nh + 2 * nkv, hs)
                kv = cache.kv[i]
                kv[:, :, start] = heads[:, nh:]
                keys, values = kv[:, :nkv, : start + 1], kv[:, nkv:, : start + 1]
                if nkv != nh:  # grouped-query: each kv head serves nh // nkv query heads
                    keys, values = (t.repeat_interleave(nh // nkv, 1) for t in (keys, values))
                y = F.scaled_dot_product_attention(heads[:, :nh, None], keys, values)  # (B, nh, 1, hs)
                w = None
            else:
                qk = apply_rope(qkv[:, : (nh + nkv) * hs].view(B, 1, nh + nkv, hs), rope).transpose(1, 2)
                q, k = qk.split([nh, nkv], dim=1)
                v = qkv[:, (nh + nkv) * hs :].view(B, 1, nkv, hs).transpose(1, 2)
                y, w = attend(q, k, v, (cache.k[i], cache.v[i], start), mask, need_weights)
            x = x + y.reshape(B, nh * hs) @ wo
            gate, up = (F.rms_norm(x, (C,), None, eps) @ w13).chunk(2, dim=-1)
            x = x + (F.silu(gate) * up) @ w2
            attentions.append(w)
        cache.pos += 1
        logits = F.rms_norm(x, (C,), None, eps) @ head
        return logits.view(B, 1, -1), None, attentions

    def _native_decoder(self, cache: KVCache, batch_size: int) -> NativeDecoder | bool:
        """The C step for this cache where it can serve: one row, float32, on a CPU, a kernel built."""
        p = self.tok_embeddings.weight
        if batch_size != 1 or p.dtype != torch.float32 or p.device.type != "cpu" or library() is None:
            return False
        layers, head, _ = cache.weights
        cos, sin = (self.rope_real[:, 0, :, j].contiguous() for j in (0, 1))
        return NativeDecoder(self.config, p.detach(), layers, head, cos, sin, cache.kv)

    def _decode_native(self, tokens, pixel, cache, key_bias, need_weights):
        """_decode's step in one C call (brain/native.py): the same arithmetic, the same results."""
        start = cache.pos
        shift = None
        if pixel is not None:
            shift = self._pixel_shift(pixel, 1, self.tok_embeddings.weight, cache)
        logits, weights = cache.native.step(int(tokens[0, 0]), start, shift, key_bias, need_weights)
        cache.pos += 1
        attentions = (
            [w.view(1, self.config.n_heads, 1, start + 1) for w in weights]
            if need_weights
            else [None] * self.config.n_layers
        )
        return logits.view(1, 1, -1), None, attentions

    def _decode_weights_now(self) -> tuple[list[tuple[torch.Tensor, ...]], torch.Tensor, torch.Tensor | None]:
        """_decode_weights, made again only when a parameter has changed since the last time.

        A reply's copies cost ~5 ms on a slow CPU, and a long reply starts a fresh cache each
        time its window fills; a parameter's version counter moves with every in-place change
        (an optimizer step, load_state_dict) and its storage with every move, so the key is both.
        The brain keeps one copy between replies (5 MB at the default size).
        """
        key = tuple((q.data_ptr(), q._version) for q in self.parameters())
        if self._decode_memo is None or self._decode_memo[0] != key:
            self._decode_memo = (key, self._decode_weights())
        return self._decode_memo[1]

    def _decode_weights(self) -> tuple[list[tuple[torch.Tensor, ...]], torch.Tensor, torch.Tensor | None]:
        """Each layer's (in, out) matrices with the norm before them folded in, the head likewise,
        and every position's rotation over wqkv's heads (None where complex kernels are patchy).

        RMSNorm's weight scales input channels, so (w * n(x)) @ W = n(x) @ (w[:, None] * W); a
        one-row x @ W also runs ~1.7x faster than F.linear.
        """
        cfg = self.config

        def t(linear: nn.Linear, norm: RMSNorm | None = None) -> torch.Tensor:
            w = linear.weight.detach().t()
            return (w * norm.weight.detach()[:, None] if norm is not None else w).contiguous()

        layers = [
            (
                t(b.attention.wqkv, b.attention_norm),
                t(b.attention.wo),
                t(b.feed_forward.w13, b.ffn_norm),
                t(b.feed_forward.w2),
            )
            for b in self.layers
        ]
        turns = None
        p = self.tok_embeddings.weight
        if p.dtype == torch.float32 and p.device.type != "mps":
            S, half = cfg.max_seq_len, cfg.head_size // 2
            q_and_k = self.rope.expand(S, cfg.n_heads + cfg.n_kv_heads, half)
            v_stays = torch.ones(S, cfg.n_kv_heads, half, dtype=self.rope.dtype, device=p.device)
            turns = torch.cat((q_and_k, v_stays), dim=1)
        return layers, t(self.output, self.norm), turns

    def new_cache(self, batch_size: int = 1) -> KVCache:
        p = self.tok_embeddings.weight
        return KVCache(self.config, batch_size, p.device, p.dtype)

    @torch.no_grad()
    def step(
        self,
        tokens: torch.Tensor,
        cache: KVCache,
        pixel: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
        need_weights: bool = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Run `tokens` (B, t) after the cached positions and advance the cache.

        key_bias adds a log-weight to chosen key positions (emphasis). With need_weights the
        attention weights of every layer, (B, nh, t, pos+t) each, are returned as a third item.
        A single new token's pixel prediction is None: generation never reads it. last_only: the
        logits of the last position alone, (B, 1, V): what generation reads; a 64-token prefill
        at the default size spends a quarter of its time on the head.
        """
        if tokens.size(1) == 1:
            logits, pixel_pred, attentions = self._decode(tokens, pixel, cache, key_bias, need_weights)
        else:
            logits, pixel_pred, attentions = self._run(
                tokens, pixel, cache, key_bias, need_weights, last_only=last_only
            )
        if need_weights:
            return logits, pixel_pred, attentions
        return logits, pixel_pred
