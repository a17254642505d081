"""The ladder's lower rungs (mlp, attention): shapes, causality, cache equality and learning."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from brain import BRAIN_NAMES, build_brain, config_from_dict, preset_config
from brain.generate import Sampling, generate
from school.commands import Attend, Chat

V, T = 64, 24
TINY = {
    "mlp": dict(window=4, embed_dim=16, hidden_dim=64, max_seq_len=32),
    "attention": dict(dim=32, max_seq_len=32),
}
RUNGS = tuple(TINY)


def tiny(brain: str, seed: int = 0):
    torch.manual_seed(seed)
    return build_brain(preset_config(brain, "tiny", V, **TINY[brain]))


def test_registry_knows_the_ladder():
    assert set(RUNGS) <= set(BRAIN_NAMES)
    for brain in RUNGS:
        cfg = preset_config(brain, "tiny", V, **TINY[brain])
        again = config_from_dict(cfg.to_dict())
        assert again == cfg and again.brain == brain


@pytest.mark.parametrize("brain", RUNGS)
def test_shapes(brain):
    model = tiny(brain)
    logits, pixel = model(torch.randint(0, V, (3, T)), torch.tensor([0.2, 0.7, 0.9]))
    assert logits.shape == (3, T, V)
    assert pixel.shape == (3, 3) and bool(((pixel >= 0) & (pixel <= 1)).all())


@pytest.mark.parametrize("brain", RUNGS)
def test_a_later_token_never_changes_earlier_logits(brain):
    model = tiny(brain).eval()
    x = torch.randint(0, V, (1, T))
    cut = 10
    y = x.clone()
    y[0, cut:] = (y[0, cut:] + 1 + torch.randint(0, V - 1, (T - cut,))) % V  # every later token differs
    a, _ = model(x)
    b, _ = model(y)
    torch.testing.assert_close(a[:, :cut], b[:, :cut])
    assert not torch.allclose(a[:, cut:], b[:, cut:])  # the changed tokens are read at all


def test_the_mlp_reads_exactly_its_window():
    model = tiny("mlp").eval()
    W = model.config.window
    x = torch.randint(0, V, (1, T))
    y = x.clone()
    y[0, 5] = (y[0, 5] + 1) % V
    a, _ = model(x)
    b, _ = model(y)
    changed = (a - b).abs().amax(-1)[0] > 1e-6
    assert changed.nonzero().flatten().tolist() == list(range(5, 5 + W))


@pytest.mark.parametrize("brain", RUNGS)
def test_step_by_step_equals_the_whole_window(brain):
    model = tiny(brain).eval()
    x = torch.randint(0, V, (1, 20))
    full, _ = model(x)
    cache = model.new_cache(1)
    first, _ = model.step(x[:, :7], cache)
    rest = [model.step(x[:, i : i + 1], cache)[0] for i in range(7, 20)]
    torch.testing.assert_close(torch.cat([first, *rest], dim=1), full, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("brain", RUNGS)
def test_cached_generation_equals_recomputing(brain):
    model = tiny(brain)
    s = Sampling(temperature=0.0, max_tokens=40)  # longer than the window: the cache refills
    cached = [c.id for c in generate(model, [1, 5, 9], s)]
    fresh = [c.id for c in generate(model, [1, 5, 9], s, use_cache=False)]
    assert cached == fresh and len(cached) == 40


@pytest.mark.parametrize("brain", RUNGS)
def test_insight_weights_are_rows_over_what_was_read(brain):
    model = tiny(brain).eval()
    cache = model.new_cache(1)
    _, _, seen = model.step(torch.randint(0, V, (1, 12)), cache, need_weights=True)
    (w,) = seen
    assert w.shape == (1, 1, 12, 12)
    assert bool((w.triu(1) == 0).all())  # nothing after a position
    if brain == "attention":
        torch.testing.assert_close(w.sum(-1), torch.ones(1, 1, 12))
    else:  # the window's reach: 1/W on the last W tokens
        W = model.config.window
        assert w[0, 0, -1].tolist() == [0.0] * (12 - W) + [1 / W] * W


@pytest.mark.parametrize("brain", RUNGS)
def test_loss_falls_on_a_small_text(brain):
    torch.set_num_threads(1)
    model = tiny(brain)
    text = "the cat sat on the mat. the dog sat on the log. " * 8
    ids = torch.tensor([ord(c) % V for c in text])
    x = torch.stack([ids[i : i + 32] for i in range(0, len(ids) - 33, 16)])
    y = torch.stack([ids[i + 1 : i + 33] for i in range(0, len(ids) - 33, 16)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)

    def loss() -> torch.Tensor:
        logits, _ = model(x)
        return F.cross_entropy(logits.flatten(0, 1), y.flatten())

    start = loss().item()
    for _ in range(40):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 0.5 * start


@pytest.mark.parametrize("brain", RUNGS)
def test_a_baby_of_each_rung_trains_chats_shows_insight_and_refuses_llama_exports(small_library, brain):
    from school.events import ChatEvent, InsightEvent
    from school.exports.llama import require_transformer
    from school.options import TrainOptions
    from school.tutor import Tutor
    from soul.paths import SoulError

    torch.set_num_threads(1)
    options = TrainOptions(
        baby=f"rung-{brain}", library=str(small_library), brain=brain, vocab_size=300, threads=1
    )
    tutor = Tutor(options, syllabus_overrides=dict(batch_size=4, eval_batches=1), brain_overrides=TINY[brain])
    tutor.prepare()
    events: list = []
    tutor.subscribe(events.append)
    for _ in range(3):
        tutor.train_step()
    assert tutor.evaluate().val_bpb > 0
    tutor.handle(Chat(id="r", text="Hello *there*", max_tokens=6, temperature=0))
    assert [e for e in events if isinstance(e, ChatEvent) and e.final]
    tutor.handle(Attend(id="r", index=2))
    insight = next(e for e in events if isinstance(e, InsightEvent))
    assert len(insight.layers) == 1 and len(insight.layers[0]) == 1  # one layer of one head
    assert len(insight.mean) == len(insight.context)
    if brain == "attention":
        assert sum(insight.mean) == pytest.approx(1.0, abs=1e-4)
    with pytest.raises(
        SoulError, match=f"only the transformer brain exports to hf; this baby has the {brain}"
    ):
        require_transformer(tutor.model, "hf")
