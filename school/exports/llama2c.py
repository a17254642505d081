"""karpathy/llama2.c's files: `model.bin` (version 0, float32, what run.c reads) and `tokenizer.bin`.

model.bin: 7 int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len; vocab_size
is negative when the classifier is untied), then float32 tensors, each kind for all layers:
tok_embeddings, attention_norm, wq, wk, wv, wo, ffn_norm, w1, w2, w3, norm, freq_cis_real,
freq_cis_imag (seq_len, head_size/2 each) and, when untied, wcls. Our brain's adjacent-pair RoPE is
llama2.c's own, so nothing is permuted.

tokenizer.bin: uint32 max_token_length, then per token a float32 score, an int32 length and the bytes.
`▁` is written as a space, <s>/</s> as "\\n<s>\\n"/"\\n</s>\\n", and a learned piece's score is minus
the rank of the merge that makes it, so run.c's best-score-first merging replays our merges. The
reserved pieces (<unk>, <s>, </s>, <0xXX>) get -1e10, which run.c never merges into: with 0, text such
as "<0x41>" could merge into the byte token where our tokenizer keeps the characters.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tokenizers import Tokenizer

from brain.transformer import TransformerConfig, rope_tables
from school.exports.llama import (
    Stacked,
    check_stacked,
    require_transformer,
    stacked_shapes,
    stacked_weights,
    transformer_config,
)
from school.exports.source import Source, into_fresh_folder, revived
from school.tokenizer import BYTE_PIECES, N_RESERVED, SPACE, SPECIALS, assemble, check_layout, merge_ranks
from soul.paths import SoulError

HEADER = ("dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len")
HEADER_BYTES = 4 * len(HEADER)
BIN_SPECIALS = (b"<unk>", b"\n<s>\n", b"\n</s>\n")
NEVER_MERGED = -1e10  # run.c merges only pieces scoring above this
ORDER = ("tok_embeddings", "attention_norm", "wq", "wk", "wv", "wo", "ffn_norm", "w1", "w2", "w3", "norm")


# -- model.bin ----------------------------------------------------------------------------------


def write_model_bin(path: Path, cfg: TransformerConfig, w: Stacked) -> None:
    """Write `w` (stacked, see school.exports.llama) as a version-0 model.bin."""
    check_stacked(cfg, w)
    vocab = cfg.vocab_size if cfg.tie_embeddings else -cfg.vocab_size
    header = (cfg.dim, cfg.hidden_dim, cfg.n_layers, cfg.n_heads, cfg.n_kv_heads, vocab, cfg.max_seq_len)
    cos, sin = rope_tables(cfg.head_size, cfg.max_seq_len, 10000.0)
    tensors = [w[k] for k in ORDER] + [cos, sin] + ([] if cfg.tie_embeddings else [w["output"]])
    with open(path, "wb") as f:
        f.write(struct.pack("<7i", *header))
        for t in tensors:
            f.write(t.detach().float().cpu().contiguous().numpy().astype("<f4").tobytes())


def read_model_bin(path: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read a version-0 model.bin: (header, tensors by llama2.c name), float32 numpy arrays.

    The header holds the 7 fields with vocab_size made positive, plus `shared_classifier`. Untied
    files have a `wcls` tensor. Raises SoulError (one line) when the file is short, long or malformed.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(HEADER_BYTES)
    except FileNotFoundError:
        raise SoulError(f"{path} not found") from None
    except OSError as e:
        raise SoulError(f"cannot read {path}: {e.strerror or e}") from None
    if len(head) < HEADER_BYTES:
        raise SoulError(f"{path} is too short for a llama2.c model.bin ({size} bytes)")
    header: dict[str, Any] = dict(zip(HEADER, struct.unpack("<7i", head), strict=True))
    header["shared_classifier"] = header["vocab_size"] > 0
    header["vocab_size"] = abs(header["vocab_size"])
    cfg = config_from_header(header, path)
    all_shapes = stacked_shapes(cfg)
    shapes = {k: all_shapes[k] for k in ORDER}
    shapes["freq_cis_real"] = shapes["freq_cis_imag"] = (cfg.max_seq_len, cfg.head_size // 2)
    if not cfg.tie_embeddings:
        shapes["wcls"] = all_shapes["output"]
    expected = HEADER_BYTES + 4 * sum(math.prod(s) for s in shapes.values())
    if size != expected:
        raise SoulError(
            f"{path} is {size} bytes, but its header ({_describe(header)}) needs {expected}; "
            "it is not a float32 (version 0) llama2.c model.bin"
        )
    floats = np.fromfile(path, dtype="<f4", offset=HEADER_BYTES).astype(np.float32, copy=False)
    tensors, at = {}, 0
    for name, shape in shapes.items():
        n = math.prod(shape)
        tensors[name] = floats[at : at + n].reshape(shape)
        at += n
    return header, tensors


def _describe(header: dict[str, Any]) -> str:
    return ", ".join(f"{k} {header[k]}" for k in HEADER)


def config_from_header(header: dict[str, Any], path: Path | str = "model.bin") -> TransformerConfig:
    """Our brain's config for a model.bin header; SoulError when the numbers cannot be a model."""
    try:
        return transformer_config(
            vocab_size=header["vocab_size"],
            dim=header["dim"],
            n_layers=header["n_layers"],
            n_heads=header["n_heads"],
            n_kv_heads=header["n_kv_heads"],
            hidden_dim=header["hidden_dim"],
            max_seq_len=header["seq_len"],
            tie_embeddings=header["shared_classifier"],
        )
    except SoulError as e:
        raise SoulError(f"{path} has a malformed header ({_describe(header)}): {e}") from None


