"""The x-ray engine: its numbers are the model's own (ids, logits, top-k, softmax rows) for every brain."""

from __future__ import annotations

import json
import math

import pytest
import torch

from brain import BRAIN_NAMES, build_brain, preset_config
from school.tokenizer import N_RESERVED, encode_prompt, train_tokenizer
from school.xray import SENTENCES, STAGES, xray
from school.xray.rungs import _window_means, babyllm

TINY = {
    "mlp": dict(window=4, embed_dim=16, hidden_dim=48, max_seq_len=48),
    "attention": dict(dim=32, max_seq_len=48),
    "transformer": dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=48),
    "babyllm": dict(embed_dim=16, n_neurons=32, max_seq_len=48),
}
TEXT = "To be, or not to be: that is the question. Café ☃"


@pytest.fixture(scope="module")
def tokenizer(shakespeare_text):
    return train_tokenizer([shakespeare_text[:20_000]], vocab_size=320)


def bold(brain: str, vocab: int):
    """A tiny brain with weights far from init, so a wrong replay shows in every number."""
    torch.manual_seed(3)
    model = build_brain(preset_config(brain, "tiny", vocab, **TINY[brain]))
    gen = torch.Generator().manual_seed(7)
    with torch.no_grad():
        for p in model.parameters():
            scale = 0.3 if p.dim() >= 2 else 0.5
            p.copy_(torch.randn(p.shape, generator=gen) * scale + (0.0 if p.dim() >= 2 else 0.5))
    return model.eval()


def test_every_brain_has_stages_with_sentences():
    assert set(STAGES) == set(BRAIN_NAMES)
    for stages in STAGES.values():
        assert stages[0] == "tokens" and stages[-1] == "learning"
        assert all(SENTENCES[s].endswith(".") for s in stages)


@pytest.mark.parametrize("brain", BRAIN_NAMES)
def test_numbers_are_the_models_own(brain, tokenizer):
    model = bold(brain, tokenizer.get_vocab_size())
    shot = xray(model, tokenizer, TEXT, top_k=5)
    ids = encode_prompt(tokenizer, TEXT)
    assert [t.id for t in shot.tokens] == ids
    assert any(t.byte_fallback for t in shot.tokens)  # ☃ is not in a 320-piece vocabulary
    assert all(t.byte_fallback == (3 <= t.id < N_RESERVED) for t in shot.tokens)
    with torch.no_grad():
        logits, _ = model(torch.tensor([ids]))
    probs = logits[0].softmax(-1)
    for n, view in enumerate(shot.logits):
        want = probs[n].topk(5)
        assert [g.id for g in view.top] == want.indices.tolist()
        assert [g.prob for g in view.top] == pytest.approx(want.values.tolist(), abs=1e-5)
        if n + 1 < len(ids):
            p = float(probs[n, ids[n + 1]])
            assert view.true_id == ids[n + 1] and view.true_prob == pytest.approx(p, abs=1e-5)
            assert view.surprise_bits == pytest.approx(-math.log2(p), rel=1e-4)
        else:
            assert view.true_id is None
    E = model.tok_embeddings.weight.detach()
    first = shot.embeddings[1]
    assert first.norm == pytest.approx(float(E[ids[1]].norm()), rel=1e-5)
    cos = torch.nn.functional.cosine_similarity(E[ids[1]][None], E, dim=-1)
    cos[ids[1]] = -2
    assert [nb.id for nb in first.nearest] == cos.topk(5).indices.tolist()
    json.dumps(shot.to_dict())  # JSON-ready all the way down


@pytest.mark.parametrize("brain", ["transformer", "attention"])
def test_attention_rows(brain, tokenizer):
    model = bold(brain, tokenizer.get_vocab_size())
    shot = xray(model, tokenizer, TEXT)
    T = len(shot.tokens)
    heads = model.config.n_heads if brain == "transformer" else 1
    assert len(shot.layers) == getattr(model.config, "n_layers", 1)
    for layer in shot.layers:
        assert len(layer.heads) == heads and len(layer.residual_norm) == T
        for head in layer.heads:
            for q in range(T):
                assert sum(head.weights[q]) == pytest.approx(1.0, abs=1e-4)
                assert all(head.masked(q, k) == (k > q) for k in range(T))
                assert all(head.weights[q][k] == 0 for k in range(q + 1, T))
            # softmax of the visible raw scores is the weight row
            row = torch.tensor(head.scores[T - 1])
            assert torch.allclose(row.softmax(-1), torch.tensor(head.weights[T - 1]), atol=1e-4)
    if brain == "transformer":
        angles = torch.tensor(shot.position.angles)
        assert torch.allclose(torch.polar(torch.ones_like(angles), angles), model.rope[:T, 0], atol=1e-4)
        h = shot.layers[0].heads[0]  # rotation keeps a query's length and turns it by the angles
        before, after = torch.tensor(h.query), torch.tensor(h.query_rotated)
        assert torch.allclose(before.norm(dim=-1), after.norm(dim=-1), rtol=1e-3)
        assert torch.allclose(before[0], after[0], atol=1e-4) and not torch.allclose(before[5], after[5])
    else:
        assert shot.position.kind == "learned"
        assert shot.position.norms[0] == pytest.approx(
            float(model.pos_embeddings.weight[0].detach().norm()), rel=1e-4
        )


def test_mlp_window(tokenizer):
    model = bold("mlp", tokenizer.get_vocab_size())
    shot = xray(model, tokenizer, TEXT)
    W = model.config.window
    assert shot.window.size == W and shot.position is None and shot.layers == []
    assert shot.window.reads[0] == [0] and shot.window.reads[W + 2] == list(range(3, W + 3))
    # a padding slot holds zeros, so it pushes nothing
    assert shot.window.slot_norm[0][: W - 1] == [0.0] * (W - 1) and shot.window.slot_norm[0][-1] > 0
    assert all(0 <= s <= 1 for s in shot.hidden.saturated)


def test_babyllm_views(tokenizer):
    model = bold("babyllm", tokenizer.get_vocab_size())
    ids = torch.tensor([encode_prompt(tokenizer, TEXT)])
    _, view, _, means, u1 = babyllm(model, ids, None)
    mix = model.interneurons.mix.softmax(0)
    # the unmixed windows, mixed as the brain mixes them, are the brain's own window output
    assert torch.allclose((mix[:, None, None] * means).sum(0), u1[0], atol=1e-4)
    assert len(view.gates) == 2 and all(0 < g < 1 for g in view.gates[0])
    assert sum(view.blend) == pytest.approx(1.0)
    S = torch.nn.functional.pad(torch.ones(1, 3, 1).cumsum(1), (0, 0, 1, 0))
    assert torch.allclose(_window_means(S, torch.tensor([2.0])), torch.ones(1, 3, 1))  # a mean of ones


def test_learning_passes_through(tokenizer):
    model = bold("transformer", tokenizer.get_vocab_size())
    shot = xray(model, tokenizer, "hello", learning={"step": 40, "updates": {"layer 0": 0.01}})
    assert shot.learning.step == 40 and shot.learning.updates == {"layer 0": 0.01}
    with pytest.raises(ValueError):
        xray(model, tokenizer, "", bos=False)
