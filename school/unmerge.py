"""BPE-dropout on text already encoded: some tokens are read as the two pieces their merge joined.

A small library is read dozens of times in a run, always cut into the same tokens, and a baby
learns those exact sequences by heart. BPE-dropout (Provilkov et al., 2020) cuts each reading a
little differently, by skipping merges at random while encoding, so the baby sees the same text
in several spellings and must learn the text rather than one spelling of it. Held-out text, chat and
the exports keep the one canonical cut.

Here the corpus is encoded once, so the dropout acts on the ids: a token is replaced, with
probability `p`, by the pair its merge joined (`▁the` → `▁th` `e`), and each piece may be split again
in a second pass. Both pieces are tokens of the vocabulary whose text is exactly the token's, so
every row still spells the same text. All randomness comes from the batch generator, so a run at a
fixed seed draws the same rows (the tokenizers library's own dropout has a generator of its own).
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer

from school.tokenizer import merges

LEVELS = 2
"""Passes of splitting: a token can come apart into up to four pieces, as skipped merges at two
levels would leave it."""


def merge_parents(tok: Tokenizer) -> np.ndarray:
    """(V, 2) int64: the two tokens whose merge made each token, or -1 for one no merge made.

    Where several merges spell the same token, the earliest (the one BPE applies first) wins.
    """
    vocab = tok.get_vocab()
    parents = np.full((tok.get_vocab_size(), 2), -1, np.int64)
    for left, right in merges(tok):
        merged = vocab.get(left + right)
        if merged is not None and parents[merged, 0] < 0 and left in vocab and right in vocab:
            parents[merged] = vocab[left], vocab[right]
    return parents


def unmerge(rows: np.ndarray, parents: np.ndarray, p: float, generator: torch.Generator) -> np.ndarray:
    """`rows` (B, n) with each token split into its merge's pair with probability `p`, LEVELS times,
    each row cut back to n tokens (the split ones spell the same text, so the cut drops only text
    past the row's end). Draws LEVELS × B × n numbers from `generator` whatever `p` is."""
    B, n = rows.shape
    for _ in range(LEVELS):
        flat = rows.ravel()
        split = (torch.rand(B * n, generator=generator).numpy() < p) & (parents[flat, 0] >= 0)
        counts = 1 + split  # tokens each position becomes
        at = np.cumsum(counts) - counts  # where each position's first piece lands
        out = np.repeat(flat, counts)
        out[at[split]], out[at[split] + 1] = parents[flat[split]].T
        rows = out[at[::n, None] + np.arange(n)]  # each row is at least n long: splits only add
    return rows
