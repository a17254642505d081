"""The recipe: sizes that fit the library and grow with it, the user's choices winning, a baby born by it."""

from __future__ import annotations

import itertools
import json
from types import SimpleNamespace

import pytest
import torch

from brain import build_brain, config_from_dict
from school import recipe
from school.classroom import open_classroom
from school.options import TrainOptions

SIZES = (10_000, 100_000, 1_000_000, 10_000_000)
CPU, GPU = 15_000.0, 2_000_000.0  # tokens/s of the probe: a 2-core laptop, a big GPU


def _params(r: recipe.Recipe) -> int:
    """All parameters, embeddings included, of the transformer the recipe describes."""
    cfg = config_from_dict({"brain": "transformer", "vocab_size": r.vocab_size, **r.brain()})
    with torch.device("meta"):
        return build_brain(cfg).num_params()


@pytest.mark.parametrize("speed", [CPU, GPU])
def test_sizes_are_sensible_for_10k_to_10mb(speed: float) -> None:
    for size in SIZES:
        r = recipe.choose(size, speed)
        tokens = size / recipe.BYTES_PER_TOKEN
        assert 512 <= r.vocab_size <= 16384 and r.vocab_size % 64 == 0
        assert r.dim % r.n_heads == 0 and r.dim // r.n_heads == 32
        assert 2 <= r.n_layers <= 12
        assert 64 <= r.context <= 256
        # validation (a tenth of the text) holds two windows, training many
        assert 2 * (r.context + 1) < tokens / 10
        assert 0 < r.dropout <= 0.25 and 0.1 <= r.weight_decay <= 0.2 and 1e-4 < r.lr < 1e-2
        assert r.batch_size >= 4 and r.decay_steps >= 1000 and r.warmup_steps <= r.decay_steps
        # never more matrix weights than a few per token of the library (memorising), at least MIN
        assert 12 * r.n_layers * r.dim**2 <= max(4 * recipe.DATA_PARAMS_PER_TOKEN * tokens, 2e5)


@pytest.mark.parametrize("speed", [CPU, GPU])
def test_it_grows_with_the_library(speed: float) -> None:
    chosen = [recipe.choose(size, speed) for size in SIZES]
    params = [_params(r) for r in chosen]
    assert params == sorted(params)
    for (a, pa), (b, pb) in itertools.pairwise(zip(chosen, params, strict=True)):
        # strictly, until the machine's compute caps the brain and with it the head (HEAD_SHARE)
        assert pb > pa or (b.dim, b.n_layers, b.vocab_size) == (a.dim, a.n_layers, _head_cap(a))
        assert b.vocab_size > a.vocab_size or a.vocab_size == _head_cap(a)
        assert b.context >= a.context and b.dim >= a.dim and b.n_layers >= a.n_layers
        assert b.dropout <= a.dropout and b.weight_decay <= a.weight_decay  # less to fear


def _head_cap(r: recipe.Recipe) -> int:
    return recipe.max_vocab(r.dim, r.n_layers)


@pytest.mark.parametrize("speed", [CPU, GPU])
def test_the_head_never_outweighs_the_brain(speed: float) -> None:
    """The data asks for 4·sqrt(bytes) tokens; on a slow machine 10 MB's would be a head of twice
    the body's weights, most of each step (1.414 bits/byte held out against 1.280 at 0.7x)."""
    for size in (*SIZES, 3_000_000):
        r = recipe.choose(size, speed)
        assert r.vocab_size * r.dim <= recipe.HEAD_SHARE * 12 * r.n_layers * r.dim**2 + 1
    capped = recipe.choose(10_000_000, speed)
    assert (capped.vocab_size < 12_000) == (speed == CPU)  # the CPU's is capped, the GPU's brain is big


def test_a_faster_machine_gets_a_bigger_brain_but_no_more_than_the_data_allows() -> None:
    slow, fast = recipe.choose(10_000_000, CPU), recipe.choose(10_000_000, GPU)
    assert _params(fast) > _params(slow)
    tiny_slow, tiny_fast = recipe.choose(10_000, CPU), recipe.choose(10_000, GPU)
    assert (tiny_fast.dim, tiny_fast.n_layers) == (tiny_slow.dim, tiny_slow.n_layers)  # data-bound


def test_it_is_deterministic_for_its_inputs() -> None:
    assert recipe.choose(123_456, 9_876.5) == recipe.choose(123_456, 9_876.5)


def test_the_users_choices_win() -> None:
    assert recipe.choose(1_000_000, CPU).syllabus()["bpe_dropout"] == recipe.BPE_DROPOUT > 0
    r = recipe.choose(
        1_000_000, CPU, vocab_size=777, context=96, dropout=0.0, weight_decay=0.5, lr=1e-4, bpe_dropout=0.0
    )
    assert (r.vocab_size, r.context, r.dropout, r.weight_decay, r.lr) == (777, 96, 0.0, 0.5, 1e-4)
    assert r.syllabus()["bpe_dropout"] == 0.0
    assert r.syllabus()["lr"] == 1e-4 and r.syllabus()["min_lr"] == pytest.approx(1e-5)
    assert r.brain()["max_seq_len"] == 96 and r.brain()["dropout"] == 0.0


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        recipe.choose(0, CPU)
    with pytest.raises(ValueError):
        recipe.choose(1000, 0.0)


def test_the_probe_measures_a_speed() -> None:
    torch.set_num_threads(1)
    assert recipe.measure_speed(torch.device("cpu"), steps=1) > 0
    with pytest.raises(ValueError):
        recipe.measure_speed(torch.device("cpu"), steps=0)


