"""How much one training step moved each layer: ‖Δw‖/‖w‖, measured on logged steps only.

`snapshot(model)` before the step copies the weights (a log step is one in `log_every`, so the copy
costs little); `measure(model, before)` after it gives each layer's relative update size. Layers
are named by their parameters' first names: "layers.0.attention.wqkv.weight" is "layers.0".
"""

from __future__ import annotations

from collections import defaultdict

import torch


def layer_name(param: str) -> str:
    """The layer a parameter belongs to: its first name, with the index for a numbered stack."""
    parts = param.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 and parts[1].isdigit() else parts[0]


@torch.no_grad()
def snapshot(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


@torch.no_grad()
def measure(model: torch.nn.Module, before: dict[str, torch.Tensor]) -> dict[str, float]:
    """Per layer sqrt(Σ‖w_after - w_before‖²) / sqrt(Σ‖w_before‖²)."""
    moved: dict[str, list[torch.Tensor]] = defaultdict(list)
    size: dict[str, list[torch.Tensor]] = defaultdict(list)
    for name, p in model.named_parameters():
        if name in before:
            w0 = before[name].float()
            moved[layer_name(name)].append((p.detach().float() - w0).square().sum())
            size[layer_name(name)].append(w0.square().sum())
    out = {}
    for layer in moved:
        total = torch.stack(size[layer]).sum()
        out[layer] = float(torch.stack(moved[layer]).sum().sqrt() / total.sqrt().clamp(min=1e-12))
    return out
