"""A llama-architecture GGUF (what llama.cpp and Ollama run) with its tokenizer, and an Ollama Modelfile.

Weights: llama.cpp's LLAMA rotates adjacent pairs of each head (rope type NORM), which is our
brain's own layout. llama.cpp's convert_hf_to_gguf.py permutes HF's rotate_half q/k rows back to
adjacent pairs (`LlamaModel.permute`, our `to_adjacent`), so our stacked weights go in unpermuted.
f32 by default; q8_0 quantizes each 2-D weight whose rows are a multiple of 32 (1-D norms stay
f32, as in llama.cpp's MOSTLY_Q8_0). A tied classifier is left out: llama.cpp reuses token_embd.

Tokenizer: `tokenizer.ggml.model` "llama" (llama.cpp's SentencePiece-style merger: adjacent
symbols whose concatenation is a token merge, highest score first, leftmost on ties). A learned
piece scores minus the rank of the merge that makes it, which replays our BPE merges; reserved
pieces score -1e10. `▁` stays in the pieces (SPM spelling); bytes are `<0xXX>` BYTE tokens, so
characters outside the vocab fall back to bytes as ours do. add_bos_token is true: a document
starts with <s>, and so does every chat prompt.

Modelfile: FROM the GGUF beside it (relative), babyterm chat's sampling, the model's context, and
a TEMPLATE that frames a conversation exactly as school/framing.py does, with its stop strings.
The GGUF's own `tokenizer.chat_template` (Jinja, for llama.cpp's chat) frames it the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import gguf
import numpy as np
import torch
from tokenizers import Tokenizer

from brain.generate import Sampling
from brain.transformer import Transformer
from school.exports.llama import LAYER_KINDS, require_transformer, stacked_weights
from school.exports.source import Source, into_fresh_folder, revived
from school.framing import STOP
from school.tokenizer import BOS_ID, EOS_ID, N_RESERVED, SPECIALS, UNK_ID, check_layout, merge_ranks
from soul.paths import BabyPaths, SoulError

QUANTS = ("f32", "q8_0")
NEVER_MERGED = -1e10
_FILE_TYPES = {"f32": gguf.LlamaFileType.ALL_F32, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}
_Q8_BLOCK = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0]

# our stacked kind -> llama.cpp's name inside blk.N
LAYER_NAMES = {
    "attention_norm": "attn_norm",
    "wq": "attn_q",
    "wk": "attn_k",
    "wv": "attn_v",
    "wo": "attn_output",
    "ffn_norm": "ffn_norm",
    "w1": "ffn_gate",
    "w2": "ffn_down",
    "w3": "ffn_up",
}
TOP_NAMES = {"tok_embeddings": "token_embd", "norm": "output_norm", "output": "output"}

# Ollama's Go template over .Messages: a user message then "\n", any other message then "\n\n"
TEMPLATE = (
    '{{- range .Messages }}{{ .Content }}{{ if eq .Role "user" }}{{ "\\n" }}'
    '{{ else }}{{ "\\n\\n" }}{{ end }}{{ end }}'
)

# the same for llama.cpp's chat (tokenizer.chat_template, Jinja as in Hugging Face tokenizers)
CHAT_TEMPLATE = (
    "{%- for m in messages -%}{{ m['content'] }}"
    "{%- if m['role'] == 'user' -%}{{ '\\n' }}{%- else -%}{{ '\\n\\n' }}{%- endif -%}{%- endfor -%}"
)


def export_gguf(source: Source, out_dir: Path, quant: str = "f32", name: str | None = None) -> list[Path]:
    """Export a transformer baby as `NAME.gguf` and a `Modelfile` in `out_dir` (absent or empty).

    Returns the files written; SoulError (one line) for the babyllm brain, an unknown `quant` or a
    non-empty `out_dir`.
    """
    if quant not in QUANTS:
        raise SoulError(f"unknown quantization {quant!r}: choose one of {', '.join(QUANTS)}")
    name = name or (source.name if isinstance(source, BabyPaths) else "baby")
    baby = revived(source)
    model = require_transformer(baby.model, "gguf")
    return into_fresh_folder(out_dir, lambda folder: write_gguf(model, baby.tokenizer, folder, name, quant))


def write_gguf(model: Transformer, tok: Tokenizer, out_dir: Path, name: str, quant: str = "f32") -> None:
    """Write `NAME.gguf` and `Modelfile` into the folder `out_dir`."""
    model = require_transformer(model, "gguf")
    cfg = model.config
    out_dir = Path(out_dir)
    writer = gguf.GGUFWriter(out_dir / f"{name}.gguf", "llama")
    writer.add_name(name)
    writer.add_file_type(_FILE_TYPES[quant])
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_context_length(cfg.max_seq_len)
    writer.add_embedding_length(cfg.dim)
    writer.add_block_count(cfg.n_layers)
    writer.add_feed_forward_length(cfg.hidden_dim)
    writer.add_head_count(cfg.n_heads)
    writer.add_head_count_kv(cfg.n_kv_heads)
    writer.add_rope_dimension_count(cfg.head_size)
    writer.add_rope_freq_base(cfg.rope_base)
    writer.add_layer_norm_rms_eps(cfg.norm_eps)
    _add_tokenizer(writer, tok)
    for tensor_name, t in gguf_tensors(model).items():
        _add_tensor(writer, tensor_name, t.numpy(), quant)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
    finally:
        writer.close()
    (out_dir / "Modelfile").write_text(modelfile(name, cfg.max_seq_len), encoding="utf-8")


def gguf_tensors(model: Transformer) -> dict[str, torch.Tensor]:
    """The model's weights under llama.cpp's names, float32, q and k in adjacent-pair layout."""
    w = stacked_weights(model)
    out = {f"{TOP_NAMES[k]}.weight": w[k] for k in ("tok_embeddings", "norm", "output") if k in w}
    for i in range(model.config.n_layers):
        for kind in LAYER_KINDS:
            out[f"blk.{i}.{LAYER_NAMES[kind]}.weight"] = w[kind][i].contiguous()
    return out


def _add_tensor(writer: gguf.GGUFWriter, name: str, data: np.ndarray, quant: str) -> None:
    data = data.astype(np.float32, copy=False)
    if quant == "q8_0" and data.ndim == 2 and data.shape[-1] % _Q8_BLOCK == 0:
        qtype = gguf.GGMLQuantizationType.Q8_0
        writer.add_tensor(name, gguf.quants.quantize(data, qtype), raw_dtype=qtype)
    else:
        writer.add_tensor(name, data)


def gguf_vocab(tok: Tokenizer) -> tuple[list[str], list[float], list[int]]:
    """(pieces, scores, token types) of our tokenizer, id by id, as llama.cpp's SPM vocab reads them."""
    check_layout(tok)
    rank = merge_ranks(tok)
    T = gguf.TokenType
    special_types = {UNK_ID: T.UNKNOWN, BOS_ID: T.CONTROL, EOS_ID: T.CONTROL}
    pieces, scores, types = [], [], []
    for i in range(tok.get_vocab_size()):
        piece = tok.id_to_token(i)
        pieces.append(piece)
        if i < N_RESERVED:
            scores.append(NEVER_MERGED)
            types.append(int(special_types[i] if i < len(SPECIALS) else T.BYTE))
        else:
            scores.append(-float(rank[piece]) if piece in rank else 0.0)
            types.append(int(T.NORMAL))
    return pieces, scores, types


def _add_tokenizer(writer: gguf.GGUFWriter, tok: Tokenizer) -> None:
    pieces, scores, types = gguf_vocab(tok)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(pieces)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(UNK_ID)
    writer.add_bos_token_id(BOS_ID)
    writer.add_eos_token_id(EOS_ID)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_add_space_prefix(True)  # our dummy-prefix ▁
    writer.add_chat_template(CHAT_TEMPLATE)


def modelfile(name: str, context: int) -> str:
    """Ollama's Modelfile for `NAME.gguf` beside it: babyterm chat's sampling and framing."""
    s = Sampling()
    lines = [
        f"FROM ./{name}.gguf",
        f'TEMPLATE """{TEMPLATE}"""',
        f"PARAMETER temperature {s.temperature}",
        f"PARAMETER top_k {s.top_k}",
        f"PARAMETER num_ctx {context}",
        *(f"PARAMETER stop {json.dumps(stop)}" for stop in STOP),
    ]
    return "\n".join(lines) + "\n"
