"""Knowing when it memorises: the best self, the plateau notice and how the tutor adapts, `--step best`."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
import torch

from babyterm.printer import Printer
from school.commands import Chat
from school.events import ChatEvent, EvalEvent, Event, PlateauEvent, SaveEvent
from school.options import TrainOptions
from school.plateau import Plateau, Verdict
from school.revive import revive
from school.tutor import Tutor
from school.weights import parse_weights
from soul.best_self import forget_best, load_best, read_best
from soul.paths import SoulError

TINY = dict(dim=32, n_layers=2, n_heads=2, max_seq_len=32)
FAST = dict(
    batch_size=8,
    warmup_steps=5,
    lr=1e-2,
    log_every=10,
    eval_every=10,
    eval_batches=1,
    guess_every=10_000,
    save_every=10_000,
    save_minutes=60.0,
    plateau_patience=2,
)


def _tutor(library: Path, born: bool = False, **syllabus) -> Tutor:
    torch.set_num_threads(1)
    options = TrainOptions(library=str(library), threads=1, steps=200)
    if not born:
        options.preset, options.vocab_size = "tiny", 300
    return Tutor(options, syllabus_overrides={**FAST, **syllabus}, brain_overrides=TINY)


@pytest.fixture
def repeated(tmp_path: Path) -> Path:
    library = tmp_path / "repeat.txt"
    library.write_text("the cat sat on the mat and the dog ate the log. " * 300, encoding="utf-8")
    return library


def test_plateau_counts_evals_without_a_new_best_and_adapts_within_bounds() -> None:
    p = Plateau(patience=2, min_delta=0.01)
    assert p.observe(10, 2.0) == Verdict.BEST and (p.best, p.best_step) == (2.0, 10)
    assert p.observe(20, 1.995) == Verdict.BEST and p.best_step == 20  # a new best self ...
    assert p.waited == 1  # ... but within min_delta: not a real gain, patience runs on
    assert p.observe(30, 2.5) == Verdict.PLATEAU and (p.times, p.lr_scale, p.decay_scale) == (1, 0.5, 1.5)
    assert p.best == 1.995
    assert p.observe(40, math.nan) == Verdict.WAITING and p.waited == 0
    for step in range(50, 500, 10):
        p.observe(step, 3.0)
    assert p.lr_scale == 1 / 16 and p.decay_scale == 4.0  # bounded
    restored = Plateau()
    restored.load_state_dict(json.loads(json.dumps(p.state_dict())))
    assert restored.state_dict() == p.state_dict()
    p.start_over()
    assert p.observe(600, 9.0) == Verdict.BEST and p.lr_scale == 1.0


def test_weights_selector_parses_live_best_and_steps() -> None:
    assert parse_weights("live") == "live" and parse_weights(" Best ") == "best"
    assert parse_weights("12,000") == parse_weights("step-12000") == parse_weights("12_000") == 12000
    for bad in ("soon", "-3", ""):
        with pytest.raises(ValueError):
            parse_weights(bad)


def test_a_memorising_run_keeps_its_best_self_says_so_and_adapts(repeated: Path) -> None:
    tutor = _tutor(repeated)
    events: list[Event] = []
    tutor.subscribe(events.append)
    printed = io.StringIO()
    tutor.subscribe(Printer(printed).show)
    tutor.run()
    evals = [e for e in events if isinstance(e, EvalEvent)]
    bests = [e for e in events if isinstance(e, SaveEvent) and e.reason == "best"]
    plateaus = [e for e in events if isinstance(e, PlateauEvent)]
    assert evals and bests and plateaus
    first = plateaus[0]
    assert first.lr_scale == 0.5 and first.weight_decay == pytest.approx(0.15)
    assert first.best_bpb == pytest.approx(min(e.val_bpb for e in evals if e.step <= first.step))
    assert "learned what it can from this text" in first.message and "more writing" in first.message
    assert "plateau at step" in printed.getvalue() and "best self kept" in printed.getvalue()
    # the tutor adapted and keeps training
    assert tutor.step == 200 and tutor.lr_scale == plateaus[-1].lr_scale
    decay = [g["weight_decay"] for g in tutor.optimizer.param_groups]
    assert max(decay) == pytest.approx(plateaus[-1].weight_decay) and min(decay) == 0.0
    # the best self is the best held-out score's weights, on disk
    best = read_best(tutor.paths.milestones)
    assert best is not None and best.val_bpb == pytest.approx(min(e.val_bpb for e in evals))
    assert best.step == tutor.plateau.best_step and best.validation == tutor.librarian.validation_id
    _, tensors = load_best(tutor.paths.milestones)
    model = tutor.milestone("best")
    tutor.model.eval()
    x = torch.randint(3, tutor.librarian.vocab_size, (1, 16))
    assert torch.equal(model.tok_embeddings.weight, tensors["tok_embeddings.weight"])
    # chat from the best self, in the training process and from the saved baby
    tutor.subscribe(said := [].append)
    tutor.handle(Chat(id="r", text="the cat", max_tokens=4, temperature=0, weights="best"))
    final = [e for e in said.__self__ if isinstance(e, ChatEvent) and e.final]
    assert final and final[0].weights == "best self"
    saved = revive(tutor.paths, step="best")
    assert saved.step == best.step and "best self" in saved.weights
    with torch.no_grad():
        assert torch.allclose(saved.model(x)[0], model(x)[0])


def test_the_plateau_state_survives_a_resume_and_a_new_library_starts_over(repeated: Path, tmp_path) -> None:
    tutor = _tutor(repeated)
    tutor.run()
    assert tutor.plateau.times >= 1
    state = tutor.plateau.state_dict()
    lr_scale = tutor.lr_scale
    again = _tutor(repeated, born=True)
    again.prepare()
    assert again.plateau.state_dict() == state and again.lr_scale == lr_scale
    assert max(g["weight_decay"] for g in again.optimizer.param_groups) == pytest.approx(
        0.1 * state["decay_scale"]
    )
    other = tmp_path / "other.txt"
    other.write_text("a quite different text about boats and the sea. " * 300, encoding="utf-8")
    moved = _tutor(other, born=True)
    moved.prepare()
    assert read_best(moved.paths.milestones) is None  # scored on other text: no rival
    assert moved.plateau.times == 0 and math.isinf(moved.plateau.best) and moved.lr_scale == 1.0
    assert max(g["weight_decay"] for g in moved.optimizer.param_groups) == pytest.approx(0.1)


def test_no_best_self_is_one_clear_line(repeated: Path) -> None:
    tutor = _tutor(repeated)
    tutor.prepare()
    tutor.save("manual")
    forget_best(tutor.paths.milestones)
    with pytest.raises(SoulError, match="no best self yet"):
        revive(tutor.paths, step="best")


def test_xray_and_serve_take_the_best_self(repeated: Path, capsys) -> None:
    from babyterm.cli import main
    from babyterm.serving import served_weights

    tutor = _tutor(repeated)
    tutor.run()
    best = read_best(tutor.paths.milestones)
    assert best is not None
    assert main(["xray", "--baby", tutor.options.baby, "--step", "best", "--json", "the cat"]) == 0
    shot = json.loads(capsys.readouterr().out)
    assert "best self" in shot["weights"]
    assert served_weights("best", tutor.paths) == "best"
    forget_best(tutor.paths.milestones)
    with pytest.raises(SoulError, match="no best self yet"):
        served_weights("best", tutor.paths)


def test_a_plateau_worse_than_the_best_self_goes_back_to_it(repeated: Path) -> None:
    tutor = _tutor(repeated)
    tutor.prepare()
    events: list[Event] = []
    tutor.subscribe(events.append)
    for _ in range(3):
        tutor.train_step()
    tutor._after_eval(EvalEvent(tutor.step, 1.0, 1.50, 1.0))  # the best self, kept on disk
    kept = {k: v.clone() for k, v in tutor.model.state_dict().items()}
    for score in (1.60, 1.70):  # two evals without a new best: a plateau (patience 2)
        for _ in range(3):
            tutor.train_step()
        tutor._after_eval(EvalEvent(tutor.step, 1.0, score, 1.0))
    plateau = [e for e in events if isinstance(e, PlateauEvent)]
    assert len(plateau) == 1 and plateau[0].returned and "went back to that best self" in plateau[0].message
    assert all(torch.equal(v, kept[k]) for k, v in tutor.model.state_dict().items())
    assert tutor.step == 9  # the step count and schedule go on
    tutor.train_step()  # and it learns on from there
    # a plateau that is no worse than the best self (within RETURN_MARGIN) keeps the live weights
    live = {k: v.clone() for k, v in tutor.model.state_dict().items()}
    for _ in range(2):
        tutor._after_eval(EvalEvent(tutor.step, 1.0, 1.505, 1.0))
    assert not [e for e in events if isinstance(e, PlateauEvent)][-1].returned
    assert all(torch.equal(v, live[k]) for k, v in tutor.model.state_dict().items())
