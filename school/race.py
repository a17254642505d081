"""The race: fresh babies of several brains learn the same library in turns, on one fair clock.

Every baby `race-BRAIN` reads the same library through the same tokenizer (learned once, by the
first, and copied into the others), so their held-out bits per byte are measured on the same
validation windows and can be drawn on one plot. They take turns in this one process (separate
processes would fight over two cores): round robin, a slice of a few seconds each, and each brain
trains until its own training seconds reach the round's shared target. A brain whose steps run
long overshoots and trains that much less next round, so at the end every brain's training
seconds lie within one step of the target. Evaluation after each turn is timed apart; the race
stops when its wall time (training plus evaluation, counted once every baby is born) is spent.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from brain import preset_config
from brain.generate import Sampling, generate
from school.events import ErrorEvent, Event
from school.options import TrainOptions
from school.rungs import DEFAULT_BRAINS, DEFAULT_PROMPT, check_brains
from school.syllabus import SYLLABI
from school.tokenizer import BOS_ID, EOS_ID
from school.tutor import Tutor
from soul.lock import BabyLock, holder
from soul.paths import SoulError, baby_paths
from soul.racer import grown_since_race, mark_raced
from soul.record import BabyRecord

EVAL_BATCHES = 4  # per evaluation: after every turn, so it must cost a fraction of a slice
MIN_SLICE = 0.25  # a last round shorter than this share of a slice is not worth its evaluations


@dataclass(frozen=True)
class RacePoint:
    """One brain's held-out bits per byte after `seconds` of its own training."""

    brain: str
    seconds: float
    val_bpb: float
    step: int


@dataclass(frozen=True)
class RaceAnswer:
    """One brain's greedy continuation of the race's prompt, once the race is over."""

    brain: str
    prompt: str
    answer: str


@dataclass(frozen=True)
class RaceResult:
    points: tuple[RacePoint, ...]
    answers: tuple[RaceAnswer, ...]
    train_seconds: dict[str, float]
    """Each brain's training seconds (steps only: no evaluation, no saving)."""
    eval_seconds: float
    wall_seconds: float
    """Training plus evaluation, from the first turn to the last."""
    babies: dict[str, str] = field(default_factory=dict)
    """brain -> baby name, to chat with afterwards."""

    def unfairness(self) -> float:
        """The largest relative gap between a brain's training seconds and their mean (0.1 = 10%)."""
        mean = sum(self.train_seconds.values()) / len(self.train_seconds)
        return max(abs(s - mean) for s in self.train_seconds.values()) / max(mean, 1e-9)

    def final(self, brain: str) -> RacePoint:
        return [p for p in self.points if p.brain == brain][-1]


def race_baby_name(brain: str) -> str:
    return f"race-{brain}"


def race(
    library: str | None,
    minutes: float,
    brains: Sequence[str] = DEFAULT_BRAINS,
    home: str | None = None,
    *,
    preset: str = "tiny",
    slice_s: float = 3.0,
    prompt: str = DEFAULT_PROMPT,
    answer_tokens: int = 40,
    device: str = "auto",
    threads: int | None = None,
    vocab_size: int | None = None,
    seed: int = 1337,
    on_point: Callable[[RacePoint], None] | None = None,
    on_answer: Callable[[RaceAnswer], None] | None = None,
    log: Callable[[str], None] | None = None,
    brain_overrides: dict[str, dict[str, Any]] | None = None,
    syllabus_overrides: dict[str, Any] | None = None,
    clock: Callable[[], float] = time.monotonic,
    replace: bool = False,
) -> RaceResult:
    """Race fresh babies `race-BRAIN` of `brains` on `library` for `minutes` of wall time.

    Args:
        slice_s: training seconds per turn; the last round shrinks to fit the time left.
        on_point: called with every evaluation, the newborn's first (seconds 0), as it happens.
        on_answer: called with each brain's answer to `prompt` at the end.
        log: where the tutors' warnings go (one line each).
        brain_overrides: per brain, config fields over the preset's (tests use tiny sizes).
        syllabus_overrides: over every baby's syllabus (batch size; eval_batches, EVAL_BATCHES
            unless given). Like every override, it holds for this race only.

    Existing `race-BRAIN` babies are replaced while they are as their last race left them; one
    trained on or talked to since, or not made by a race, is refused (SoulError) unless `replace`,
    and one that a trainer holds is refused always.
    """
    brains = check_brains(brains)
    if not minutes > 0:
        raise SoulError(f"--minutes must be positive, got {minutes:g}")
    emit_point = on_point or (lambda point: None)
    warn = log or (lambda message: None)
    overrides = brain_overrides or {}
    syllabus_overrides = {"eval_batches": EVAL_BATCHES, **(syllabus_overrides or {})}
    locks: list[BabyLock] = []
    tutors: dict[str, Tutor] = {}
    try:
        racers = [baby_paths(race_baby_name(brain), home) for brain in brains]
        for paths in racers:  # every racer checked before any is started over: a refusal touches none
            if (held := holder(paths)) is not None:
                who = f"pid {held['pid']}" if "pid" in held else "another process"
                raise SoulError(f"baby {paths.name!r} is being trained by {who}; stop it before racing")
            if not replace and (why := grown_since_race(paths)):
                raise SoulError(
                    f"baby {paths.name!r} is more than a racer now ({why}): a race would start it over; "
                    f"`babyterm race --replace` does so anyway, or move {paths.root} aside"
                )
        for paths in racers:
            shutil.rmtree(paths.root, ignore_errors=True)  # a race starts from newborns
            lock = BabyLock(paths, log=warn)
            lock.acquire(f"babyterm race {','.join(brains)}")
            locks.append(lock)
        first = None
        for brain in brains:
            options = TrainOptions(
                baby=race_baby_name(brain),
                home=home,
                library=library,
                brain=brain,
                preset=preset,
                device=device,
                threads=threads,
                seed=seed,
                vocab_size=vocab_size,
                compile="off",  # a compile warm-up would spend one racer's turns on the shared clock
            )
            if first is not None:  # born with the first one's tokenizer, so every bpb is comparable
                _give_birth_with(first, options, overrides.get(brain, {}))
            tutor = Tutor(
                options, syllabus_overrides=syllabus_overrides, brain_overrides=overrides.get(brain)
            )
            tutor.subscribe(_warnings_to(warn))
            tutor.prepare()
            mark_raced(tutor.paths)  # a race cut short leaves newborns a next race may replace
            tutors[brain] = tutor
            first = first or tutor
        return _run(tutors, minutes * 60, slice_s, prompt, answer_tokens, emit_point, on_answer, clock)
    finally:
        for lock in locks:
            lock.release()