def stacked_from_bin(tensors: dict[str, np.ndarray]) -> Stacked:
    """read_model_bin's tensors under our stacked names (the RoPE tables are dropped)."""
    out = {k: torch.from_numpy(v) for k, v in tensors.items() if not k.startswith("freq_cis")}
    if "wcls" in out:
        out["output"] = out.pop("wcls")
    return out


# -- tokenizer.bin ------------------------------------------------------------------------------


def tokenizer_bin_pieces(tok: Tokenizer) -> tuple[list[bytes], list[float]]:
    """The pieces (as run.c reads them) and scores of our tokenizer, id by id."""
    check_layout(tok)
    rank = merge_ranks(tok)
    n = tok.get_vocab_size()
    pieces: list[bytes] = [*BIN_SPECIALS, *(p.encode() for p in BYTE_PIECES)]
    scores = [NEVER_MERGED] * N_RESERVED
    for i in range(N_RESERVED, n):
        piece = tok.id_to_token(i)
        pieces.append(piece.replace(SPACE, " ").encode("utf-8"))
        scores.append(-float(rank[piece]) if piece in rank else 0.0)
    seen: set[bytes] = set()
    for i, p in enumerate(pieces):
        # run.c looks pieces up as C strings: a NUL or a duplicate would make another id unfindable.
        # Such a piece becomes a string no text can spell (0xFF is never in UTF-8); its id stays.
        if b"\0" in p or p in seen:
            pieces[i], scores[i] = b"\xff<unreachable %d>" % i, NEVER_MERGED
        seen.add(pieces[i])
    return pieces, scores


def write_tokenizer_bin(path: Path, pieces: list[bytes], scores: list[float]) -> None:
    with open(path, "wb") as f:
        f.write(struct.pack("<I", max(len(p) for p in pieces)))
        for piece, score in zip(pieces, scores, strict=True):
            f.write(struct.pack("<fi", score, len(piece)))
            f.write(piece)


