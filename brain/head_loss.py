"""The output head and cross-entropy as one step, in row chunks, with gradients made in the forward.

For hidden states h (N, C), the head's matrix W (V, C) and targets t (N,):

    loss = mean_i [ logsumexp_v (h_i · W_v) - h_i · W_{t_i} ]
    dloss/dlogits_i = (softmax(logits_i) - onehot(t_i)) / N
    dh = dlogits W,   dW = dlogits^T h

The plain path (logits = F.linear(h, W), then F.cross_entropy(logits.float(), t)) writes the whole
(N, V) logits, an fp32 copy of them, their log-softmax, and the same three again in the backward:
at the tiny preset (2048 rows x 4200 words) that is about half of a CPU training step, spent
moving memory. Here each chunk of rows is multiplied, soft-maxed in fp32 and turned into its
gradients while it is still in cache; nothing (N, V) outlives its chunk, and the backward only
scales the stored dh and dW by the incoming gradient (Liger-Kernel's fused linear cross-entropy
does the same on GPUs). The matmuls run in `compute_dtype` (bf16 under autocast), the softmax and
the sums in fp32, and dW accumulates in fp32.
"""

from __future__ import annotations

import torch

CHUNK_ELEMENTS = 2**20
"""Logits per chunk: 2**20 fp32 (4 MB) is about what a core's L2 and its share of L3 hold; for a
vocabulary of 4200, 249 rows. At the tiny preset's (2048, 128) x (128, 4200), 1 thread, bf16,
forward + backward medians: 128 rows 58 ms, 256 rows 56, 512 rows 77, all 2048 at once 109; the
plain path 159. A small vocabulary (65 symbols) goes in one chunk: there many chunks cost more
than they save."""


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h, weight, targets, compute_dtype, every):  # type: ignore[override]
        N = h.size(0)
        needs_grad = h.requires_grad or weight.requires_grad
        w = weight.to(compute_dtype)
        hc = h.to(compute_dtype)
        acc = torch.promote_types(compute_dtype, torch.float32)  # fp32, or fp64 for fp64 weights
        total = torch.zeros((), dtype=acc, device=h.device)
        hits = torch.zeros((), dtype=torch.float32, device=h.device)
        dh = torch.empty_like(hc) if needs_grad else None
        dw = torch.zeros_like(weight, dtype=acc) if needs_grad else None
        rows = max(1, CHUNK_ELEMENTS // weight.size(0))
        for s in range(0, N, rows):
            h_c, t_c = hc[s : s + rows], targets[s : s + rows]
            logits = (h_c @ w.t()).to(acc)  # (n, V)
            if every:  # accuracy on every `every`-th row of the whole batch
                first = (-s) % every
                hits += (logits[first::every].argmax(-1) == t_c[first::every]).sum()
            # one vectorised kernel where logsumexp runs five (the head measured ~8% faster)
            logp = torch.log_softmax(logits, -1)
            total -= logp.gather(1, t_c[:, None]).sum()
            if needs_grad:
                g = logp.exp_()  # softmax, in log_softmax's storage
                g.scatter_add_(1, t_c[:, None], torch.full_like(t_c[:, None], -1, dtype=acc))
                g = g.mul_(1.0 / N).to(compute_dtype)
                dh[s : s + rows] = g @ w
                dw.add_(g.t() @ h_c)  # (V, C), summed in fp32 (add_ upcasts)
        ctx.save_for_backward(dh, dw)
        ctx.h_dtype = h.dtype
        ctx.mark_non_differentiable(hits)
        return total / N, hits

    @staticmethod
    def backward(ctx, grad_loss, _grad_hits):  # type: ignore[override]
        dh, dw = ctx.saved_tensors
        grad_h = (dh * grad_loss).to(ctx.h_dtype) if ctx.needs_input_grad[0] else None
        grad_w = dw * grad_loss if ctx.needs_input_grad[1] else None
        return grad_h, grad_w, None, None, None


def linear_cross_entropy(
    h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, every: int = 8
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of F.linear(h, weight) against targets, and the argmax hit rate.

    h (..., C), weight (V, C), targets (...). The hit rate counts every `every`-th row of the
    flattened batch (0 skips it) and carries no gradient. Under autocast the matmuls run in the
    autocast dtype, as F.linear's would.
    """
    h, targets = h.reshape(-1, h.size(-1)), targets.reshape(-1)
    device = h.device.type
    dtype = torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else weight.dtype
    with torch.autocast(device, enabled=False):
        loss, hits = _LinearCrossEntropy.apply(h, weight, targets, dtype, every)
    count = len(range(0, targets.numel(), every)) if every else 1
    return loss, hits / count