def _give_birth_with(first: Tutor, options: TrainOptions, overrides: dict[str, Any]) -> None:
    """Write a baby's tokenizer and corpus (the first baby's) and birth record, as the classroom would."""
    paths = baby_paths(options.baby, options.home)
    shutil.copyfile(first.paths.tokenizer, paths.tokenizer)
    # the encoded corpus too: its manifest names the library and tokenizer, so it is trusted as is
    shutil.copytree(first.paths.corpus, paths.corpus, dirs_exist_ok=True)
    cfg = preset_config(options.brain, options.preset, first.librarian.vocab_size, **overrides)
    record = BabyRecord(cfg.to_dict(), options.preset, SYLLABI[options.preset].to_dict(), options.library)
    record.save(paths)


def _warnings_to(warn: Callable[[str], None]) -> Callable[[Event], None]:
    def forward(event: Event) -> None:
        if isinstance(event, ErrorEvent):
            warn(event.message)

    return forward


def _run(
    tutors: dict[str, Tutor],
    budget_s: float,
    slice_s: float,
    prompt: str,
    answer_tokens: int,
    emit_point: Callable[[RacePoint], None],
    on_answer: Callable[[RaceAnswer], None] | None,
    clock: Callable[[], float],
) -> RaceResult:
    trained = dict.fromkeys(tutors, 0.0)
    points: list[RacePoint] = []
    eval_s = 0.0

    def evaluate(brain: str) -> None:
        nonlocal eval_s
        t0 = clock()
        event = tutors[brain].evaluate()
        eval_s += clock() - t0
        point = RacePoint(brain, trained[brain], event.val_bpb, tutors[brain].step)
        points.append(point)
        emit_point(point)

    start = clock()
    for brain in tutors:
        evaluate(brain)
    round_eval_s = eval_s  # what one round of evaluations costs, re-measured every round
    target = 0.0
    while True:
        left = budget_s - (clock() - start) - round_eval_s
        this_slice = min(slice_s, left / len(tutors))
        if this_slice < MIN_SLICE * slice_s:
            break
        target += this_slice
        before = eval_s
        for brain, tutor in tutors.items():
            while trained[brain] < target:
                t0 = clock()
                tutor.train_step()
                dt = clock() - t0
                trained[brain] += dt
                tutor.elapsed_s += dt  # the baby's own training time, as `babyterm train` counts it
            evaluate(brain)
        round_eval_s = eval_s - before
    wall = clock() - start
    for tutor in tutors.values():
        tutor.save("stop")
        mark_raced(tutor.paths)
    answers = []
    for brain, tutor in tutors.items():
        answers.append(_answer(brain, tutor, prompt, answer_tokens))
        if on_answer is not None:
            on_answer(answers[-1])
    babies = {brain: tutor.options.baby for brain, tutor in tutors.items()}
    return RaceResult(tuple(points), tuple(answers), trained, eval_s, wall, babies)


def _answer(brain: str, tutor: Tutor, prompt: str, n: int) -> RaceAnswer:
    """The brain's greedy continuation of `prompt`, up to a blank line or </s>."""
    lib = tutor.librarian
    ids = [BOS_ID, *lib.encode(prompt)]

    def ends(produced: list[int]) -> bool:
        return produced[-1] == EOS_ID or lib.decode(produced[-3:]).endswith("\n\n")

    sampling = Sampling(temperature=0.0, top_k=None, max_tokens=n)
    produced = [c.id for c in generate(tutor.model, ids, sampling, tutor.pixel, stop=ends)]
    return RaceAnswer(brain, prompt, lib.decode(produced, continuation=True).strip())