def read_tokenizer_bin(path: Path, vocab_size: int) -> tuple[list[bytes], list[float], int]:
    """(pieces, scores, max_token_length) of the first `vocab_size` tokens, as run.c reads them.

    The file does not store its size; run.c takes it from model.bin. A file too short for
    `vocab_size` tokens, or with bytes left over, raises SoulError.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SoulError(f"{path} not found (llama2.c keeps the tokenizer beside the model)") from None
    except OSError as e:
        raise SoulError(f"cannot read {path}: {e.strerror or e}") from None
    pieces, scores, at = [], [], 4
    try:
        (max_len,) = struct.unpack_from("<I", data, 0)
        for _ in range(vocab_size):
            score, n = struct.unpack_from("<fi", data, at)
            if n < 0 or at + 8 + n > len(data):
                raise struct.error("piece runs past the end")
            pieces.append(data[at + 8 : at + 8 + n])
            scores.append(score)
            at += 8 + n
    except struct.error:
        raise SoulError(f"{path} ends after {len(pieces)} of the model's {vocab_size} tokens") from None
    if at != len(data):
        raise SoulError(f"{path} has {len(data) - at} bytes after the model's {vocab_size} tokens")
    if pieces and max_len < max(len(p) for p in pieces):
        raise SoulError(f"{path}: max_token_length {max_len} is shorter than its longest piece")
    return pieces, scores, max_len


def tokenizer_from_bin(pieces: list[bytes], scores: list[float]) -> Tokenizer:
    """An equivalent `tokenizers` BPE of ours: same ids, and (up to the gaps below) run.c's encoding.

    Merges are rebuilt from the scores: every piece of two or more characters that run.c can
    merge into (score > -1e10) gets a merge for each way of cutting it into two pieces, highest
    score first. Gaps: pieces with equal scores merge leftmost-first in run.c but in merge order
    here; and a literal `▁` in the text is a space to this tokenizer.
    """
    names: list[str] = []
    for i, p in enumerate(pieces):
        if i < len(SPECIALS) and p in (BIN_SPECIALS[i], SPECIALS[i].encode()):
            names.append(SPECIALS[i])
            continue
        try:
            text = p.decode("utf-8")
        except UnicodeDecodeError:
            raise SoulError(f"tokenizer piece {i} is not UTF-8 text ({p[:20]!r})") from None
        names.append(text if i < N_RESERVED else text.replace(" ", SPACE))
    if names[:N_RESERVED] != [*SPECIALS, *BYTE_PIECES]:
        wrong = next(i for i, want in enumerate(SPECIALS + BYTE_PIECES) if names[i] != want)
        raise SoulError(
            f"tokenizer piece {wrong} is {names[wrong]!r}, expected {(SPECIALS + BYTE_PIECES)[wrong]!r}: "
            "babyterm needs <unk>, <s>, </s> and the 256 byte pieces first"
        )
    vocab = {name: i for i, name in enumerate(names)}
    if len(vocab) != len(names):
        raise SoulError("the tokenizer has two pieces with the same text")
    if SPACE not in vocab:
        raise SoulError('the tokenizer has no piece for a space (" "), which run.c needs too')
    merges: list[tuple[str, str]] = []
    ranked = sorted(range(N_RESERVED, len(names)), key=lambda i: (-scores[i], i))
    for i in ranked:
        name = names[i]
        if scores[i] <= NEVER_MERGED or len(name) < 2:
            continue
        cuts = [(name[:k], name[k:]) for k in range(1, len(name))]
        merges += [(a, b) for a, b in cuts if a in vocab and b in vocab]
    tok = assemble(vocab, merges)
    check_layout(tok)
    return tok


# -- the export ---------------------------------------------------------------------------------


def export_llama2c(source: Source, out_dir: Path) -> list[Path]:
    """Export a transformer baby as llama2.c's `model.bin` + `tokenizer.bin` in `out_dir` (absent or empty).

    Returns the files written; SoulError (one line) for the babyllm brain, a config run.c cannot
    reproduce (it hard-codes RMSNorm eps 1e-5 and RoPE base 10000) or a non-empty `out_dir`.
    """
    baby = revived(source)
    model = require_transformer(baby.model, "llama2c")
    cfg = model.config
    if cfg.norm_eps != 1e-5 or cfg.rope_base != 10000.0:
        raise SoulError(
            f"run.c fixes norm eps 1e-5 and RoPE base 10000; this baby has {cfg.norm_eps} and "
            f"{cfg.rope_base} (use --format hf)"
        )
    return into_fresh_folder(out_dir, lambda folder: write_llama2c(model, baby.tokenizer, folder))


def write_llama2c(model: torch.nn.Module, tok: Tokenizer, out_dir: Path) -> None:
    """Write `model.bin` and `tokenizer.bin` for run.c into the folder `out_dir`."""
    model = require_transformer(model, "llama2c")
    out_dir = Path(out_dir)
    write_model_bin(out_dir / "model.bin", model.config, stacked_weights(model))
    write_tokenizer_bin(out_dir / "tokenizer.bin", *tokenizer_bin_pieces(tok))
