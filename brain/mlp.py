"""The first rung of the ladder: a fixed window of token embeddings through one tanh layer (Bengio 2003).

For a window of tokens t_0..t_{T-1} and a context of W tokens:

    e_t    = E[tok_t]                      (e_t = 0 for t < 0: nothing came before the window)
    x_t    = [e_{t-W+1}; ...; e_{t-1}; e_t]                      concatenated, (W*C,)
    h_t    = tanh(W1 x_t + b1 + P (pixel - 0.5))                 hidden layer, (H,)
    logits = W2 h_t + b2

Every position's window is a shifted view of the same left-padded embeddings (`unfold`), so
training runs all positions at once. The model sees exactly W tokens and nothing earlier: that is
the limit the attention rung lifts. The pixel head reads the hidden layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from brain.base import Brain, BrainConfig, PixelHead, pixel_input


@dataclass
class MLPConfig(BrainConfig):
    brain: ClassVar[str] = "mlp"
    window: int = 8
    """Tokens the model reads to predict the next one (the current token and W-1 before it)."""
    embed_dim: int = 64
    """Width of one token's embedding; the hidden layer reads window * embed_dim numbers."""
    hidden_dim: int = 512
    """Width of the tanh hidden layer."""
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.window < 1 or self.embed_dim < 1 or self.hidden_dim < 1:
            raise ValueError("window, embed_dim and hidden_dim must be at least 1")


class WindowCache:
    """The embeddings of the last W-1 tokens: all the MLP ever needs to continue."""

    def __init__(self, cfg: MLPConfig, batch_size: int, device: torch.device, dtype: torch.dtype) -> None:
        self.prev = torch.zeros(batch_size, cfg.window - 1, cfg.embed_dim, device=device, dtype=dtype)
        self.pos = 0
        self.capacity = cfg.max_seq_len


class MLP(Brain):
    def __init__(self, cfg: MLPConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.hidden = nn.Linear(cfg.window * cfg.embed_dim, cfg.hidden_dim)
        self.pixel_in = nn.Linear(3, cfg.hidden_dim, bias=False)
        self.output = nn.Linear(cfg.hidden_dim, cfg.vocab_size)
        self.pixel_head = PixelHead(cfg.hidden_dim)
        self.dropout = nn.Dropout(cfg.dropout)
        nn.init.normal_(self.tok_embeddings.weight, std=1.0)
        nn.init.normal_(self.hidden.weight, std=(cfg.window * cfg.embed_dim) ** -0.5)
        nn.init.zeros_(self.hidden.bias)
        nn.init.normal_(self.output.weight, std=0.02)
        nn.init.zeros_(self.output.bias)
        nn.init.zeros_(self.pixel_in.weight)  # a newborn ignores its colour; the pixel earns its say

    def _run(self, e: torch.Tensor, prev: torch.Tensor, pixel: torch.Tensor | None):
        """e: (B, T, C) new embeddings after prev: (B, W-1, C) -> logits, pixel, hidden, last W-1."""
        B, T, C = e.shape
        W = self.config.window
        full = torch.cat([prev, e], dim=1)  # (B, W-1+T, C)
        x = full.unfold(1, W, 1)  # (B, T, C, W): window t ends at token t
        x = x.transpose(-1, -2).reshape(B, T, W * C)  # oldest first, (B, T, W*C)
        pix = self.pixel_in(pixel_input(pixel, B, e.device, e.dtype))  # (B, H)
        h = self.dropout(torch.tanh(self.hidden(x) + pix[:, None]))  # (B, T, H)
        return self.output(h), self.pixel_head(h), full[:, T:]

    def forward(
        self, tokens: torch.Tensor, pixel: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> logits (B, T, V) for the next token at every position, pixel (B, 3)."""
        e = self.tok_embeddings(tokens)  # (B, T, C)
        prev = e.new_zeros(e.size(0), self.config.window - 1, e.size(2))  # the left padding
        logits, pixel_pred, _ = self._run(e, prev, pixel)
        return logits, pixel_pred

    def new_cache(self, batch_size: int = 1) -> WindowCache:
        p = self.tok_embeddings.weight
        return WindowCache(self.config, batch_size, p.device, p.dtype)

    @torch.no_grad()
    def step(
        self,
        tokens: torch.Tensor,
        cache: WindowCache,
        pixel: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
        need_weights: bool = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Run `tokens` (B, t) after the cached window and advance the cache.

        key_bias (emphasis) is accepted and has no effect: a fixed window has no weights to tilt.
        With need_weights the third item is the window's reach in the attention layout,
        [(B, 1, t, pos+t)]: 1/W on each token a position reads, 0 elsewhere (the MLP weighs
        nothing; every token in its window counts, everything older is invisible). last_only:
        the last position's logits alone, (B, 1, V), as generation reads them.
        """
        B, T = tokens.shape
        start = cache.pos
        logits, pixel_pred, cache.prev = self._run(self.tok_embeddings(tokens), cache.prev, pixel)
        if last_only:
            logits = logits[:, -1:]
        cache.pos += T
        if not need_weights:
            return logits, pixel_pred
        W, S = self.config.window, start + T
        q = start + torch.arange(T, device=tokens.device)[:, None]  # (t, 1) absolute positions
        k = torch.arange(S, device=tokens.device)[None, :]  # (1, S)
        reach = ((k <= q) & (k > q - W)).float() / W
        return logits, pixel_pred, [reach.expand(B, 1, T, S)]
