"""The transformer brain: shapes, causality, cache, and the exact Llama conventions exports rely on."""

from __future__ import annotations

import copy
import json
import math
import threading

import pytest
import torch
import torch.nn.functional as F

from brain import build_brain, config_from_dict, preset_config
from brain.transformer import RMSNorm, Transformer, apply_rope, rope_tables

torch.set_num_threads(1)


def tiny(**kw) -> Transformer:
    torch.manual_seed(0)
    cfg = preset_config("transformer", "tiny", 97, dim=32, n_layers=2, n_heads=4, max_seq_len=24, **kw)
    return build_brain(cfg)


def learned(m: Transformer) -> Transformer:
    """Weights as training leaves them: norms away from 1 and a pixel input with a say (a newborn's
    ones and zeros would hide a norm folded wrongly into the matrices after it)."""
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return m


def test_shapes_and_pixel_range() -> None:
    m = tiny()
    logits, pixel = m(torch.randint(0, 97, (3, 10)), torch.rand(3))
    assert logits.shape == (3, 10, 97) and pixel.shape == (3, 3)
    assert ((pixel >= 0) & (pixel <= 1)).all()


@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
def test_causal_and_cache_equals_forward(n_kv_heads: int) -> None:
    m = learned(tiny(n_kv_heads=n_kv_heads))
    x, pixel = torch.randint(0, 97, (2, 20)), torch.tensor([0.9, 0.2, 0.4])
    full, _ = m(x, pixel)
    changed = x.clone()
    changed[:, 12] = (changed[:, 12] + 1) % 97
    later, _ = m(changed, pixel)
    assert torch.equal(full[:, :12], later[:, :12])
    assert not torch.allclose(full[:, 12:], later[:, 12:])
    cache = m.new_cache(2)
    prefill, _ = m.step(x[:, :9], cache, pixel)
    rest = [m.step(x[:, i : i + 1], cache, pixel)[0] for i in range(9, 20)]
    torch.testing.assert_close(torch.cat([prefill, *rest], 1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("n_kv_heads", [4, 1])
def test_the_lean_one_token_path_matches_the_general_one(n_kv_heads: int) -> None:
    """Decoding without insight takes fewer ops (views, the cache written in place); with
    attention weights wanted it takes attend(): the logits must not care which."""
    m = learned(tiny(n_kv_heads=n_kv_heads))
    x = torch.randint(0, 97, (2, 14))
    lean, general = m.new_cache(2), m.new_cache(2)
    m.step(x[:, :5], lean), m.step(x[:, :5], general)
    for i in range(5, 14):
        a = m.step(x[:, i : i + 1], lean)[0]
        b, _, weights = m.step(x[:, i : i + 1], general, need_weights=True)
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
        assert weights[0].shape == (2, 4, 1, i + 1)
    for layer in range(len(lean.k)):
        torch.testing.assert_close(lean.k[layer], general.k[layer], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(lean.v[layer], general.v[layer])


def test_window_longer_than_max_seq_len_is_refused() -> None:
    with pytest.raises(ValueError, match="max_seq_len"):
        tiny()(torch.zeros(1, 25, dtype=torch.long))


def test_rmsnorm_is_llama_formula() -> None:
    norm = RMSNorm(8, 1e-5)
    norm.weight.data = torch.rand(8)
    x = torch.randn(4, 8)
    expected = norm.weight * (x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5))
    torch.testing.assert_close(norm(x), expected)


def test_rope_rotates_adjacent_pairs_with_base_10000() -> None:
    hs, T = 8, 5
    cos, sin = rope_tables(hs, T, 10000.0)
    x = torch.randn(1, T, 1, hs)
    out = apply_rope(x, torch.complex(cos, sin).unsqueeze(1))
    # the real (cos, sin) tables torch.compile is given rotate the same
    torch.testing.assert_close(apply_rope(x, torch.stack((cos, sin), -1).unsqueeze(1)), out)
    for pos in range(T):
        for j in range(hs // 2):
            angle = pos * 10000.0 ** (-2 * j / hs)
            x0, x1 = x[0, pos, 0, 2 * j], x[0, pos, 0, 2 * j + 1]
            torch.testing.assert_close(out[0, pos, 0, 2 * j], x0 * math.cos(angle) - x1 * math.sin(angle))
            torch.testing.assert_close(out[0, pos, 0, 2 * j + 1], x0 * math.sin(angle) + x1 * math.cos(angle))


def test_attention_weights_are_distributions_and_match_sdpa() -> None:
    m = tiny()
    x = torch.randint(0, 97, (1, 12))
    logits, _, weights = m.step(x, m.new_cache(1), need_weights=True)
    torch.testing.assert_close(logits, m(x)[0], atol=1e-5, rtol=1e-5)
    for w in weights:
        torch.testing.assert_close(w.sum(-1), torch.ones_like(w.sum(-1)))
        assert torch.equal(w.triu(1), torch.zeros_like(w))  # nothing from the future


def test_tied_and_untied_heads() -> None:
    tied = tiny()
    assert tied.output.weight.data_ptr() == tied.tok_embeddings.weight.data_ptr()
    untied = tiny(tie_embeddings=False)
    assert untied.output.weight.data_ptr() != untied.tok_embeddings.weight.data_ptr()
    assert untied.num_params() == tied.num_params() + 97 * 32


def test_grey_pixel_is_no_pixel() -> None:
    m = tiny()
    torch.nn.init.normal_(m.pixel_in.weight)
    x = torch.randint(0, 97, (2, 6))
    assert torch.equal(m(x)[0], m(x, torch.full((3,), 0.5))[0])
    assert not torch.allclose(m(x)[0], m(x, torch.ones(3))[0])


def test_loss_falls_on_a_repeated_pattern() -> None:
    m = tiny()
    opt = torch.optim.AdamW(m.parameters(), lr=3e-3)
    pattern = torch.arange(20).repeat(3)[None, :25]
    losses = []
    for _ in range(40):
        logits, _ = m(pattern[:, :-1])
        loss = F.cross_entropy(logits.flatten(0, 1), pattern[:, 1:].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_config_round_trips_through_json() -> None:
    cfg = tiny(n_kv_heads=2).config
    again = config_from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert build_brain(again).num_params() == tiny(n_kv_heads=2).num_params()


def test_one_token_steps_match_the_window_forward() -> None:
    m = tiny(n_kv_heads=2)
    x = torch.randint(0, 97, (1, 9))
    cache = m.new_cache(1)
    m.step(x[:, :4], cache)
    steps = [m.step(x[:, i : i + 1], cache)[0] for i in range(4, 9)]  # the one-token decode path
    torch.testing.assert_close(torch.cat(steps, dim=1), m(x)[0][:, 4:], atol=1e-5, rtol=1e-5)


def test_training_pauses_between_layers_forward_and_backward_and_leaves_gradients_alone() -> None:
    """`pause` (the tutor answering a chat) runs after each layer in the forward and again when
    the backward reaches it, never outside training, and changes no gradient."""
    m = learned(tiny())  # two layers
    x, y = torch.randint(0, 97, (2, 12)), torch.randint(0, 97, (2, 12))
    m(x, None, y)[0].backward()
    alone = [p.grad for p in m.parameters()]  # the pixel head's None: no pixel loss here
    m.zero_grad(set_to_none=True)
    calls: list[bool] = []
    m.pause = lambda: calls.append(torch.is_grad_enabled())
    loss = m(x, None, y)[0]
    assert len(calls) == 2
    loss.backward()
    assert len(calls) == 4
    assert all(
        (p.grad is None and g is None) or torch.equal(p.grad, g)
        for p, g in zip(m.parameters(), alone, strict=True)
    )
    assert sum(g is not None for g in alone) > 10
    with torch.no_grad():
        m(x)
    m.step(x, m.new_cache(2))
    assert len(calls) == 4


def test_a_deep_copy_keeps_the_weights_and_leaves_the_tutors_pause_behind() -> None:
    """`pause` is the tutor's (locks, queues): a copy of the brain must not copy it, or fail on
    it, and must not call back into the tutor that trains the original."""
    m = learned(tiny())

    class Tutorish:
        def __init__(self) -> None:
            self.lock = threading.Lock()  # what made copying fail: locks cannot be copied

        def serve(self) -> None:
            pass

    m.pause = Tutorish().serve
    clone = copy.deepcopy(m)
    assert clone.pause is None and m.pause is not None
    assert all(
        torch.equal(a, b) and a.data_ptr() != b.data_ptr()
        for a, b in zip(m.state_dict().values(), clone.state_dict().values(), strict=True)
    )
    x = torch.randint(0, 97, (1, 8))
    with torch.no_grad():
        assert torch.equal(m(x)[0], clone(x)[0])
