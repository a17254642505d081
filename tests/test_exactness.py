"""The tutor's fast training step against a plain reference: same start, same batches, same losses."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from tests.test_tutor import make_tutor


def reference_forward(model, tokens: torch.Tensor, pixel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The transformer's equations (brain/transformer.py's docstring) written out, nothing fused."""
    cfg = model.config
    B, T = tokens.shape
    nh, nkv, hs = cfg.n_heads, cfg.n_kv_heads, cfg.head_size

    def rms(x, w):
        return w * x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + cfg.norm_eps)

    j = torch.arange(hs // 2, dtype=torch.float64)
    angle = (torch.arange(T, dtype=torch.float64)[:, None] * cfg.rope_base ** (-2 * j / hs)).float()
    cos, sin = angle.cos()[:, None, :], angle.sin()[:, None, :]  # (T, 1, hs/2)

    def rotate(x):  # (B, T, h, hs): pairs (2j, 2j+1) turn by pos * base^(-2j/hs)
        x0, x1 = x[..., 0::2], x[..., 1::2]
        return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)

    causal = torch.ones(T, T, dtype=torch.bool).tril()
    x = model.tok_embeddings.weight[tokens] + ((pixel - 0.5) @ model.pixel_in.weight.T)
    for layer in model.layers:
        q, k, v = (rms(x, layer.attention_norm.weight) @ layer.attention.wqkv.weight.T).split(
            [nh * hs, nkv * hs, nkv * hs], dim=-1
        )
        q = rotate(q.view(B, T, nh, hs)).transpose(1, 2)
        k = rotate(k.view(B, T, nkv, hs)).transpose(1, 2).repeat_interleave(nh // nkv, dim=1)
        v = v.view(B, T, nkv, hs).transpose(1, 2).repeat_interleave(nh // nkv, dim=1)
        att = (q @ k.transpose(-2, -1) / math.sqrt(hs)).masked_fill(~causal, float("-inf")).softmax(-1)
        x = x + (att @ v).transpose(1, 2).reshape(B, T, nh * hs) @ layer.attention.wo.weight.T
        gate, up = (rms(x, layer.ffn_norm.weight) @ layer.feed_forward.w13.weight.T).chunk(2, dim=-1)
        x = x + (F.silu(gate) * up) @ layer.feed_forward.w2.weight.T
    h = rms(x, model.norm.weight)
    pixel_pred = torch.sigmoid(h.mean(1) @ model.pixel_head.proj.weight.T + model.pixel_head.proj.bias)
    return h @ model.output.weight.T, pixel_pred


def test_thirty_fast_steps_match_the_reference_path(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    syl = tutor.syllabus
    reference = copy.deepcopy(tutor.model)
    params = list(reference.parameters())
    optimizer = torch.optim.AdamW(  # plain for-loop AdamW: neither fused nor foreach
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": syl.weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=syl.lr,
        betas=(0.9, syl.beta2),
        foreach=False,
        fused=False,
    )
    batches = []
    real_batch = tutor.librarian.batch

    def recorded(*args, **kwargs):
        batches.append(real_batch(*args, **kwargs))
        return batches[-1]

    tutor.librarian.batch = recorded
    fast, slow = [], []
    for step in range(30):
        pixel, target = tutor.pixel.clone(), tutor.pixel_target.clone()
        fast.append(tutor.train_step()["loss"])
        x, y = batches[-1]
        logits, pixel_pred = reference_forward(reference, x, pixel)
        lm_loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        loss = lm_loss + syl.pixel_weight * F.mse_loss(pixel_pred, target.expand_as(pixel_pred))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, syl.grad_clip, foreach=False)
        for group in optimizer.param_groups:
            group["lr"] = syl.lr_at(step)
        optimizer.step()
        slow.append(lm_loss.item())
    assert fast[-1] < fast[0] - 0.5  # it really learned, so a frozen or skipped step would show
    for a, b in zip(fast, slow, strict=True):
        assert abs(a - b) < 2e-3, (fast, slow)
