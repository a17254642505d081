"""Fault injection on a training baby: kill -9, NaN and inf, a full disk. Nothing may be lost."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

from school.events import ErrorEvent, Event, SaveEvent
from school.tutor import Tutor
from soul.checkpoint import list_checkpoints, load_latest
from tests.test_tutor import make_tutor

ROOT = Path(__file__).resolve().parents[1]


KILL_TRIALS = 12
"""~1 s each: the suite must stay under 5 minutes on 2 cores, and on a Zen 1 it took ~5 with 20;
tests/stress/kill_trials.py runs 200."""


def test_kill_minus_nine_at_random_moments_loses_nothing_saved(small_library: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests/stress/kill_trials.py"),
            "--library",
            str(small_library),
            "--trials",
            str(KILL_TRIALS),
            "--max-delay",
            "1.0",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["trials"] == KILL_TRIALS
    assert summary["corrupted_souls"] == 0, summary
    assert summary["clean_resumes"] == KILL_TRIALS, summary
    assert summary["final_step"] > KILL_TRIALS  # the trials really trained between kills


def _errors(events: list[Event]) -> list[str]:
    return [e.message for e in events if isinstance(e, ErrorEvent)]


def _watched_tutor(library: Path) -> tuple[Tutor, list[Event]]:
    """A prepared tutor, and the list its events go to."""
    tutor = make_tutor(library)
    tutor.prepare()
    events: list[Event] = []
    tutor.subscribe(events.append)
    return tutor, events


def test_non_finite_loss_is_skipped_then_rolled_back(small_library: Path) -> None:
    tutor, events = _watched_tutor(small_library)
    for _ in range(4):
        tutor.train_step()
    tutor.save("manual")
    good = [p.detach().clone() for p in tutor.model.parameters()]
    with torch.no_grad():
        next(tutor.model.parameters()).fill_(float("nan"))
    for _ in range(3):
        assert tutor.train_step().get("skipped")
    assert tutor.step == 4 and tutor.lr_scale == 0.5
    for p, g in zip(tutor.model.parameters(), good, strict=True):
        assert torch.equal(p, g)  # the last good weights are back
    assert any("rolled back to step 4" in m for m in _errors(events))
    assert not tutor.train_step().get("skipped")  # and training goes on


def test_a_checkpoint_that_fails_too_sends_it_back_to_its_best_self(small_library: Path) -> None:
    """Weights finite but wild (a huge --lr once saved them) fail every step from their checkpoint:
    the second rollback in a row goes to the best self instead of looping on the same checkpoint."""
    tutor, events = _watched_tutor(small_library)
    for _ in range(2):
        tutor.train_step()
    tutor.emit(tutor.checkpointer.save_best(tutor.step, 3.0, tutor.librarian.validation_id))
    best = [p.detach().clone() for p in tutor.model.parameters()]
    for _ in range(2):
        tutor.train_step()
    with torch.no_grad():
        next(tutor.model.parameters()).mul_(1e30)  # finite, so it is saved; every forward overflows
    tutor.save("manual")
    assert load_latest(tutor.paths.checkpoints).step == 4
    for _ in range(6):
        assert tutor.train_step().get("skipped")
    assert tutor.lr_scale == 0.25
    for p, b in zip(tutor.model.parameters(), best, strict=True):
        assert torch.equal(p, b)  # the best self's weights, not the wild checkpoint's
    said = _errors(events)
    assert any("rolled back to step 4" in m for m in said)
    assert any("the checkpoint fails too: back to its best self (step 2)" in m for m in said)
    assert not tutor.train_step().get("skipped")  # and training goes on


def test_non_finite_gradient_never_reaches_the_weights(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    before = [p.detach().clone() for p in tutor.model.parameters()]
    hook = next(tutor.model.parameters()).register_hook(lambda g: g * float("inf"))
    assert tutor.train_step().get("skipped")
    hook.remove()
    for p, b in zip(tutor.model.parameters(), before, strict=True):
        assert torch.equal(p, b)


def test_a_save_of_non_finite_weights_is_refused_and_the_last_checkpoint_kept(small_library: Path) -> None:
    tutor = make_tutor(small_library)
    tutor.prepare()
    tutor.train_step()
    tutor.save("manual")
    events: list[Event] = []
    tutor.subscribe(events.append)
    with torch.no_grad():
        next(tutor.model.parameters())[0] = float("inf")
    tutor.step += 1
    tutor.save("manual")
    assert any("non-finite" in m for m in _errors(events))
    assert not any(isinstance(e, SaveEvent) for e in events)
    assert load_latest(tutor.paths.checkpoints).step == 1


DISK_FULL = textwrap.dedent(
    """
    import json, resource, signal, sys
    sys.path.insert(0, {root!r})
    from tests.test_tutor import make_tutor
    from school.events import ErrorEvent, SaveEvent

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    tutor = make_tutor(__import__("pathlib").Path({library!r}))
    tutor.prepare()
    seen = []
    tutor.subscribe(lambda e: seen.append(e))
    for _ in range(3):
        tutor.train_step()
    tutor.save("manual")                                   # a good checkpoint at step 3
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4096, hard))  # the disk is "full"
    for _ in range(3):
        tutor.train_step()
    tutor.save("autosave")                                 # must fail cleanly
    for _ in range(2):
        tutor.train_step()                                 # training goes on
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))  # space again
    tutor.save("autosave")                                 # the retry succeeds
    print(json.dumps({{
        "errors": [e.message for e in seen if isinstance(e, ErrorEvent)],
        "saves": [e.step for e in seen if isinstance(e, SaveEvent)],
        "step": tutor.step,
    }}))
    """
)


def test_a_full_disk_loses_nothing(small_library: Path, isolated_home: Path) -> None:
    script = DISK_FULL.format(root=str(ROOT), library=str(small_library))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert any("save failed, previous checkpoint kept" in m for m in result["errors"])
    assert result["saves"] == [3, 8] and result["step"] == 8
    steps = [s for s, _ in list_checkpoints(isolated_home / "babies" / "baby" / "checkpoints")]
    assert steps == [3, 8]
