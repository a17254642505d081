"""A Hugging Face `transformers` Llama folder: what `LlamaForCausalLM.from_pretrained(DIR)` and
`PreTrainedTokenizerFast.from_pretrained(DIR)` load, written from our brain and read back.

HF Llama rotates q and k by halves of each head (rotate_half) where our brain rotates adjacent pairs,
so the q rows (per query head) and k rows (per kv head) are permuted on the way out and back.

BOS: the exported tokenizer.json has a post-processor that puts `<s>` (id 1) in front, so
`tokenizer(text)` gives `[1] + ids` (what run.c and our chat feed the model) and
`tokenizer(text, add_special_tokens=False)` gives exactly our ids. Decode with
`skip_special_tokens=True`. One gap: `transformers` registers <unk>, <s> and </s> as special tokens,
so a literal "<s>" in the text becomes id 1 there while our tokenizer spells it out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file
from tokenizers import Tokenizer, processors

from brain.transformer import TransformerConfig
from school.exports.llama import (
    LAYER_KINDS,
    Stacked,
    require_transformer,
    stacked_weights,
    to_adjacent,
    to_halfsplit,
    transformer_config,
)
from school.exports.source import Source, into_fresh_folder, revived
from school.tokenizer import BOS_ID, EOS_ID, load_tokenizer
from soul.atomic import write_json_atomic
from soul.paths import SoulError

# our stacked kind -> HF name inside model.layers.N
_LAYER_NAMES = {
    "attention_norm": "input_layernorm.weight",
    "wq": "self_attn.q_proj.weight",
    "wk": "self_attn.k_proj.weight",
    "wv": "self_attn.v_proj.weight",
    "wo": "self_attn.o_proj.weight",
    "ffn_norm": "post_attention_layernorm.weight",
    "w1": "mlp.gate_proj.weight",
    "w2": "mlp.down_proj.weight",
    "w3": "mlp.up_proj.weight",
}
_TOP_NAMES = {
    "tok_embeddings": "model.embed_tokens.weight",
    "norm": "model.norm.weight",
    "output": "lm_head.weight",
}


def hf_config(cfg: TransformerConfig) -> dict[str, Any]:
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.dim,
        "intermediate_size": cfg.hidden_dim,
        "num_hidden_layers": cfg.n_layers,
        "num_attention_heads": cfg.n_heads,
        "num_key_value_heads": cfg.n_kv_heads,
        "head_dim": cfg.head_size,
        "max_position_embeddings": cfg.max_seq_len,
        "rms_norm_eps": cfg.norm_eps,
        "rope_theta": cfg.rope_base,
        "rope_scaling": None,
        "tie_word_embeddings": cfg.tie_embeddings,
        "bos_token_id": BOS_ID,
        "eos_token_id": EOS_ID,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "torch_dtype": "float32",
    }


def hf_tensors(cfg: TransformerConfig, w: Stacked) -> dict[str, torch.Tensor]:
    """Stacked weights (adjacent-pair layout) under HF Llama's names, q and k in rotate_half layout."""
    out = {_TOP_NAMES[k]: w[k] for k in ("tok_embeddings", "norm", "output") if k in w}
    for i in range(cfg.n_layers):
        for kind in LAYER_KINDS:
            t = w[kind][i]
            if kind in ("wq", "wk"):
                t = to_halfsplit(t, cfg.n_heads if kind == "wq" else cfg.n_kv_heads)
            out[f"model.layers.{i}.{_LAYER_NAMES[kind]}"] = t.contiguous()
    return out


def hf_tokenizer(tok: Tokenizer) -> Tokenizer:
    """Our tokenizer with a post-processor that prepends <s> when special tokens are asked for."""
    out = Tokenizer.from_str(tok.to_str())
    out.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", BOS_ID)]
    )
    return out


def export_hf(source: Source, out_dir: Path) -> list[Path]:
    """Export a transformer baby as a `transformers` Llama folder `out_dir` (absent or empty).

    Returns the files written; SoulError (one line) for the babyllm brain or a non-empty `out_dir`.
    """
    baby = revived(source)
    model = require_transformer(baby.model, "hf")
    return into_fresh_folder(out_dir, lambda folder: write_hf(model, baby.tokenizer, folder))


def write_hf(model: torch.nn.Module, tok: Tokenizer, out_dir: Path) -> None:
    """Write config.json, model.safetensors, tokenizer.json, tokenizer_config.json, generation_config.json."""
    model = require_transformer(model, "hf")
    cfg = model.config
    out_dir = Path(out_dir)
    tensors = hf_tensors(cfg, stacked_weights(model))
    save_file(tensors, out_dir / "model.safetensors", metadata={"format": "pt"})
    write_json_atomic(out_dir / "config.json", hf_config(cfg))
    hf_tokenizer(tok).save(str(out_dir / "tokenizer.json"))
    special = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"}
    write_json_atomic(
        out_dir / "tokenizer_config.json",
        {
            "tokenizer_class": "PreTrainedTokenizerFast",
            **special,
            "model_max_length": cfg.max_seq_len,
            "clean_up_tokenization_spaces": False,
        },
    )
    # what babyterm chat does: temperature 0.8, top-k 40, within the window it learned on
    write_json_atomic(
        out_dir / "generation_config.json",
        {
            "bos_token_id": BOS_ID,
            "eos_token_id": EOS_ID,
            "do_sample": True,
            "temperature": 0.8,
            "top_k": 40,
            "max_length": cfg.max_seq_len,
        },
    )


