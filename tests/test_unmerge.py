"""BPE-dropout on encoded rows: every split row spells the text it was cut from, drawn reproducibly."""

from __future__ import annotations

from pydoc_data.topics import topics

import numpy as np
import pytest
import torch

from school import tokenizer as T
from school.unmerge import merge_parents, unmerge

TEXT = "\n\n".join(topics[k] for k in sorted(topics)[:8])[:8000]


@pytest.fixture(scope="module")
def tok():
    return T.train_tokenizer([TEXT], vocab_size=600)


@pytest.fixture(scope="module")
def rows(tok):
    ids = np.asarray(T.encode(tok, TEXT), np.int64)
    n = 64
    return ids[: (len(ids) // n) * n].reshape(-1, n)[:16]


def test_parents_spell_the_token(tok):
    parents = merge_parents(tok)
    merged = np.flatnonzero(parents[:, 0] >= 0)
    assert len(merged) > 200  # every learned piece past the alphabet came from a merge
    for t in merged:
        left, right = (tok.id_to_token(int(i)) for i in parents[t])
        assert left + right == tok.id_to_token(int(t))
    assert (parents[: T.N_RESERVED] == -1).all()  # specials and bytes are no merge's


def test_split_rows_spell_a_prefix_of_the_same_text(tok, rows):
    parents = merge_parents(tok)
    split = unmerge(rows, parents, 0.3, torch.Generator().manual_seed(0))
    assert split.shape == rows.shape
    assert (split != rows).any()
    pieces = lambda ids: "".join(tok.id_to_token(int(i)) for i in ids)  # noqa: E731
    for before, after in zip(rows, split, strict=True):
        assert pieces(before).startswith(pieces(after))
        assert len(pieces(after)) < len(pieces(before))  # the pieces pushed past the end


def test_a_token_comes_apart_at_two_levels(tok, rows):
    parents = merge_parents(tok)
    split = unmerge(rows, parents, 1.0, torch.Generator().manual_seed(0))
    for row, out in zip(rows, split, strict=True):
        left = parents[row[0], 0] if parents[row[0], 0] >= 0 else row[0]
        deeper = parents[left, 0] if parents[left, 0] >= 0 else left
        assert out[0] == deeper


def test_no_dropout_leaves_rows_as_they_are_and_draws_repeat(tok, rows):
    parents = merge_parents(tok)
    assert (unmerge(rows, parents, 0.0, torch.Generator().manual_seed(0)) == rows).all()
    a = unmerge(rows, parents, 0.2, torch.Generator().manual_seed(5))
    b = unmerge(rows, parents, 0.2, torch.Generator().manual_seed(5))
    c = unmerge(rows, parents, 0.2, torch.Generator().manual_seed(6))
    assert (a == b).all() and (a != c).any()


def test_share_of_split_tokens_follows_p(tok, rows):
    parents = merge_parents(tok)
    split = unmerge(rows, parents, 0.1, torch.Generator().manual_seed(1))
    changed = (split != rows).mean()  # a split shifts every later position of its row
    first = np.argmax(split != rows, axis=1)
    assert 0 < changed < 1
    assert 2 < np.median(first) < 30  # ~1 in 10 mergeable tokens splits: the first lands early
