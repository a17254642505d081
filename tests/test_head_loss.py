"""The fused head + cross-entropy equals F.linear then F.cross_entropy, in value and in gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from brain import build_brain, preset_config
from brain.head_loss import CHUNK_ELEMENTS, linear_cross_entropy


def _plain(h, w, t):
    logits = F.linear(h, w)
    wide = torch.promote_types(logits.dtype, torch.float32)  # fp32, or fp64 for fp64 inputs
    loss = F.cross_entropy(logits.flatten(0, -2).to(wide), t.flatten())
    accuracy = (logits.detach().flatten(0, -2)[::8].argmax(-1) == t.flatten()[::8]).float().mean()
    return loss, accuracy


def test_loss_gradients_and_accuracy_match_the_plain_path_in_fp64():
    torch.manual_seed(0)
    C, V = 16, 4099
    N = 2 * (CHUNK_ELEMENTS // V) + 37  # rows that end mid-chunk
    w = torch.randn(V, C, dtype=torch.float64, requires_grad=True)
    h = torch.randn(N, C, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, V, (N,))
    t[::3] = F.linear(h, w).argmax(-1).detach()[::3]  # some hits, so accuracy is not 0
    loss, accuracy = linear_cross_entropy(h, w, t)
    (2.5 * loss).backward()
    dh, dw = h.grad.clone(), w.grad.clone()
    h.grad = w.grad = None
    ref_loss, ref_accuracy = _plain(h, w, t)
    (2.5 * ref_loss).backward()
    assert 0 < ref_accuracy < 1
    torch.testing.assert_close(loss, ref_loss.double(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(accuracy.double(), ref_accuracy.double())
    torch.testing.assert_close(dh, h.grad, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(dw, w.grad, rtol=1e-10, atol=1e-12)


def test_bf16_autocast_stays_close_to_fp32():
    torch.manual_seed(1)
    h = torch.randn(300, 32, requires_grad=True)
    w = (0.1 * torch.randn(200, 32)).requires_grad_()
    t = torch.randint(0, 200, (300,))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, _ = linear_cross_entropy(h, w, t)
    loss.backward()
    assert loss.dtype == torch.float32 and h.grad.dtype == torch.float32 and w.grad.dtype == torch.float32
    ref, _ = _plain(h.detach(), w.detach(), t)
    assert abs(loss.item() - ref.item()) < 0.02


def test_transformer_forward_with_targets_is_its_logits_loss():
    torch.manual_seed(2)
    model = build_brain(preset_config("transformer", "tiny", 300, max_seq_len=16))
    x, y = torch.randint(0, 300, (2, 3, 16))
    pixel = torch.full((3,), 0.7)
    loss, pixel_pred, accuracy = model(x, pixel, y)
    loss.backward()
    fused = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad(set_to_none=True)
    logits, ref_pixel = model(x, pixel)
    ref = F.cross_entropy(logits.flatten(0, 1), y.flatten())
    ref.backward()
    torch.testing.assert_close(loss, ref)
    torch.testing.assert_close(pixel_pred, ref_pixel)
    expected = (logits.detach()[:, ::8].argmax(-1) == y[:, ::8]).float().mean()
    torch.testing.assert_close(accuracy, expected)
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert grads.keys() == fused.keys() and "tok_embeddings.weight" in grads  # tied to the head
    for n, g in grads.items():
        torch.testing.assert_close(fused[n], g, rtol=1e-4, atol=1e-6, msg=n)
