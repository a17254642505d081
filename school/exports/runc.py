"""llama2.c's run.c, step for step in numpy float32: how it encodes a prompt, runs the model, prints.

A second implementation of the same model, written from run.c and not from our brain, so that an
export that reads back identically and generates identically here is what run.c would run.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import numpy as np

BOS = 1
# what sscanf(piece, "<0x%02hhX>") == 1 accepts: "<0x", maybe blanks, then 2 characters of hex number
_BYTE_PIECE = re.compile(rb"<0x[ \t\n\v\f\r]*([+-][0-9A-Fa-f]|[0-9A-Fa-f]{1,2})")


def runc_encode(text: str | bytes, pieces: list[bytes], scores: list[float]) -> list[int]:
    """run.c's `encode(text, bos=1, eos=0)`: BOS, then the BPE ids of `text`.

    A " " dummy prefix goes in front of non-empty text; each UTF-8 codepoint (at most 4 bytes) is
    looked up as a piece, else its bytes become ids byte+3; then the adjacent pair whose
    concatenation is the highest-scoring piece (above -1e10, leftmost on ties) merges until none does.
    """
    data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
    data = data.split(b"\0", 1)[0]  # a C string ends at its first NUL
    lookup: dict[bytes, int] = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p.split(b"\0", 1)[0], i)  # strcmp sees a piece up to its first NUL
    tokens = [BOS]
    if data:
        if b" " not in lookup:
            raise ValueError('no " " piece: run.c would read out of bounds here')
        tokens.append(lookup[b" "])
    for cp in _codepoints(data):
        if cp in lookup:
            tokens.append(lookup[cp])
        else:
            tokens.extend(b + 3 for b in cp)
    ids = tokens[1:]
    while True:
        best, best_id, best_at = -1e10, -1, -1
        for i in range(len(ids) - 1):
            j = lookup.get(pieces[ids[i]] + pieces[ids[i + 1]], -1)
            if j != -1 and scores[j] > best:
                best, best_id, best_at = scores[j], j, i
        if best_at == -1:
            return [BOS, *ids]
        ids[best_at : best_at + 2] = [best_id]


def _codepoints(data: bytes) -> list[bytes]:
    """run.c's split: a lead byte starts a codepoint; at most 4 bytes (stray continuations stand alone)."""
    out: list[bytes] = []
    buf = b""
    for i, c in enumerate(data):
        if c & 0xC0 != 0x80:
            buf = b""
        buf += bytes([c])
        nxt = data[i + 1] if i + 1 < len(data) else 0
        if nxt & 0xC0 == 0x80 and len(buf) < 4:
            continue
        out.append(buf)
        buf = b""
    return out


def runc_decode_piece(prev: int, token: int, pieces: list[bytes]) -> bytes:
    """What run.c prints for `token` after `prev`: its piece, less a leading space after BOS; a
    "<0xXX>" piece as that raw byte; nothing for a lone byte that is neither printable nor space."""
    piece = pieces[token].split(b"\0", 1)[0]
    if prev == BOS and piece[:1] == b" ":
        piece = piece[1:]
    m = _BYTE_PIECE.match(piece)
    if m:
        piece = bytes([int(m.group(1), 16) & 0xFF])
    if len(piece) == 1 and not (0x20 <= piece[0] <= 0x7E or piece[0] in b" \t\n\v\f\r"):
        return b""  # C locale isprint/isspace
    return piece


def runc_text(ids: list[int], pieces: list[bytes]) -> bytes:
    """Everything run.c prints for a run whose tokens were `ids` (BOS first), without the final "\\n"."""
    return b"".join(runc_decode_piece(a, b, pieces) for a, b in itertools.pairwise(ids))


