"""The learning-rate schedule, and fitting what is left of it to a run's time budget."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from school.commands import Pause, Resume
from school.events import EvalEvent, StepEvent
from school.syllabus import EVAL_SHARE, MAX_EVAL_EVERY, Syllabus
from tests.test_tutor import make_tutor, wait_for


def test_the_schedule_warms_up_decays_and_stays_at_its_floor() -> None:
    s = Syllabus(lr=1e-3, min_lr=1e-4, warmup_steps=10, decay_steps=110)
    assert s.lr_at(0) == pytest.approx(1e-4) and s.lr_at(9) == pytest.approx(1e-3)
    assert s.lr_at(60) == pytest.approx(5.5e-4)  # half way down the cosine
    assert s.lr_at(110) == s.lr_at(10_000) == 1e-4


@pytest.mark.parametrize("step_s", [0.01, 0.1])
def test_fitting_ends_the_decay_with_the_time(step_s: float) -> None:
    s = Syllabus(warmup_steps=10, decay_steps=1000, eval_every=50)
    s.fit_to_time(step=100, step_s=step_s, seconds_left=20.0)
    assert s.decay_steps == 100 + round(20.0 / step_s)
    assert s.eval_every == 50  # evaluations keep their cadence in steps


def test_fitting_leaves_a_finished_schedule_and_nonsense_alone() -> None:
    s = Syllabus(warmup_steps=10, decay_steps=1000, eval_every=50)
    for step, step_s, left in ((1000, 0.1, 60.0), (5, 0.0, 60.0), (5, 0.1, -1.0)):
        s.fit_to_time(step, step_s, left)
        assert (s.decay_steps, s.eval_every) == (1000, 50)


def test_evaluations_are_spaced_to_their_share_of_the_time() -> None:
    s = Syllabus(eval_every=50)
    s.space_evals(eval_s=0.8, step_s=0.09)  # 178 steps of work for 5% of the time
    assert s.eval_every == 200
    assert EVAL_SHARE >= 0.8 / (200 * 0.09)  # within the share
    s.space_evals(eval_s=0.01, step_s=0.09)  # a cheap evaluation never brings them closer
    assert s.eval_every == 200
    for eval_s, step_s in ((0.0, 0.1), (1.0, 0.0), (-1.0, 0.1)):
        s.space_evals(eval_s, step_s)
        assert s.eval_every == 200
    cheap = Syllabus(eval_every=5)
    cheap.space_evals(eval_s=0.001, step_s=0.09)  # within the share already: left as it is
    assert cheap.eval_every == 5
    cheap.space_evals(eval_s=100.0, step_s=0.01)  # however slow, evaluations still come
    assert cheap.eval_every == MAX_EVAL_EVERY


def test_a_timed_run_ends_its_decay_near_its_end_and_evaluates_within_its_share(
    small_library: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a tiny library's evaluation costs about a step, 5 steps of which are over the real share by
    # only ~5x; a fifth of it keeps the spacing certain on a slow machine (the rule: above)
    monkeypatch.setattr("school.syllabus.EVAL_SHARE", EVAL_SHARE / 5)
    tutor = make_tutor(small_library, decay_steps=100_000, warmup_steps=5, log_every=5, eval_every=5)
    tutor.options.minutes = 0.08
    steps: list[StepEvent] = []
    evals: list[EvalEvent] = []
    tutor.subscribe(lambda e: steps.append(e) if isinstance(e, StepEvent) else None)
    tutor.subscribe(lambda e: evals.append(e) if isinstance(e, EvalEvent) else None)
    tutor.run()
    syl = tutor.syllabus
    assert syl.decay_steps < 100_000  # fitted to the ~5 s this machine gives
    # the last logged lr is in the cosine's last stretch, not still near its peak
    assert steps[-1].lr < syl.min_lr + 0.25 * (syl.lr - syl.min_lr)
    assert syl.eval_every > 5 and tutor.step > 30
    assert len(evals) < tutor.step / 10  # not one every 5 steps
    # the last evaluation's pace refitted the decay: it ends with the time, evaluations included
    assert syl.decay_steps - tutor.step < 0.25 * tutor.step


def test_a_pause_is_not_spent_from_the_minutes(small_library: Path) -> None:
    tutor = make_tutor(small_library, log_every=1, eval_every=10_000)
    tutor.options.minutes = 0.03  # 1.8 s of training
    thread = threading.Thread(target=tutor.run)
    thread.start()
    wait_for(lambda: tutor.step >= 3)
    tutor.send(Pause())
    wait_for(lambda: tutor.state == "paused")
    paused_at = tutor.step
    threading.Event().wait(2.5)  # longer than the whole budget
    tutor.send(Resume())
    resumed = time.monotonic()
    thread.join(60)
    # logged steps after the pause (each resets the speed's clock) must not hand the pause back
    assert time.monotonic() - resumed > 0.5 and tutor.step > paused_at + 5
