"""Stages every brain shares: tokens, embeddings, logits, and the small summaries the others use."""

from __future__ import annotations

import math

import torch
from tokenizers import Tokenizer

from school.text_stream import piece_bytes
from school.tokenizer import N_RESERVED, SPECIALS, decode
from school.xray.views import EmbeddingView, Guess, LogitView, MLPView, Neighbour, TokenView

NEAREST = 5
DECIMALS = 5  # JSON carries this many decimals: plenty to read, a third of the text


def rows(t: torch.Tensor) -> list:
    """A tensor as nested lists of floats rounded to DECIMALS."""
    return torch.round(t.detach().float(), decimals=DECIMALS).tolist()


def piece_text(tok: Tokenizer, i: int) -> str:
    return decode(tok, [i], continuation=True) if i >= len(SPECIALS) else (tok.id_to_token(i) or "")


def token_views(tok: Tokenizer, ids: list[int], table: list[bytes]) -> list[TokenView]:
    return [
        TokenView(n, i, piece_text(tok, i), list(table[i]), len(SPECIALS) <= i < N_RESERVED)
        for n, i in enumerate(ids)
    ]


def embedding_views(tok: Tokenizer, ids: list[int], table: torch.Tensor) -> list[EmbeddingView]:
    """Each token's row of `table` (V, C), its norm and its nearest other rows by cosine."""
    E = table.detach().float()
    unit = E / E.norm(dim=-1, keepdim=True).clamp(min=1e-12)
    idx = torch.tensor(ids, dtype=torch.long, device=E.device)
    cos = unit[idx] @ unit.T  # (T, V)
    cos[torch.arange(len(ids), device=E.device), idx] = -2.0  # a token is not its own neighbour
    best = cos.topk(min(NEAREST, E.size(0) - 1), dim=-1)
    values, norms = rows(E[idx]), E[idx].norm(dim=-1).tolist()
    out = []
    for n in range(len(ids)):
        near = [
            Neighbour(j, piece_text(tok, j), round(c, DECIMALS))
            for j, c in zip(best.indices[n].tolist(), best.values[n].tolist(), strict=True)
        ]
        out.append(EmbeddingView(n, values[n], norms[n], near))
    return out


def logit_views(tok: Tokenizer, ids: list[int], logits: torch.Tensor, top_k: int) -> list[LogitView]:
    """logits (T, V) -> per position the top-k next pieces, and the true next one's chance."""
    probs = logits.detach().float().softmax(-1)
    top = probs.topk(min(top_k, probs.size(-1)), dim=-1)
    nxt = torch.tensor(ids[1:], dtype=torch.long, device=probs.device)
    true_p = probs[torch.arange(len(ids) - 1, device=probs.device), nxt].tolist() if len(ids) > 1 else []
    out = []
    for n in range(len(ids)):
        guesses = [
            Guess(j, piece_text(tok, j), p)
            for j, p in zip(top.indices[n].tolist(), top.values[n].tolist(), strict=True)
        ]
        if n + 1 < len(ids):
            p = true_p[n]
            out.append(LogitView(n, guesses, ids[n + 1], p, -math.log2(max(p, 1e-45))))
        else:
            out.append(LogitView(n, guesses, None, None, None))
    return out


def activation_view(act: torch.Tensor, threshold: float = 0.0, tanh: bool = False) -> MLPView:
    """act (T, H) -> per position mean |a|, share above `threshold`, its top three neurons."""
    a = act.detach().float()
    mag = a.abs()
    return MLPView(
        mean_abs=mag.mean(-1).tolist(),
        active=(mag > threshold if tanh else a > threshold).float().mean(-1).tolist(),
        top=mag.topk(min(3, a.size(-1)), dim=-1).indices.tolist(),
        saturated=(mag > 0.97).float().mean(-1).tolist() if tanh else [],
    )


def bytes_table(tok: Tokenizer) -> list[bytes]:
    return piece_bytes(tok)
