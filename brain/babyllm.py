"""babyLLM: neurons, learned-window interneurons and decaying memories, every position at once.

For a window of tokens t_0..t_{T-1} (all products elementwise unless written as a matmul):

    x_t  = a0 E[tok_t] + a1 Pos[t] + a2 Pix (pixel - 0.5)      (a0, a1, a2) = softmax(blend)
    h_t  = GELU(W x_t + b)                                       neurons, (B, T, N)

Interneurons: K windows of learned, continuous size w_k = min(1 + exp(r_k), max_seq_len). With
S_t = h_0 + ... + h_{t-1} (S_0 = 0), n = floor(w_k) and f = w_k - n:

    sum_t(n) = S_{t+1} - S_{max(t+1-n, 0)}                       the last n activations
    win_k,t  = [(1-f) sum_t(n) + f sum_t(n+1)] / [(1-f) min(n, t+1) + f min(n+1, t+1)]
    u1_t     = sum_k p_k win_k,t                                 p = softmax(window mix)

so the gradient reaches w_k through f. Each memory layer keeps a short and a long trace with
decays d = sigmoid(q) in (0, 1), computed in parallel as a (T, T) lower-triangular matmul:

    m_t = d m_{t-1} + (1-d) u_t  =  sum_{i<=t} (1-d) d^(t-i) u_i  (+ d^(t+1) m_{-1} from a cache)
    g_t = sigmoid(c_u u_t + c_s ms_t + c_l ml_t + c_0)           per-channel gate
    y_t = g_t [s ms_t + (1-s) ml_t] + (1-g_t) u_t                s = sigmoid(per-channel mix)

Layer 2 reads u2 = b u1 + (1-b) y1 with b = sigmoid(learned scalar). Finally
logits = Wout LayerNorm(y2) + bout, and the pixel head reads the same normed state.

Emphasis (generation only): with per-position weights e_i = exp(key_bias_i), the windows become
weighted means, sum(e h) / sum(e) over the same spans, so marked words weigh more in every window
that holds them. Without key_bias the plain formulas above run, unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from brain.base import Brain, BrainConfig, PixelHead, pixel_input


@dataclass
class BabyLLMConfig(BrainConfig):
    brain: ClassVar[str] = "babyllm"
    embed_dim: int = 128
    """Width of the blended token/position/pixel input."""
    n_neurons: int = 512
    """Neurons; every later stage (windows, memories, norm) is this wide."""
    windows: tuple[float, ...] = (1, 2, 4, 8, 16, 32)
    """Initial interneuron window sizes in tokens; learned from there, kept in [1, max_seq_len]."""
    dropout: float = 0.0
    norm_eps: float = 1e-5

    def __post_init__(self) -> None:
        self.windows = tuple(self.windows)  # JSON brings lists back
        if not self.windows or min(self.windows) < 1:
            raise ValueError("windows must be a non-empty list of sizes >= 1")


def _inverse_size(w: float) -> float:
    # w = 1 + exp(r): log space lets Adam move a window in proportion to its size; a size of
    # exactly 1 is out of reach, so it starts a hair above.
    return math.log(max(w - 1.0, 0.05))


class Interneurons(nn.Module):
    """K causal moving averages of the neurons with learned sizes, mixed by learned weights."""

    def __init__(self, cfg: BabyLLMConfig) -> None:
        super().__init__()
        self.max_len = cfg.max_seq_len
        sizes = [min(float(w), cfg.max_seq_len) for w in cfg.windows]
        self.raw_sizes = nn.Parameter(torch.tensor([_inverse_size(w) for w in sizes]))
        self.mix = nn.Parameter(torch.zeros(len(sizes)))

    def sizes(self) -> torch.Tensor:
        return (1.0 + self.raw_sizes.exp()).clamp(max=self.max_len)  # (K,)

    def forward(self, S: torch.Tensor, start: int, E: torch.Tensor | None = None) -> torch.Tensor:
        """S: (B, P+1, N) running sums of every position so far -> window mix at start..P-1.

        E: (B, P+1) running sums of emphasis weights, when the sums in S are weighted.
        """
        P = S.size(1) - 1
        t = torch.arange(start, P, device=S.device)  # absolute positions, (T,)
        hi = S[:, start + 1 :]  # S_{t+1}, (B, T, N)
        weights = self.mix.softmax(0)
        out = torch.zeros_like(hi)
        for k, w in enumerate(self.sizes()):
            n = int(w.detach().floor())
            f = w - n
            lo = (1 - f) * S.index_select(1, (t + 1 - n).clamp(min=0)) + f * S.index_select(
                1, (t - n).clamp(min=0)
            )
            if E is None:
                count = (1 - f) * (t + 1).clamp(max=n) + f * (t + 1).clamp(max=n + 1)  # (T,)
                out = out + (hi - lo) * (weights[k] / count)[:, None]
            else:
                e_lo = (1 - f) * E[:, (t + 1 - n).clamp(min=0)] + f * E[:, (t - n).clamp(min=0)]
                count = E[:, start + 1 :] - e_lo  # (B, T): the emphasis inside the window
                out = out + (hi - lo) * (weights[k] / count)[..., None]
        return out


def window_reach(sizes: torch.Tensor, mix: torch.Tensor, emphasis: torch.Tensor) -> torch.Tensor:
    """How much each of the last S positions weighs in the window mix of the newest one, (S,).

    Position i (counted back from the newest, 0 = newest) is in window k with weight 1 while
    i < n_k, f_k at i = n_k, and 0 beyond; each window is a mean, so it is normalised by its
    (emphasis-weighted) count, and the windows are mixed by `mix`. The result sums to 1.
    """
    S = emphasis.numel()
    back = torch.arange(S, dtype=torch.float32)  # distance from the newest position
    e = emphasis.flip(0).float()
    out = torch.zeros(S)
    for w, p in zip(sizes.tolist(), mix.tolist(), strict=True):
        n, f = int(w), w - int(w)
        inside = torch.where(back < n, 1.0, torch.where(back == n, f, 0.0)) * e
        out += p * inside / inside.sum().clamp(min=1e-9)
    return out.flip(0)


def decay_trace(u: torch.Tensor, d: torch.Tensor, m0: torch.Tensor | None) -> torch.Tensor:
    """m_t = d m_{t-1} + (1-d) u_t for all t at once. u: (B, T, N), d: scalar, m0: (B, N) or None."""
    T = u.size(1)
    t = torch.arange(T, device=u.device)
    lag = t[:, None] - t[None, :]  # (T, T)
    log_d = torch.log(d)
    # d^(t-i) from log space, clamped lags keep the masked upper triangle finite
    D = torch.where(lag >= 0, torch.exp(lag.clamp(min=0) * log_d) * (1 - d), 0.0).to(u.dtype)
    m = D @ u  # (B, T, N)
    if m0 is not None:
        m = m + torch.exp((t + 1) * log_d).to(u.dtype)[None, :, None] * m0[:, None, :]
    return m


class Memory(nn.Module):
    """A short and a long decaying trace of the input, gated per channel against the input itself."""

    def __init__(self, width: int, short: float = 0.5, long: float = 0.95) -> None:
        super().__init__()
        self.decay_logits = nn.Parameter(
            torch.tensor([math.log(short / (1 - short)), math.log(long / (1 - long))])
        )
        self.gate_w = nn.Parameter(torch.zeros(3, width))  # weights of u, m_short, m_long
        self.gate_b = nn.Parameter(torch.zeros(width))
        self.mix = nn.Parameter(torch.zeros(width))  # short vs long

    def decays(self) -> torch.Tensor:
        return torch.sigmoid(self.decay_logits)  # (2,): d_short, d_long

    def forward(
        self, u: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """u: (B, T, N) -> output (B, T, N), gate (B, T, N), last m_short and m_long (B, N)."""
        d = self.decays()
        ms = decay_trace(u, d[0], state[0] if state is not None else None)
        ml = decay_trace(u, d[1], state[1] if state is not None else None)
        g = torch.sigmoid(self.gate_w[0] * u + self.gate_w[1] * ms + self.gate_w[2] * ml + self.gate_b)
        s = torch.sigmoid(self.mix)
        y = g * (s * ms + (1 - s) * ml) + (1 - g) * u
        return y, g, ms[:, -1], ml[:, -1]


class BabyCache:
    """What continuing exactly needs: running sums of the neurons and each layer's last traces."""

    def __init__(self, cfg: BabyLLMConfig, batch_size: int, device: torch.device, dtype: torch.dtype) -> None:
        self.sums = torch.zeros(batch_size, cfg.max_seq_len + 1, cfg.n_neurons, device=device, dtype=dtype)
        self.memory: list[tuple[torch.Tensor, torch.Tensor] | None] = [None, None]
        self.emphasis: torch.Tensor | None = None  # (B, L+1) running sums of e, once emphasis is used
        self.pos = 0
        self.capacity = cfg.max_seq_len


