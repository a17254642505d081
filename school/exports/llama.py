"""Our transformer brain <-> plain Llama weights: unfusing, refusing, and the q/k rotary layouts.

Our brain stores Wq/Wk/Wv fused as `wqkv` (rows: q heads, k heads, v heads) and W1/W3 as `w13`
(rows: W1, then W3). Exports want them apart, stacked over layers the way llama2.c lays them out:

    tok_embeddings (V, D)   attention_norm (L, D)   wq (L, D, D)   wk, wv (L, kv_dim, D)   wo (L, D, D)
    ffn_norm (L, D)   w1, w3 (L, H, D)   w2 (L, D, H)   norm (D,)   [output (V, D) when untied]

These "stacked" tensors use our rotary layout (adjacent pairs, as llama2.c). Hugging Face Llama
rotates the halves of each head instead; `to_halfsplit` / `to_adjacent` permute q and k rows.
"""

from __future__ import annotations

from typing import Any

import torch

from brain import Brain
from brain.transformer import Transformer, TransformerConfig
from soul.checkpoint import load_model_tensors, model_tensors
from soul.paths import SoulError

Stacked = dict[str, torch.Tensor]
LAYER_KINDS = ("attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3")


def require_transformer(model: Brain, fmt: str) -> Transformer:
    """The model as a Transformer, or a one-line SoulError naming the format."""
    if not isinstance(model, Transformer):
        raise SoulError(
            f"only the transformer brain exports to {fmt}; this baby has the {model.config.brain} brain "
            "(use --format safetensors)"
        )
    return model


def stacked_weights(model: Transformer) -> Stacked:
    """The model's weights as plain Llama tensors stacked over layers (float32, detached copies)."""
    cfg = model.config
    hs = cfg.head_size
    split = [cfg.n_heads * hs, cfg.n_kv_heads * hs, cfg.n_kv_heads * hs]
    per_layer: dict[str, list[torch.Tensor]] = {k: [] for k in LAYER_KINDS}
    for block in model.layers:
        q, k, v = block.attention.wqkv.weight.split(split)
        w1, w3 = block.feed_forward.w13.weight.chunk(2)
        parts = {
            "attention_norm": block.attention_norm.weight,
            "wq": q,
            "wk": k,
            "wv": v,
            "wo": block.attention.wo.weight,
            "ffn_norm": block.ffn_norm.weight,
            "w1": w1,
            "w2": block.feed_forward.w2.weight,
            "w3": w3,
        }
        for kind, t in parts.items():
            per_layer[kind].append(t)
    out = {"tok_embeddings": model.tok_embeddings.weight}
    out.update({kind: torch.stack(ts) for kind, ts in per_layer.items()})
    out["norm"] = model.norm.weight
    if not cfg.tie_embeddings:
        out["output"] = model.output.weight
    return {k: v.detach().float().cpu().contiguous().clone() for k, v in out.items()}


def model_from_stacked(cfg: TransformerConfig, w: Stacked, seed: int = 0) -> Transformer:
    """A Transformer holding `w` (stacked, adjacent-pair layout); checks every shape first.

    The pixel input is zero (the imported model is the baby at grey) and the pixel head, which no
    format carries, starts from a seeded fresh init.
    """
    check_stacked(cfg, w)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Transformer(cfg)
    tensors = model_tensors(model)
    tensors["tok_embeddings.weight"] = w["tok_embeddings"]
    tensors["norm.weight"] = w["norm"]
    if not cfg.tie_embeddings:
        tensors["output.weight"] = w["output"]
    for i in range(cfg.n_layers):
        p = f"layers.{i}."
        tensors[p + "attention_norm.weight"] = w["attention_norm"][i]
        tensors[p + "attention.wqkv.weight"] = torch.cat([w["wq"][i], w["wk"][i], w["wv"][i]])
        tensors[p + "attention.wo.weight"] = w["wo"][i]
        tensors[p + "ffn_norm.weight"] = w["ffn_norm"][i]
        tensors[p + "feed_forward.w13.weight"] = torch.cat([w["w1"][i], w["w3"][i]])
        tensors[p + "feed_forward.w2.weight"] = w["w2"][i]
    load_model_tensors(model, {k: v.float() for k, v in tensors.items()})
    return model.eval()


def stacked_shapes(cfg: TransformerConfig) -> dict[str, tuple[int, ...]]:
    """The shape of every stacked tensor a model of `cfg` has."""
    V, D, L, H = cfg.vocab_size, cfg.dim, cfg.n_layers, cfg.hidden_dim
    kv = cfg.n_kv_heads * cfg.head_size
    shapes = {
        "tok_embeddings": (V, D),
        "attention_norm": (L, D),
        "wq": (L, D, D),
        "wk": (L, kv, D),
        "wv": (L, kv, D),
        "wo": (L, D, D),
        "ffn_norm": (L, D),
        "w1": (L, H, D),
        "w2": (L, D, H),
        "w3": (L, H, D),
        "norm": (D,),
    }
    if not cfg.tie_embeddings:
        shapes["output"] = (V, D)
    return shapes


def check_stacked(cfg: TransformerConfig, w: Stacked) -> None:
    for name, shape in stacked_shapes(cfg).items():
        if name not in w:
            raise SoulError(f"the weights lack {name}")
        if tuple(w[name].shape) != shape:
            raise SoulError(f"{name} has shape {tuple(w[name].shape)}, the config implies {shape}")


def to_halfsplit(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Rows of wq/wk from adjacent pairs to rotate_half: new row a*hs/2 + j = old row 2j + a, per head."""
    rows, cols = w.shape[-2:]
    hs = rows // n_heads
    return w.reshape(*w.shape[:-2], n_heads, hs // 2, 2, cols).transpose(-3, -2).reshape(w.shape)


def to_adjacent(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """The inverse of `to_halfsplit` (llama2.c's `permute_halfsplit_to_interleaved`)."""
    rows, cols = w.shape[-2:]
    hs = rows // n_heads
    return w.reshape(*w.shape[:-2], n_heads, 2, hs // 2, cols).transpose(-3, -2).reshape(w.shape)


def transformer_config(**fields: Any) -> TransformerConfig:
    """A TransformerConfig from imported fields, or a one-line SoulError when they do not fit together."""
    sizes = ("vocab_size", "dim", "n_layers", "n_heads", "n_kv_heads", "hidden_dim", "max_seq_len")
    for name in sizes:
        value = fields.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise SoulError(f"the model's shape is not usable: {name} is {value!r}")
    try:
        return TransformerConfig(**fields)
    except (TypeError, ValueError) as e:
        raise SoulError(f"the model's shape is not usable: {e}") from None
