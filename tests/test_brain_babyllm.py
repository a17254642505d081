"""The babyllm brain: shapes, causality, cached generation, learning, windows and config."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from brain import build_brain, config_from_dict, preset_config
from brain.babyllm import BabyLLM, BabyLLMConfig

torch.set_num_threads(1)

V, T = 50, 32


@pytest.fixture
def model() -> BabyLLM:
    torch.manual_seed(0)
    return BabyLLM(BabyLLMConfig(vocab_size=V, embed_dim=16, n_neurons=32, max_seq_len=T)).eval()


def test_shapes_and_pixel_range(model: BabyLLM) -> None:
    tokens = torch.randint(0, V, (3, 10))
    logits, pixel = model(tokens, torch.tensor([1.0, 0.0, 0.2]))
    assert logits.shape == (3, 10, V)
    assert pixel.shape == (3, 3)
    assert pixel.min() >= 0 and pixel.max() <= 1
    assert model(tokens)[0].shape == (3, 10, V)  # pixel=None is grey


def test_causal(model: BabyLLM) -> None:
    tokens = torch.randint(0, V, (2, T))
    changed = tokens.clone()
    changed[:, 20:] = (changed[:, 20:] + 7) % V
    a, b = model(tokens)[0], model(changed)[0]
    assert torch.allclose(a[:, :20], b[:, :20], atol=1e-6)
    assert not torch.allclose(a[:, 20:], b[:, 20:], atol=1e-3)


def test_too_long_raises(model: BabyLLM) -> None:
    with pytest.raises(ValueError):
        model(torch.zeros(1, T + 1, dtype=torch.long))
    cache = model.new_cache()
    model.step(torch.zeros(1, T, dtype=torch.long), cache)
    with pytest.raises(ValueError):
        model.step(torch.zeros(1, 1, dtype=torch.long), cache)


@pytest.mark.parametrize("prefill", [1, 9])
def test_step_matches_forward(model: BabyLLM, prefill: int) -> None:
    # Nudge every weight so decays, gates and windows are off their round initial values.
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    tokens = torch.randint(0, V, (2, 24))
    pixel = torch.tensor([0.9, 0.1, 0.3])
    full, _ = model(tokens, pixel)
    cache = model.new_cache(2)
    pieces = [model.step(tokens[:, :prefill], cache, pixel)[0]]
    pieces += [model.step(tokens[:, i : i + 1], cache, pixel)[0] for i in range(prefill, 24)]
    assert cache.pos == 24
    torch.testing.assert_close(torch.cat(pieces, 1), full, atol=1e-5, rtol=1e-5)


def test_step_diagnostics(model: BabyLLM) -> None:
    cache = model.new_cache(2)
    _, _, info = model.step(torch.randint(0, V, (2, 5)), cache, need_weights=True)
    assert info["window_sizes"].shape == (6,)
    assert info["window_weights"].shape == (6,)
    assert info["blend"].shape == (3,)
    assert torch.allclose(info["blend"].sum(), torch.tensor(1.0))
    assert [g.shape for g in info["gates"]] == [(2, 5), (2, 5)]
    assert all(((g > 0) & (g < 1)).all() for g in info["gates"])


def test_loss_falls_on_repeated_text() -> None:
    torch.manual_seed(0)
    model = BabyLLM(BabyLLMConfig(vocab_size=V, embed_dim=16, n_neurons=32, max_seq_len=T))
    data = torch.randperm(V)[:20].repeat(12)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        idx = torch.randint(0, len(data) - T - 1, (8,)).tolist()
        x = torch.stack([data[i : i + T] for i in idx])
        y = torch.stack([data[i + 1 : i + T + 1] for i in idx])
        loss = F.cross_entropy(model(x)[0].flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_windows_learn_and_stay_in_range(model: BabyLLM) -> None:
    logits, _ = model(torch.randint(0, V, (2, T)))
    F.cross_entropy(logits.flatten(0, 1), torch.randint(0, V, (2 * T,))).backward()
    grad = model.interneurons.raw_sizes.grad
    assert grad is not None and (grad != 0).all()
    with torch.no_grad():
        model.interneurons.raw_sizes.copy_(torch.tensor([-30.0, 0.0, 1.0, 2.0, 5.0, 30.0]))
    sizes = model.window_sizes()
    assert sizes.min() >= 1 and sizes.max() <= T
    assert model(torch.randint(0, V, (1, T)))[0].isfinite().all()


def test_config_round_trip_and_build() -> None:
    cfg = BabyLLMConfig(vocab_size=V, embed_dim=16, n_neurons=32, max_seq_len=T, windows=(1, 3.5, 12))
    back = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert back == cfg and isinstance(back, BabyLLMConfig)
    assert isinstance(build_brain(back), BabyLLM)
    with pytest.raises(ValueError):
        BabyLLMConfig(windows=(0.5, 2))
    tiny = preset_config("babyllm", "tiny", 4200)
    assert (tiny.embed_dim, tiny.n_neurons, tiny.vocab_size) == (128, 512, 4200)


def test_original_preset_constructs() -> None:
    cfg = preset_config("babyllm", "original", 4200)
    model = build_brain(cfg)
    # embeddings + neurons + logit layer dominate: about 57M parameters
    assert 50_000_000 < model.num_params() < 65_000_000
    assert model.window_sizes().shape == (len(cfg.windows),)