class BabyLLM(Brain):
    def __init__(self, cfg: BabyLLMConfig) -> None:
        super().__init__()
        self.config = cfg
        self.tok_embeddings = nn.Embedding(cfg.vocab_size, cfg.embed_dim)
        self.pos_embeddings = nn.Embedding(cfg.max_seq_len, cfg.embed_dim)
        self.pixel_in = nn.Linear(3, cfg.embed_dim, bias=False)
        self.blend = nn.Parameter(torch.zeros(3))
        self.neurons = nn.Linear(cfg.embed_dim, cfg.n_neurons)
        self.interneurons = Interneurons(cfg)
        self.memories = nn.ModuleList([Memory(cfg.n_neurons), Memory(cfg.n_neurons)])
        self.feed_mix = nn.Parameter(torch.zeros(()))  # b: layer 2 reads b u1 + (1-b) y1
        self.norm = nn.LayerNorm(cfg.n_neurons, eps=cfg.norm_eps)
        self.output = nn.Linear(cfg.n_neurons, cfg.vocab_size)
        self.pixel_head = PixelHead(cfg.n_neurons)
        self.dropout = nn.Dropout(cfg.dropout)
        # Tokens loud, positions quiet: the windows and memories already carry time, so position
        # starts as a small hint rather than noise as loud as the token.
        nn.init.normal_(self.tok_embeddings.weight, std=1.0)
        nn.init.normal_(self.pos_embeddings.weight, std=0.02)
        nn.init.normal_(self.output.weight, std=0.02)
        nn.init.zeros_(self.output.bias)
        nn.init.zeros_(self.pixel_in.weight)  # a newborn ignores its colour; the pixel earns its say

    def window_sizes(self) -> torch.Tensor:
        """The interneurons' current window sizes in tokens, (K,)."""
        return self.interneurons.sizes().detach()

    def _run(
        self,
        tokens: torch.Tensor,
        pixel: torch.Tensor | None,
        cache: BabyCache | None = None,
        key_bias: torch.Tensor | None = None,
        last_only: bool = False,
    ):
        B, T = tokens.shape
        start = cache.pos if cache is not None else 0
        if start + T > self.config.max_seq_len:
            raise ValueError(f"window of {start + T} tokens exceeds max_seq_len {self.config.max_seq_len}")
        a = self.blend.softmax(0)
        pos = self.pos_embeddings.weight[start : start + T]  # (T, C)
        pix = self.pixel_in(pixel_input(pixel, B, tokens.device, pos.dtype))  # (B, C)
        x = a[0] * self.tok_embeddings(tokens) + a[1] * pos + a[2] * pix[:, None]  # (B, T, C)
        h = self.dropout(F.gelu(self.neurons(x)))  # (B, T, N)
        E = None
        if cache is not None and (key_bias is not None or cache.emphasis is not None):
            if cache.emphasis is None:  # weights so far were all 1
                cache.emphasis = torch.arange(cache.capacity + 1, device=h.device, dtype=h.dtype).repeat(B, 1)
            e = torch.ones(B, T, device=h.device, dtype=h.dtype)
            if key_bias is not None:
                e = key_bias[..., start : start + T].to(h.dtype).exp().expand(B, T)
            cache.emphasis[:, start + 1 : start + T + 1] = cache.emphasis[:, start : start + 1] + e.cumsum(1)
            E = cache.emphasis[:, : start + T + 1]
            h = h * e[..., None]
        if cache is None:
            # fp32 sums: under bf16 autocast, differences of long bf16 prefix sums would be noise
            S = F.pad(h.float().cumsum(1), (0, 0, 1, 0))  # (B, T+1, N), S_0 = 0
        else:
            cache.sums[:, start + 1 : start + T + 1] = cache.sums[:, start : start + 1] + h.float().cumsum(1)
            S = cache.sums[:, : start + T + 1]
        u1 = self.interneurons(S, start, E)  # (B, T, N)
        y1, g1, ms1, ml1 = self.memories[0](u1, cache.memory[0] if cache is not None else None)
        b = torch.sigmoid(self.feed_mix)
        y2, g2, ms2, ml2 = self.memories[1](
            b * u1 + (1 - b) * y1, cache.memory[1] if cache is not None else None
        )
        if cache is not None:
            cache.memory = [(ms1, ml1), (ms2, ml2)]
            cache.pos += T
        hidden = self.norm(self.dropout(y2))
        return self.output(hidden[:, -1:] if last_only else hidden), self.pixel_head(hidden), (g1, g2)

    def forward(
        self, tokens: torch.Tensor, pixel: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """tokens (B, T) -> logits (B, T, V) for the next token at every position, pixel (B, 3)."""
        logits, pixel_pred, _ = self._run(tokens, pixel)
        return logits, pixel_pred

    def new_cache(self, batch_size: int = 1) -> BabyCache:
        p = self.tok_embeddings.weight
        return BabyCache(self.config, batch_size, p.device, p.dtype)

    @torch.no_grad()
    def step(
        self,
        tokens: torch.Tensor,
        cache: BabyCache,
        pixel: torch.Tensor | None = None,
        key_bias: torch.Tensor | None = None,
        need_weights: bool = False,
        last_only: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
        """Run `tokens` (B, t) after the cached positions and advance the cache.

        With need_weights a third item describes what the new tokens were read with: the window
        sizes and their mix (K,), the input blend (3,), and each memory layer's gate averaged over
        channels, "gates": [(B, t), (B, t)] (1 = leaning on memory, 0 = on the present input).
        last_only: the last position's logits alone, (B, 1, V), as generation reads them.
        """
        logits, pixel_pred, gates = self._run(tokens, pixel, cache, key_bias, last_only)
        if not need_weights:
            return logits, pixel_pred
        info = {
            "window_sizes": self.window_sizes(),
            "window_weights": self.interneurons.mix.softmax(0),
            "blend": self.blend.softmax(0),
            "gates": [g.mean(-1) for g in gates],
            "decays": torch.stack([m.decays() for m in self.memories]),  # (2 layers, short/long)
            "emphasis": None if cache.emphasis is None else cache.emphasis.diff(dim=1)[:, : cache.pos],
        }
        return logits, pixel_pred, info