# -- reading one back ---------------------------------------------------------------------------


def read_hf(folder: Path) -> tuple[TransformerConfig, Stacked, Tokenizer]:
    """(config, stacked weights in our layout, tokenizer) of a Llama folder like the ones we export."""
    folder = Path(folder)
    conf = _read_json(folder / "config.json")
    cfg = _config_from_hf(conf, folder)
    tensors = _read_tensors(folder)
    w: Stacked = {}
    for ours, theirs in _TOP_NAMES.items():
        if ours == "output" and cfg.tie_embeddings:
            tensors.pop(theirs, None)  # some writers save the tied head too; HF ignores it as well
            continue
        w[ours] = _take(tensors, theirs, folder)
    for kind in LAYER_KINDS:
        names = [f"model.layers.{i}.{_LAYER_NAMES[kind]}" for i in range(cfg.n_layers)]
        layers = [_take(tensors, name, folder) for name in names]
        try:
            w[kind] = torch.stack(layers)
        except RuntimeError:
            raise SoulError(f"{folder}: the layers' {_LAYER_NAMES[kind]} differ in shape") from None
    extra = [n for n in tensors if not n.endswith("rotary_emb.inv_freq")]
    if extra:
        raise SoulError(f"{folder} has weights a plain Llama lacks, e.g. {extra[0]}")
    for kind, heads in (("wq", cfg.n_heads), ("wk", cfg.n_kv_heads)):
        if w[kind].shape[1] % heads == 0 and (w[kind].shape[1] // heads) % 2 == 0:
            w[kind] = to_adjacent(w[kind], heads)  # shapes are checked in full later
    tok = load_tokenizer(folder / "tokenizer.json")
    tok.post_processor = None  # ours add BOS themselves (school.tokenizer encodes without specials)
    return cfg, w, tok


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SoulError(f"{path} not found") from None
    except (OSError, ValueError) as e:
        raise SoulError(f"{path} is not readable JSON ({e})") from None
    if not isinstance(data, dict):
        raise SoulError(f"{path} is not a JSON object")
    return data


def _config_from_hf(c: dict[str, Any], folder: Path) -> TransformerConfig:
    if "model_type" not in c:
        raise SoulError(f"{folder}/config.json names no model_type; babyterm adopts Llama models")
    if c["model_type"] != "llama":
        raise SoulError(f"{folder} holds a {c['model_type']!r} model; babyterm adopts Llama models")
    rope = c.get("rope_parameters") or {}
    scaling = c.get("rope_scaling") or (rope if rope.get("rope_type", "default") != "default" else None)
    unsupported = {
        "hidden_act": c.get("hidden_act", "silu") != "silu",
        "attention_bias": bool(c.get("attention_bias")),
        "mlp_bias": bool(c.get("mlp_bias")),
        "rope_scaling": bool(scaling),
    }
    for what, bad in unsupported.items():
        if bad:
            raise SoulError(f"{folder}: {what} {c.get(what)!r} is not something our brain has")
    heads = c.get("num_attention_heads")
    cfg = transformer_config(
        vocab_size=c.get("vocab_size"),
        dim=c.get("hidden_size"),
        n_layers=c.get("num_hidden_layers"),
        n_heads=heads,
        n_kv_heads=c.get("num_key_value_heads", heads),
        hidden_dim=c.get("intermediate_size"),
        max_seq_len=c.get("max_position_embeddings"),
        tie_embeddings=bool(c.get("tie_word_embeddings", False)),
        norm_eps=float(c.get("rms_norm_eps", 1e-6)),
        rope_base=float(c.get("rope_theta", rope.get("rope_theta", 10000.0))),
    )
    if c.get("head_dim") not in (None, cfg.head_size):
        raise SoulError(f"{folder}: head_dim {c['head_dim']} is not hidden_size / num_attention_heads")
    return cfg


def _read_tensors(folder: Path) -> dict[str, torch.Tensor]:
    index = folder / "model.safetensors.index.json"
    files = (
        sorted(set(_read_json(index).get("weight_map", {}).values()))
        if index.exists()
        else ["model.safetensors"]
    )
    tensors: dict[str, torch.Tensor] = {}
    for name in files:
        path = folder / name
        try:
            tensors.update(load(path.read_bytes()))
        except FileNotFoundError:
            raise SoulError(f"{path} not found") from None
        except (OSError, SafetensorError, ValueError) as e:
            raise SoulError(f"{path} is not a readable safetensors file ({e})") from None
    return {k: v.float() for k, v in tensors.items()}


def _take(tensors: dict[str, torch.Tensor], name: str, folder: Path) -> torch.Tensor:
    if name not in tensors:
        raise SoulError(f"{folder}: the weights lack {name}")
    return tensors.pop(name)