class RunState:
    """run.c's forward pass with its key/value cache, one position at a time."""

    def __init__(self, header: dict[str, Any], w: dict[str, np.ndarray]) -> None:
        self.p, self.w = header, w
        L, S, D = header["n_layers"], header["seq_len"], header["dim"]
        self.kv_dim = D * header["n_kv_heads"] // header["n_heads"]
        self.key_cache = np.zeros((L, S, self.kv_dim), np.float32)
        self.value_cache = np.zeros((L, S, self.kv_dim), np.float32)

    def forward(self, token: int, pos: int) -> np.ndarray:
        p, w = self.p, self.w
        D, nh, hs = p["dim"], p["n_heads"], p["dim"] // p["n_heads"]
        kv_mul = p["n_heads"] // p["n_kv_heads"]
        x = w["tok_embeddings"][token].copy()
        # RoPE as run.c computes it (its freq_cis tables are only skipped over)
        head_dim = (np.arange(0, D, 2) % hs).astype(np.float32)
        val = np.float32(pos) * (np.float32(1.0) / np.power(np.float32(10000.0), head_dim / np.float32(hs)))
        fcr, fci = np.cos(val).astype(np.float32), np.sin(val).astype(np.float32)
        for layer in range(p["n_layers"]):
            xb = _rmsnorm(x, w["attention_norm"][layer])
            q = w["wq"][layer] @ xb
            k = w["wk"][layer] @ xb
            v = w["wv"][layer] @ xb
            q = _rotate(q, fcr, fci)
            k = _rotate(k, fcr[: self.kv_dim // 2], fci[: self.kv_dim // 2])
            self.key_cache[layer, pos], self.value_cache[layer, pos] = k, v
            out = np.empty(D, np.float32)
            for h in range(nh):
                kv = (h // kv_mul) * hs
                keys = self.key_cache[layer, : pos + 1, kv : kv + hs]
                att = keys @ q[h * hs : (h + 1) * hs] / np.sqrt(np.float32(hs))
                att = np.exp(att - att.max())
                att /= att.sum()
                out[h * hs : (h + 1) * hs] = att @ self.value_cache[layer, : pos + 1, kv : kv + hs]
            x = x + w["wo"][layer] @ out
            xb = _rmsnorm(x, w["ffn_norm"][layer])
            hb = w["w1"][layer] @ xb
            hb = hb * (np.float32(1.0) / (np.float32(1.0) + np.exp(-hb))) * (w["w3"][layer] @ xb)
            x = x + w["w2"][layer] @ hb
        x = _rmsnorm(x, w["norm"])
        return w.get("wcls", w["tok_embeddings"]) @ x


def _rmsnorm(x: np.ndarray, weight: np.ndarray) -> np.ndarray:
    ss = np.float32(1.0) / np.sqrt(np.mean(x * x, dtype=np.float32) + np.float32(1e-5))
    return weight * (ss * x)


def _rotate(v: np.ndarray, fcr: np.ndarray, fci: np.ndarray) -> np.ndarray:
    v0, v1 = v[0::2], v[1::2]
    out = np.empty_like(v)
    out[0::2], out[1::2] = v0 * fcr - v1 * fci, v0 * fci + v1 * fcr
    return out


def runc_generate_greedy(
    w: dict[str, np.ndarray], header: dict[str, Any], prompt: list[int], steps: int
) -> tuple[list[int], list[np.ndarray]]:
    """run.c's loop at -t 0: (every token, BOS and prompt included; the logits at each position).

    `prompt` is run.c's encoding (BOS first). Prompt tokens are forced; after them the first
    maximum wins; the run stops at a BOS or after `steps` positions (0 or > seq_len: seq_len).
    """
    if steps <= 0 or steps > header["seq_len"]:
        steps = header["seq_len"]
    state = RunState(header, w)
    tokens, logits_seen = [prompt[0]], []
    for pos in range(steps):
        logits = state.forward(tokens[-1], pos)
        logits_seen.append(logits)
        nxt = prompt[pos + 1] if pos < len(prompt) - 1 else int(np.argmax(logits))
        if nxt == BOS:
            break
        tokens.append(nxt)
    return tokens, logits_seen
