"""Forward passes that keep what the x-ray shows, one per brain, on the brain's own modules.

Each replays its brain's `forward` with the same modules and parameters (tests hold the logits
equal to `model(tokens)`), and keeps the numbers in between: scores, softmax weights, activations.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from brain.base import pixel_input
from brain.transformer import apply_rope
from school.xray.common import activation_view, rows
from school.xray.views import BabyView, HeadView, LayerView, PositionView, WindowView


def _causal(T: int, device: torch.device) -> torch.Tensor:
    """(T, T) True where query t may read key s (s <= t)."""
    return torch.ones(T, T, dtype=torch.bool, device=device).tril()


def _head_view(
    layer: int, head: int, att: torch.Tensor, visible: torch.Tensor, w: torch.Tensor, y: torch.Tensor, **extra
) -> HeadView:
    scores = [
        [v if ok else None for v, ok in zip(r, m, strict=True)]
        for r, m in zip(rows(att), visible.tolist(), strict=True)
    ]
    return HeadView(layer, head, scores, rows(w), y.float().norm(dim=-1).tolist(), **extra)


def _attend(q, k, v, visible):
    """q, k, v (nh, T, hs) -> raw scores, softmax weights and the value mix, each per head."""
    att = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))  # (nh, T, T)
    w = att.masked_fill(~visible, float("-inf")).float().softmax(-1)
    return att, w, w.type_as(v) @ v


@torch.no_grad()
def transformer(model, ids: torch.Tensor, pixel):
    """The modern rung: rotary positions, grouped heads, SwiGLU; returns (position, layers, logits)."""
    cfg = model.config
    T = ids.size(1)
    nh, nkv, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size
    x = model.tok_embeddings(ids)  # (1, T, C)
    x = x + model.pixel_in(pixel_input(pixel, 1, x.device, x.dtype)).unsqueeze(1)
    rope = model.rope[:T]  # (T, 1, hs/2) complex: the brain's own rotation of each adjacent pair
    # rope_tables' formula: these angles are the brain's own rotation's (a test holds them equal)
    inv_freq = 1.0 / (cfg.rope_base ** (torch.arange(0, hs, 2, dtype=torch.float64) / hs))
    angles = torch.outer(torch.arange(T, dtype=torch.float64), inv_freq)  # (T, hs/2)
    visible = _causal(T, x.device)
    layers = []
    for li, block in enumerate(model.layers):
        qkv = block.attention.wqkv(block.attention_norm(x))
        raw = qkv[..., : (nh + nkv) * hs].view(1, T, nh + nkv, hs)
        qk = apply_rope(raw, rope).transpose(1, 2)[0]  # (nh + nkv, T, hs)
        q, k = qk.split([nh, nkv])
        v = qkv[..., (nh + nkv) * hs :].view(T, nkv, hs).transpose(0, 1)
        if nkv != nh:
            k, v = k.repeat_interleave(nh // nkv, 0), v.repeat_interleave(nh // nkv, 0)
        att, w, y = _attend(q, k, v, visible)
        q_raw = raw[0, :, :nh].transpose(0, 1)  # (nh, T, hs)
        heads = [
            _head_view(li, h, att[h], visible, w[h], y[h], query=rows(q_raw[h]), query_rotated=rows(q[h]))
            for h in range(nh)
        ]
        h_ = x + block.attention.wo(y.transpose(0, 1).reshape(1, T, nh * hs))
        ff = block.feed_forward
        gate, up = ff.w13(block.ffn_norm(h_)).chunk(2, dim=-1)
        act = F.silu(gate) * up
        x = h_ + ff.w2(act)
        layers.append(LayerView(li, heads, activation_view(act[0]), x[0].float().norm(dim=-1).tolist()))
    logits = model.output(model.norm(x))[0]
    return PositionView("rotary", angles=rows(angles)), layers, logits


@torch.no_grad()
def attention(model, ids: torch.Tensor, pixel):
    """The second rung: learned positions, one head as wide as the stream, a GELU MLP."""
    T = ids.size(1)
    pos = model.pos_embeddings.weight[:T]
    x = model.tok_embeddings(ids) + pos
    x = x + model.pixel_in(pixel_input(pixel, 1, x.device, x.dtype)).unsqueeze(1)
    visible = _causal(T, x.device)
    q, k, v = (
        t.unsqueeze(0)[:, 0] for t in model.head.qkv(model.attention_norm(x)).split(x.size(-1), dim=-1)
    )
    att, w, y = _attend(q, k, v, visible)  # one head: (1, T, T)
    x = x + model.head.proj(y)
    fc1, gelu, fc2 = model.feed_forward
    act = gelu(fc1(model.ffn_norm(x)))
    x = x + fc2(act)
    layer = LayerView(
        0,
        [_head_view(0, 0, att[0], visible, w[0], y[0])],
        activation_view(act[0]),
        x[0].float().norm(dim=-1).tolist(),
    )
    position = PositionView("learned", rows=rows(pos), norms=pos.float().norm(dim=-1).tolist())
    return position, [layer], model.output(model.norm(x))[0]


@torch.no_grad()
def mlp(model, ids: torch.Tensor, pixel):
    """The first rung: a fixed window of embeddings, one tanh layer."""
    cfg = model.config
    W, T = cfg.window, ids.size(1)
    e = model.tok_embeddings(ids)  # (1, T, C)
    C = e.size(-1)
    full = torch.cat([e.new_zeros(1, W - 1, C), e], dim=1)
    x = full.unfold(1, W, 1).transpose(-1, -2).reshape(1, T, W * C)
    pix = model.pixel_in(pixel_input(pixel, 1, e.device, e.dtype))
    h = torch.tanh(model.hidden(x) + pix[:, None])
    W1 = model.hidden.weight.view(-1, W, C)  # (H, W, C): one block of columns per slot
    slots = torch.einsum("hwc,twc->twh", W1, x[0].view(T, W, C))  # (T, W, H)
    reads = [[s for s in range(t - W + 1, t + 1) if s >= 0] for t in range(T)]
    window = WindowView(W, reads, slots.norm(dim=-1).tolist())
    return window, activation_view(h[0], 0.5, tanh=True), model.output(h)[0]


def _window_means(S: torch.Tensor, sizes: torch.Tensor) -> torch.Tensor:
    """Each interneuron window's mean of the neurons, (K, T, N): Interneurons.forward, unmixed."""
    P = S.size(1) - 1
    t = torch.arange(P, device=S.device)
    hi = S[0, 1:]
    out = []
    for w in sizes:
        n = int(w.floor())
        f = w - n
        lo = (1 - f) * S[0, (t + 1 - n).clamp(min=0)] + f * S[0, (t - n).clamp(min=0)]
        count = (1 - f) * (t + 1).clamp(max=n) + f * (t + 1).clamp(max=n + 1)
        out.append((hi - lo) / count[:, None])
    return torch.stack(out)


