"""The second rung of the ladder: one causal attention head over learned positions, then an MLP.

For a window of tokens t_0..t_{T-1}:

    x_t    = E[tok_t] + Pos[t] + P (pixel - 0.5)            token + learned position (+ pixel)
    q, k, v = Wq n(x), Wk n(x), Wv n(x)                      n = LayerNorm; one head of size D
    a_t    = sum_{i<=t} softmax_i(q_t·k_i / sqrt(D)) v_i      causal: position t reads 0..t
    x'     = x + Wo a                                        residual
    x''    = x' + W2 GELU(W1 n(x'))                           feed-forward, 4D wide
    logits = Wout n(x'')

Unlike the MLP rung it reads every earlier token in the window, weighing each by how well its key
matches the query; unlike the modern rung (transformer) it has one head in one block, learned
absolute positions instead of rotary ones, LayerNorm and a plain GELU feed-forward.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from brain.base import Brain, BrainConfig, PixelHead, pixel_input


@dataclass
class AttentionConfig(BrainConfig):
    brain: ClassVar[str] = "attention"
    dim: int = 128
    """Width of the residual stream, and of the one attention head."""
    hidden_dim: int | None = None
    """Feed-forward width; None means 4*dim."""
    dropout: float = 0.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        if self.hidden_dim is None:
            self.hidden_dim = 4 * self.dim
        if self.dim < 1 or self.hidden_dim < 1:
            raise ValueError("dim and hidden_dim must be at least 1")


class HeadCache:
    """The one head's keys and values of every position so far."""

    def __init__(
        self, cfg: AttentionConfig, batch_size: int, device: torch.device, dtype: torch.dtype
    ) -> None:
        shape = (batch_size, 1, cfg.max_seq_len, cfg.dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.pos = 0
        self.capacity = cfg.max_seq_len


class Head(nn.Module):
    """One causal self-attention head as wide as the stream."""

    def __init__(self, cfg: AttentionConfig) -> None:
        super().__init__()
        self.qkv = nn.Linear(cfg.dim, 3 * cfg.dim, bias=False)
        self.proj = nn.Linear(cfg.dim, cfg.dim, bias=False)
        self.dropout = cfg.dropout

    def forward(self, x, cache=None, key_bias=None, need_weights=False):
        _, T, C = x.shape
        q, k, v = (t.unsqueeze(1) for t in self.qkv(x).split(C, dim=-1))  # (B, 1, T, C) each
        start = 0
        if cache is not None:
            start = cache.pos
            cache.k[:, :, start : start + T] = k
            cache.v[:, :, start : start + T] = v
            k, v = cache.k[:, :, : start + T], cache.v[:, :, : start + T]
        S = k.size(2)
        mask = None
        if start > 0 or key_bias is not None or need_weights:
            pos = start + torch.arange(T, device=x.device)
            visible = torch.arange(S, device=x.device)[None, :] <= pos[:, None]  # (T, S)
            mask = torch.zeros(T, S, device=x.device, dtype=q.dtype).masked_fill(~visible, float("-inf"))
            if key_bias is not None:  # emphasis: extra log-weight on chosen key positions, (S,) or (B, S)
                mask = mask + key_bias[..., None, :S].to(q.dtype).unsqueeze(-3)
        weights = None
        if need_weights:
            weights = ((q @ k.transpose(-2, -1)) / math.sqrt(C) + mask).float().softmax(-1)  # (B, 1, T, S)
            y = weights.type_as(v) @ v
        elif mask is None:
            y = F.scaled_dot_product_attention(
                q, k, v, is_causal=T > 1, dropout_p=self.dropout if self.training else 0.0
            )
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.proj(y.squeeze(1)), weights  # (B, T, C)


class AttentionLM(Brain):
    def __init__(self, cfg: AttentionConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.pos_embeddings = nn.Embedding(cfg.max_seq_len, cfg.dim)
        self.pixel_in = nn.Linear(3, cfg.dim, bias=False)
        self.attention_norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.head = Head(cfg)
        self.ffn_norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.feed_forward = nn.Sequential(
            nn.Linear(cfg.dim, cfg.hidden_dim), nn.GELU(), nn.Linear(cfg.hidden_dim, cfg.dim)
        )
        self.norm = nn.LayerNorm(cfg.dim, eps=cfg.norm_eps)
        self.output = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        self.pixel_head = PixelHead(cfg.dim)
        self.dropout = nn.Dropout(cfg.dropout)
        for m in self.modules():
            if isinstance(m, nn.Linear | nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        nn.init.zeros_(self.pixel_in.weight)  # a newborn ignores its colour; the pixel earns its say

    def _run(self, tokens, pixel, cache=None, key_bias=None, need_weights=False, last_only=False):
        B, T = tokens.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.config.max_seq_len:
            raise ValueError(f"window of {start + T} tokens exceeds max_seq_len {self.config.max_seq_len}")
        pos = self.pos_embeddings.weight[start : start + T]  # (T, C)
        x = self.tok_embeddings(tokens) + pos  # (B, T, C)
        x = x + self.pixel_in(pixel_input(pixel, B, x.device, x.dtype)).unsqueeze(1)
        a, weights = self.head(self.attention_norm(x), cache, key_bias, need_weights)
        x = x + self.dropout(a)
        x = x + self.dropout(self.feed_forward(self.ffn_norm(x)))
        if cache is not None:
            cache.pos += T
        h = self.norm(x)
        return self.output(h[:, -1:] if last_only else h), self.pixel_head(h), weights

    def forward(
        self, tokens: torch.Tensor, pixel: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> logits (B, T, V) for the next token at every position, pixel (B, 3)."""
        logits, pixel_pred, _ = self._run(tokens, pixel)
        return logits, pixel_pred

    def new_cache(self, batch_size: int = 1) -> HeadCache:
        p = self.tok_embeddings.weight
        return HeadCache(self.config, batch_size, p.device, p.dtype)

    @torch.no_grad()
    def step(
        self,
        tokens: torch.Tensor,
        cache: HeadCache,
        pixel: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
        need_weights: bool = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Run `tokens` (B, t) after the cached positions and advance the cache.

        key_bias adds a log-weight to chosen key positions (emphasis). With need_weights the head's
        weights, [(B, 1, t, pos+t)] (one layer of one head, the transformer's layout), come third.
        last_only: the last position's logits alone, (B, 1, V), as generation reads them.
        """
        logits, pixel_pred, weights = self._run(tokens, pixel, cache, key_bias, need_weights, last_only)
        if need_weights:
            return logits, pixel_pred, [weights]
        return logits, pixel_pred
