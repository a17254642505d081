"""Generation: sampling rules, cache exactness, confidence, attention, emphasis and milestones."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from brain import build_brain, preset_config
from brain.babyllm import window_reach
from brain.generate import Sampling, choose, describe, generate, rng_kept, shape_logits
from school.commands import Attend, Chat
from school.emphasis import emphasis_bias, parse_marks
from school.events import ChatEvent, InsightEvent
from soul import checkpoint as ckpt
from soul.milestones import LANDMARKS, is_milestone, list_milestones, load_milestone, save_milestone
from tests.test_tutor import collect, make_tutor

torch.set_num_threads(1)
BRAINS = {
    "transformer": dict(dim=32, n_layers=2, n_heads=4, n_kv_heads=2, max_seq_len=24),
    "babyllm": dict(embed_dim=16, n_neurons=32, max_seq_len=24),
}


def brain(name: str):
    torch.manual_seed(0)
    model = build_brain(preset_config(name, "tiny", 97, **BRAINS[name]))
    with torch.no_grad():  # a newborn is nearly uniform; make its choices decisive
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


def ids(choices) -> list[int]:
    return [c.id for c in choices]


@pytest.mark.parametrize("name", BRAINS)
def test_cached_equals_uncached_at_temperature_zero(name: str) -> None:
    model = brain(name)
    s = Sampling(temperature=0.0, max_tokens=40)  # longer than the window: crosses a re-prefill
    assert ids(generate(model, [5, 6, 7], s)) == ids(generate(model, [5, 6, 7], s, use_cache=False))


def test_temperature_zero_is_greedy_and_takes_the_first_maximum() -> None:
    logits = torch.tensor([1.0, 3.0, 3.0, 0.5])
    assert int(torch.argmax(shape_logits(logits, Sampling(temperature=0), []))) == 1
    model = brain("transformer")
    first = next(generate(model, [4, 2], Sampling(temperature=0, max_tokens=1)))
    assert first.id == int(model(torch.tensor([[4, 2]]))[0][0, -1].argmax())


def test_top_k_never_picks_outside_the_top_k() -> None:
    model = brain("transformer")
    logits = model(torch.tensor([[1, 2, 3]]))[0][0, -1]
    top3 = set(torch.topk(logits, 3).indices.tolist())
    for seed in range(60):
        s = Sampling(temperature=1.5, top_k=3, max_tokens=1, seed=seed)
        assert next(generate(model, [1, 2, 3], s)).id in top3


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
    kept = shape_logits(logits, Sampling(temperature=1.0, top_k=None, top_p=0.8), []).isfinite()
    assert kept.tolist() == [True, True, False, False]
    kept = shape_logits(logits, Sampling(temperature=1.0, top_k=None, top_p=0.81), []).isfinite()
    assert kept.tolist() == [True, True, True, False]


def test_seed_reproduces_and_different_seeds_differ() -> None:
    model = brain("transformer")

    def run(seed: int) -> list[int]:
        return ids(generate(model, [3], Sampling(temperature=1.2, top_k=None, max_tokens=20, seed=seed)))

    assert run(7) == run(7)
    assert len({tuple(run(seed)) for seed in range(5)}) > 1


def test_unseeded_replies_differ_even_from_the_same_random_state() -> None:
    """Chat puts the global random state back after every reply (rng_kept), so a reply drawn from it
    would repeat the last one word for word (QA: `babyterm chat` said the same thing three times)."""
    model = brain("transformer")
    replies = []
    for _ in range(4):
        torch.manual_seed(0)  # the same global state before each, as rng_kept leaves it
        with rng_kept(model):
            replies.append(
                tuple(ids(generate(model, [3], Sampling(temperature=1.2, top_k=None, max_tokens=20))))
            )
    assert len(set(replies)) > 1


def test_repetition_penalty_discourages_seen_tokens() -> None:
    logits = torch.tensor([2.0, -1.0, 1.0])
    shaped = shape_logits(logits, Sampling(temperature=1.0, top_k=None, repetition_penalty=2.0), [0, 1])
    assert shaped.tolist() == pytest.approx([1.0, -2.0, 1.0])


def test_confidence_is_the_softmax_of_the_logits() -> None:
    logits = torch.randn(97)
    choice = describe(logits, 11)
    probs = logits.softmax(-1)
    assert choice.prob == pytest.approx(float(probs[11]))
    top = torch.topk(probs, 5)
    assert [i for i, _ in choice.top] == top.indices.tolist()
    assert choice.margin == pytest.approx(float(top.values[0] - top.values[1]))


def test_attention_rows_sum_to_one_and_emphasis_off_is_bit_identical() -> None:
    model = brain("transformer")
    plain = list(generate(model, [5, 6, 7, 8], Sampling(temperature=0, max_tokens=6), insight=True))
    for c in plain:
        torch.testing.assert_close(c.attention.sum(-1), torch.ones(c.attention.shape[:-1]))
    zero = list(
        generate(model, [5, 6, 7, 8], Sampling(temperature=0, max_tokens=6), emphasis=[0.0] * 4, insight=True)
    )
    assert ids(plain) == ids(zero)
    assert all(torch.equal(a.attention, b.attention) for a, b in zip(plain, zero, strict=True))
    boosted = list(
        generate(
            model, [5, 6, 7, 8], Sampling(temperature=0, max_tokens=1), emphasis=[0, 2.0, 0, 0], insight=True
        )
    )
    assert boosted[0].attention[..., 1].mean() > plain[0].attention[..., 1].mean()


def test_babyllm_emphasis_off_is_identical_and_reach_is_a_distribution() -> None:
    model = brain("babyllm")
    s = Sampling(temperature=0, max_tokens=10)
    assert ids(generate(model, [5, 6, 7], s)) == ids(generate(model, [5, 6, 7], s, emphasis=[0.0, 0.0, 0.0]))
    reach = window_reach(
        model.window_sizes(), model.interneurons.mix.softmax(0), torch.tensor([1.0, 4.0, 1.0, 1.0])
    )
    assert float(reach.sum()) == pytest.approx(1.0)
    plain = window_reach(model.window_sizes(), model.interneurons.mix.softmax(0), torch.ones(4))
    assert reach[1] > plain[1]


def test_marks_become_emphasis_on_their_tokens(small_library: Path) -> None:
    text, spans = parse_marks("the *raven* said *never*more")
    assert text == "the raven said nevermore" and spans == [(4, 9), (15, 20)]
    tutor = make_tutor(small_library)
    tutor.prepare()
    token_ids, bias = emphasis_bias(tutor.librarian.tokenizer, text, spans, 2.0)
    marked = tutor.librarian.decode([i for i, b in zip(token_ids, bias, strict=True) if b > 0])
    assert "raven" in marked and "said" not in marked
    assert max(bias) == pytest.approx(0.6931, abs=1e-4)


def test_milestones_landmarks_pruning_and_checksum(tmp_path: Path) -> None:
    assert [s for s in range(1, 30_001) if is_milestone(s, every=10_000)] == [*LANDMARKS, 20_000, 30_000]
    tensors = {"w": torch.ones(3)}
    for step in (100, 1000, 10_000, 20_000, 30_000, 40_000):
        save_milestone(tmp_path, step, tensors, keep=4)
    assert list_milestones(tmp_path) == [100, 1000, 10_000, 40_000]
    (tmp_path / "step-00000100.safetensors").write_bytes(b"garbage")
    with pytest.raises(Exception, match="damaged"):
        load_milestone(tmp_path, 100)


def test_chat_with_an_earlier_self_uses_its_weights(small_library: Path) -> None:
    tutor = make_tutor(small_library, milestone_every=50)
    tutor.options.steps = 110
    tutor.run()  # milestone at 100
    events = collect(tutor)
    snapshot = load_milestone(tutor.paths.milestones, 100)
    model, label = tutor.speaker.model_for(100)
    assert label == "milestone step 100"
    reference = build_brain(tutor.model.config.__class__(**tutor.model.config.__dict__))
    ckpt.load_model_tensors(reference, snapshot)
    x = torch.randint(0, tutor.model.config.vocab_size, (1, 12))
    assert torch.equal(model(x)[0], reference(x)[0])
    assert not torch.equal(tutor.model(x)[0], reference(x)[0])  # ten more steps changed the live one

    tutor.handle(Chat(id="old", text="Hello", max_tokens=4, weights=100, temperature=0))
    final = [e for e in events if isinstance(e, ChatEvent) and e.final][-1]
    assert final.weights == "milestone step 100"
    tutor.handle(Attend(id="old", index=1))
    insight = next(e for e in events if isinstance(e, InsightEvent))
    assert insight.index == 1 and len(insight.mean) == len(insight.context) == len(insight.emphasis)
    assert sum(insight.mean) == pytest.approx(1.0, abs=1e-4)


def test_min_p_keeps_tokens_at_least_min_p_times_the_top() -> None:
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
    shaped = shape_logits(probs.log(), Sampling(temperature=1.0, top_k=None, min_p=0.3), [])
    # 0.3 * 0.5 = 0.15: the third token is exactly at the bar and stays; the fourth goes
    assert shaped.isfinite().tolist() == [True, True, True, False]
    torch.testing.assert_close(shaped.softmax(-1)[:3], probs[:3] / probs[:3].sum())


def test_dynamic_temperature_follows_llama_cpp_from_entropy() -> None:
    probs = torch.tensor([0.6, 0.25, 0.1, 0.05])
    s = Sampling(temperature=1.0, top_k=None, dynatemp_range=0.5, dynatemp_exponent=2.0)
    entropy = -sum(p * math.log(p) for p in probs.tolist())
    t = 0.5 + (1.5 - 0.5) * (entropy / math.log(4)) ** 2.0  # min_temp + (max - min) * (H / ln n)^exp
    expected = (probs.log() / t).softmax(-1)
    torch.testing.assert_close(shape_logits(probs.log(), s, []).softmax(-1), expected)
    # a uniform row has the highest entropy: temperature + range, which leaves it uniform
    uniform = shape_logits(torch.zeros(4), s, []).softmax(-1)
    torch.testing.assert_close(uniform, torch.full((4,), 0.25))


def test_dynamic_temperature_runs_after_the_filters() -> None:
    probs = torch.tensor([0.7, 0.2, 0.06, 0.04])
    s = Sampling(temperature=0.8, top_k=2, dynatemp_range=0.8)
    kept = probs[:2] / probs[:2].sum()  # entropy over the two candidates left, n = 2
    entropy = -sum(p * math.log(p) for p in kept.tolist())
    t = 0.0 + (1.6 - 0.0) * entropy / math.log(2)
    expected = torch.cat(((probs[:2].log() / t).softmax(-1), torch.zeros(2)))
    torch.testing.assert_close(shape_logits(probs.log(), s, []).softmax(-1), expected)


def test_sampled_frequencies_follow_the_shaped_distribution() -> None:
    logits = torch.tensor([2.0, 1.0, 0.5, 0.0, -1.0])
    s = Sampling(temperature=0.7, top_k=4, top_p=0.95, max_tokens=1)
    expected = shape_logits(logits, s, []).softmax(-1)
    gen = torch.Generator().manual_seed(3)
    draws = torch.tensor([choose(logits, s, [], gen) for _ in range(4000)])
    freq = torch.bincount(draws, minlength=5).float() / 4000
    assert freq[expected == 0].sum() == 0  # never outside what the rules keep
    torch.testing.assert_close(freq, expected, atol=0.03, rtol=0)


def test_fast_draw_describes_like_describe() -> None:
    from brain.generate import _draw

    logits = torch.randn(97)
    choice = _draw(logits, Sampling(temperature=0.0), None, None)
    reference = describe(logits, int(logits.argmax()))
    assert choice.id == reference.id and choice.prob == pytest.approx(reference.prob)
    assert [i for i, _ in choice.top] == [i for i, _ in reference.top]
    assert choice.margin == pytest.approx(reference.margin)


def test_sampled_draw_reports_the_plain_top_five() -> None:
    from brain.generate import _draw

    logits = torch.randn(97)
    probs = logits.softmax(-1)
    for s in (Sampling(temperature=0.8, top_k=40), Sampling(temperature=1.3, top_k=None, min_p=0.01)):
        choice = _draw(logits, s, None, torch.Generator().manual_seed(0))
        assert [i for i, _ in choice.top] == torch.topk(probs, 5).indices.tolist()
        assert [p for _, p in choice.top] == pytest.approx(torch.topk(probs, 5).values.tolist())
        assert choice.prob == pytest.approx(float(probs[choice.id]))


def test_the_plain_draw_picks_what_the_general_rules_pick() -> None:
    """_draw's top-k fast path draws the token the general rules (candidates, then sample) draw
    at the same seed, and describes it with the plain probabilities."""
    from brain.generate import _draw, candidates, sample

    logits = 3 * torch.randn(300)
    probs = logits.softmax(-1)
    for s in (Sampling(temperature=0.8, top_k=40), Sampling(temperature=1.1, top_k=5), Sampling(top_k=256)):
        for seed in range(20):
            choice = _draw(logits, s, None, torch.Generator().manual_seed(seed))
            values, ids = candidates(logits, s)
            assert choice.id == int(ids[sample(values.softmax(-1), torch.Generator().manual_seed(seed))])
            assert choice.prob == pytest.approx(float(probs[choice.id]), rel=1e-5)
            assert [i for i, _ in choice.top] == torch.topk(probs, 5).indices.tolist()
            top = torch.topk(probs, 2).values
            assert choice.margin == pytest.approx(float(top[0] - top[1]), rel=1e-5)


@pytest.mark.parametrize("name", ["mlp", "attention", "transformer", "babyllm"])
def test_a_prefill_for_the_last_position_alone_gives_its_logits(name: str) -> None:
    """Generation asks a prefill for the last position's logits only (the head over every
    position was a quarter of a 64-token prefill): they must be the full prefill's last row."""
    torch.manual_seed(0)
    model = build_brain(preset_config(name, "tiny", 97, max_seq_len=24)).eval()
    x, pixel = torch.randint(0, 97, (1, 10)), torch.tensor([0.8, 0.1, 0.5])
    full = model.step(x, model.new_cache(1), pixel)
    last = model.step(x, model.new_cache(1), pixel, last_only=True)
    assert last[0].shape == (1, 1, 97)
    torch.testing.assert_close(last[0], full[0][:, -1:])
    torch.testing.assert_close(last[1], full[1])  # the pixel still sees every position


@pytest.mark.parametrize("window", [1, 2, 3])
@pytest.mark.parametrize("name", ["transformer", "babyllm"])
def test_a_window_of_a_few_tokens_still_replies_to_a_long_prompt(name: str, window: int) -> None:
    """`prompt[-(window - 1):]` kept the whole prompt at a window of 1 (a baby born with a context
    of 1 trained, then chat raised): the prompt and the reply must both fit the window."""
    torch.manual_seed(0)
    model = build_brain(preset_config(name, "tiny", 97, **{**BRAINS[name], "max_seq_len": window}))
    reply = list(generate(model, [5, 6, 7, 8, 9], Sampling(temperature=0, max_tokens=7)))
    assert len(reply) == 7
    again = list(generate(model, [5, 6, 7, 8, 9], Sampling(temperature=0, max_tokens=7), use_cache=False))
    assert ids(reply) == ids(again)