@torch.no_grad()
def babyllm(model, ids: torch.Tensor, pixel):
    """babyLLM: blend, neurons, windows, two gated memories."""
    T = ids.size(1)
    a = model.blend.softmax(0)
    pos = model.pos_embeddings.weight[:T]
    pix = model.pixel_in(pixel_input(pixel, 1, ids.device, pos.dtype))
    x = a[0] * model.tok_embeddings(ids) + a[1] * pos + a[2] * pix[:, None]
    h = F.gelu(model.neurons(x))
    S = F.pad(h.float().cumsum(1), (0, 0, 1, 0))
    u1 = model.interneurons(S, 0)
    sizes = model.interneurons.sizes().detach()
    means = _window_means(S, sizes)
    y1, g1, _, _ = model.memories[0](u1)
    b = torch.sigmoid(model.feed_mix)
    y2, g2, _, _ = model.memories[1](b * u1 + (1 - b) * y1)
    logits = model.output(model.norm(y2))[0]
    view = BabyView(
        blend=a.tolist(),
        neurons=activation_view(h[0]),
        window_sizes=sizes.tolist(),
        window_mix=model.interneurons.mix.softmax(0).tolist(),
        window_norm=means.norm(dim=-1).tolist(),
        decays=[m.decays().tolist() for m in model.memories],
        gates=[g1[0].mean(-1).tolist(), g2[0].mean(-1).tolist()],
        memory_norm=[y1[0].norm(dim=-1).tolist(), y2[0].norm(dim=-1).tolist()],
    )
    position = PositionView(
        "learned", rows=rows(pos), norms=pos.float().norm(dim=-1).tolist(), weight=float(a[1])
    )
    return position, view, logits, means, u1