def test_the_probe_reads_a_typical_step_not_a_hiccup(monkeypatch: pytest.MonkeyPatch) -> None:
    """One step of seven held up by something else on the machine must not size the baby."""
    torch.set_num_threads(1)
    durations = iter([0.03, 0.03, 0.03, 0.03, 0.03, 1.0, 0.03, 0.03, 0.03])  # 2 warm-up, then 7
    clock = [0.0]

    def fake_perf_counter() -> float:  # called at each step's start and end
        clock[0] += next(durations) if len(clock) % 2 == 0 else 0.0
        clock.append(clock[0])
        return clock[0]

    # the probe's clock alone, not the time module everything else reads
    monkeypatch.setattr(recipe, "time", SimpleNamespace(perf_counter=fake_perf_counter))
    tokens = recipe.PROBE["batch_size"] * recipe.PROBE["max_seq_len"]
    assert recipe.measure_speed(torch.device("cpu"), steps=7) == pytest.approx(tokens / 0.03)


def test_a_baby_born_without_a_preset_follows_the_recipe_and_records_it(tmp_path, small_library) -> None:
    torch.set_num_threads(1)
    options = TrainOptions(
        home=str(tmp_path), library=str(small_library), device="cpu", threads=1, dropout=0.05, lr=5e-4
    )
    room = open_classroom(options, {}, {}, lambda *a: None, lambda m: None)
    config = json.loads(room.paths.config.read_text())
    r = config["recipe"]
    assert config["preset"] == "recipe" and r["library_bytes"] == small_library.stat().st_size
    assert r["tokens_per_s"] > 0
    assert config["brain"]["dim"] == r["dim"] and config["brain"]["max_seq_len"] == r["context"]
    assert config["brain"]["dropout"] == 0.05 and room.syllabus.lr == 5e-4  # the user's
    assert room.syllabus.weight_decay == r["weight_decay"] and room.syllabus.batch_size == r["batch_size"]
    # a grown baby takes a new dropout and learning rate, keeps its context, refuses a new one
    grown = open_classroom(
        TrainOptions(home=str(tmp_path), device="cpu", threads=1, dropout=0.1, lr=1e-3),
        {},
        {},
        lambda *a: None,
        lambda m: None,
    )
    assert grown.record.brain["dropout"] == 0.1 and grown.syllabus.lr == 1e-3
    assert json.loads(room.paths.config.read_text())["brain"]["dropout"] == 0.1
    from soul.paths import SoulError

    with pytest.raises(SoulError, match="context"):
        open_classroom(
            TrainOptions(home=str(tmp_path), device="cpu", threads=1, context=17),
            {},
            {},
            lambda *a: None,
            lambda m: None,
        )


def test_a_pinned_speed_sizes_the_baby_without_the_probe(tmp_path, small_library, monkeypatch) -> None:
    """BABYTERM_PROBE_SPEED gives two benchmark runs the same brain: the recipe reads it, and the
    probe, whose reading drifts with the machine, never runs."""
    from soul.paths import SoulError

    def no_probe(device):
        raise AssertionError("the probe ran")

    monkeypatch.setattr(recipe, "measure_speed", no_probe)
    monkeypatch.setenv(recipe.SPEED_ENV, "123456")
    said = []
    options = TrainOptions(home=str(tmp_path), library=str(small_library), device="cpu", threads=1)
    room = open_classroom(options, {}, {}, lambda *a: said.append(a), lambda m: None)
    r = json.loads(room.paths.config.read_text())["recipe"]
    assert r["tokens_per_s"] == 123456.0
    assert r["dim"] == recipe.choose(small_library.stat().st_size, 123456.0).dim
    assert any("pinned" in str(a) for a in said)
    for bad in ("fast", "0", "-5", "inf", "nan"):
        monkeypatch.setenv(recipe.SPEED_ENV, bad)
        with pytest.raises(SoulError, match="BABYTERM_PROBE_SPEED must be"):
            open_classroom(
                TrainOptions(home=str(tmp_path / bad), library=str(small_library), device="cpu", threads=1),
                {},
                {},
                lambda *a: None,
                lambda m: None,
            )
        assert not (tmp_path / bad / "babies" / "baby").exists()  # no half-born baby


def test_a_named_preset_keeps_its_sizes_and_takes_the_overrides(tmp_path, small_library) -> None:
    torch.set_num_threads(1)
    options = TrainOptions(
        home=str(tmp_path), library=str(small_library), device="cpu", threads=1, preset="tiny",
        vocab_size=300, context=48, weight_decay=0.3,
    )  # fmt: skip
    room = open_classroom(options, {}, {}, lambda *a: None, lambda m: None)
    assert room.record.preset == "tiny" and room.record.recipe == {}
    assert room.record.brain["dim"] == 128 and room.record.brain["max_seq_len"] == 48
    assert room.syllabus.weight_decay == 0.3
    assert "recipe" not in json.loads(room.paths.config.read_text())


def test_a_recipe_brain_drops_out_on_its_branches_not_its_attention() -> None:
    """The flash kernel a CPU's attention needs takes no dropout; an older record (no field)
    keeps dropping out on its attention as it was born to."""
    from brain import build_brain, config_from_dict

    r = recipe.choose(1_000_000, CPU)
    cfg = config_from_dict({"brain": "transformer", "vocab_size": 300, **r.brain()})
    model = build_brain(cfg)
    assert cfg.dropout > 0 and all(b.attention.dropout == 0.0 for b in model.layers)
    old = config_from_dict(
        {"brain": "transformer", "vocab_size": 300, "dim": 64, "n_heads": 2, "dropout": 0.2}
    )
    assert old.attention_dropout is None
    assert all(b.attention.dropout == 0.2 for b in build_brain(old).layers)
