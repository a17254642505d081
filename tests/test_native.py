"""The C one-token step (brain/native.py): the same numbers as torch's, and torch's where it can't be."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from brain import build_brain, native, preset_config
from brain.generate import Sampling, generate
from brain.transformer import Transformer

torch.set_num_threads(1)

needs_kernel = pytest.mark.skipif(native.c_compiler() is None, reason="no C compiler to build the step with")


def learned(n_kv_heads: int = 4, vocab: int = 97) -> Transformer:
    torch.manual_seed(0)
    cfg = preset_config(
        "transformer", "tiny", vocab, dim=32, n_layers=2, n_heads=4, n_kv_heads=n_kv_heads, max_seq_len=24
    )
    m = build_brain(cfg).eval()
    with torch.no_grad():  # norms away from 1 and a pixel input with a say, as training leaves them
        for p in m.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return m


def decode_all(m: Transformer, x: torch.Tensor, use_native: bool, **kw) -> list[tuple]:
    """Prefill 5 tokens, then step one token at a time to the end of x (1, T)."""
    cache = m.new_cache(1)
    if not use_native:
        cache.native = False
    m.step(x[:, :5], cache, kw.get("pixel"))
    outs = []
    for i in range(5, x.size(1)):
        bias = kw["bias"][: i + 1] if "bias" in kw else None
        outs.append(
            m.step(x[:, i : i + 1], cache, kw.get("pixel"), key_bias=bias, need_weights=kw["insight"])
        )
    assert (cache.native not in (None, False)) == use_native
    return outs


@needs_kernel
@pytest.mark.parametrize("n_kv_heads", [4, 2, 1])
@pytest.mark.parametrize("insight", [False, True])
@pytest.mark.parametrize("extra", ["plain", "pixel", "emphasis"])
def test_the_c_step_gives_torchs_logits_and_attention(n_kv_heads: int, insight: bool, extra: str) -> None:
    m = learned(n_kv_heads)
    x = torch.randint(0, 97, (1, 24))
    kw: dict = {"insight": insight}
    if extra == "pixel":
        kw["pixel"] = torch.tensor([0.9, 0.2, 0.4])
    if extra == "emphasis":
        kw["bias"] = torch.linspace(-1.0, 2.0, 24)
    c, t = decode_all(m, x, True, **kw), decode_all(m, x, False, **kw)
    for a, b in zip(c, t, strict=True):
        torch.testing.assert_close(a[0], b[0], atol=2e-5, rtol=1e-5)
        if insight:
            for wa, wb in zip(a[2], b[2], strict=True):
                assert wa.shape == wb.shape
                torch.testing.assert_close(wa, wb.float(), atol=2e-6, rtol=1e-5)
    full, _ = m(x, kw.get("pixel")) if extra != "emphasis" else (None, None)
    if full is not None:  # and both are the whole-window forward, position by position
        torch.testing.assert_close(torch.cat([a[0] for a in c], 1), full[:, 5:], atol=2e-5, rtol=1e-5)


@needs_kernel
def test_greedy_replies_are_the_same_token_for_token_and_long_ones_cross_re_prefills() -> None:
    m = learned()
    prompt = list(range(3, 11))
    s = Sampling(temperature=0, max_tokens=60)  # 60 tokens in a 24-token window: several re-prefills
    with_c = [c.id for c in generate(m, prompt, s)]
    os.environ[native.ENV] = "off"
    try:
        native.library.cache_clear()
        assert native.library() is None
        plain = [c.id for c in generate(m, prompt, s)]
    finally:
        del os.environ[native.ENV]
        native.library.cache_clear()
    uncached = [c.id for c in generate(m, prompt, s, use_cache=False)]
    assert with_c == plain == uncached and len(with_c) == 60


@needs_kernel
def test_a_changed_weight_is_seen_by_the_next_reply() -> None:
    """The step's copies of the matrices are kept between replies, keyed by the parameters'
    versions: an optimizer step (an in-place change) must reach the next reply."""
    m = learned()
    x = torch.randint(0, 97, (1, 12))
    before = decode_all(m, x, True, insight=False)[-1][0]
    with torch.no_grad():
        m.layers[1].feed_forward.w2.weight.mul_(1.5)
    after = decode_all(m, x, True, insight=False)[-1][0]
    torch.testing.assert_close(after, decode_all(m, x, False, insight=False)[-1][0], atol=2e-5, rtol=1e-5)
    assert not torch.allclose(before, after)


@needs_kernel
def test_bad_ids_and_short_emphasis_are_refused_not_read_past() -> None:
    m = learned()
    cache = m.new_cache(1)
    m.step(torch.tensor([[1, 2, 3]]), cache)
    with pytest.raises(IndexError, match="outside the vocabulary"):
        m.step(torch.tensor([[97]]), cache)
    with pytest.raises(ValueError, match="key_bias has 2 positions"):
        m.step(torch.tensor([[5]]), cache, key_bias=torch.zeros(2))


@needs_kernel
def test_the_kernel_is_built_once_per_machine_and_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(native.CACHE_ENV, str(tmp_path))
    native.library.cache_clear()
    try:
        assert native.library() is not None
        built = list(tmp_path.iterdir())
        assert len(built) == 1 and built[0].suffix == ".so"  # no temp file left beside it
        stamp = built[0].stat().st_mtime_ns
        native.library.cache_clear()
        assert native.library() is not None and built[0].stat().st_mtime_ns == stamp
    finally:
        native.library.cache_clear()


@pytest.mark.parametrize("compiler", ["missing", "broken"])
def test_without_a_working_compiler_chat_runs_on_torch(
    compiler: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kernels = tmp_path / "kernels"
    monkeypatch.setenv(native.CACHE_ENV, str(kernels))
    if compiler == "missing":
        monkeypatch.setattr(native, "c_compiler", lambda: None)
    else:  # a compiler that fails every build
        fake = tmp_path / "cc"
        fake.write_text("#!/bin/sh\necho 'cc: error' >&2\nexit 1\n")
        fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
        monkeypatch.setenv("CC", str(fake))
    native.library.cache_clear()
    try:
        assert native.library() is None
        m = learned()
        cache = m.new_cache(1)
        m.step(torch.tensor([[1, 2]]), cache)
        m.step(torch.tensor([[3]]), cache)
        assert cache.native is False
        assert len(list(generate(m, [1, 2, 3], Sampling(max_tokens=5, seed=0)))) == 5
        assert not kernels.exists() or not any(kernels.iterdir())  # nothing half-built left behind
    finally:
        native.library.cache_clear()
