"""The tutor: the training loop as an object that the CLI, the app's trainer process and tests drive.

It takes typed commands (school.commands) on a thread-safe queue and emits typed events
(school.events) to its subscribers. `prepare()` builds every part it has (classroom, brain,
optimizer, checkpointer, speaker, ...) in one place. Everything it needs to resume exactly (weights,
optimizer, step, RNG states, data position, metabolism) is in its checkpoints.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from brain import Brain, build_brain, config_from_dict
from school import memory
from school.calligraphist import Calligraphist
from school.checkpointer import Checkpointer
from school.classroom import Classroom, open_classroom
from school.cohort import Cohort, join_cohort
from school.commands import (
    Attend,
    CancelChat,
    Chat,
    Command,
    Correct,
    Pause,
    Resume,
    Save,
    Steer,
    Stop,
    Teach,
    XRayRequest,
)
from school.compiler import Compiled, maybe_compile
from school.counsellor import Counsellor, RunLog, prune_logs
from school.events import (
    ErrorEvent,
    EvalEvent,
    Event,
    GuessEvent,
    PixelEvent,
    PlateauEvent,
    ProgressEvent,
    StateEvent,
    StepEvent,
    TrainerState,
    XRayEvent,
)
from school.inbox import Inbox
from school.librarian import Librarian
from school.metabolism import Metabolism, MetabolismReading
from school.options import TrainOptions
from school.plateau import Plateau, Verdict
from school.scribe import Scribe
from school.speaker import Speaker
from school.syllabus import Syllabus
from school.update_sizes import measure, snapshot
from school.xray.learning import learning_of
from soul import checkpoint as ckpt
from soul import codec
from soul.best_self import BEST, forget_best, read_best
from soul.chat_log import ChatLog
from soul.jsonl import append_jsonl
from soul.lock import BabyLock
from soul.milestones import is_milestone, load_milestone
from soul.paths import BabyPaths, SoulError, baby_paths
from soul.record import BabyRecord
from soul.resume_state import ResumeState

Subscriber = Callable[[Event], None]
ROLLBACK_AFTER = 3  # consecutive non-finite steps before rolling back to the last checkpoint
RETURN_MARGIN = 0.01
"""On a plateau, live weights this many bits/byte worse held-out than the best self go back to it."""
FIT_AFTER_STEPS = 20
"""With --minutes, the schedule is fitted to the time left once this many steps (after the first,
which may compile) have been timed (Syllabus.fit_to_time)."""
MID_STEP_COMMANDS = (Chat, Attend, CancelChat)
"""What may be answered mid-step or mid-evaluation (`_serve_chats`): a reply, what one token of it
looked at, and its cancel, none of which moves anything; a pause, a save, a correction, an x-ray
or a steer waits for the step to end."""


class Tutor:
    """Teaches one baby. `run()` trains until stopped; each piece is also callable on its own.

    The parts below are built by `prepare()`, together, from the baby's classroom.
    """

    room: Classroom
    cohort: Cohort
    syllabus: Syllabus
    paths: BabyPaths
    librarian: Librarian
    model: Brain
    learner: torch.nn.Module
    """What the training step runs: the model, wrapped for DDP or compiled."""
    optimizer: torch.optim.Optimizer
    checkpointer: Checkpointer
    batch_gen: torch.Generator
    rng: random.Random
    metabolism: Metabolism
    pixel: torch.Tensor
    pixel_target: torch.Tensor
    calligraphist: Calligraphist
    scribe: Scribe
    speaker: Speaker
    chat_log: ChatLog
    plateau: Plateau
    """The watch over held-out scores: the best self, and when to adapt."""
    val_batches: list[tuple[torch.Tensor, torch.Tensor]]
    token_bytes: torch.Tensor
    run_id: str
    _reading: MetabolismReading

    def __init__(
        self,
        options: TrainOptions,
        commands: Any = None,
        clock: Callable[[], float] = time.time,
        syllabus_overrides: dict[str, Any] | None = None,
        brain_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.options = options
        self.inbox = Inbox(commands, self.warn)
        self.clock = clock
        self.syllabus_overrides = syllabus_overrides or {}
        self.brain_overrides = brain_overrides or {}  # for a new baby only (tests, benchmarks)
        self.subscribers: list[Subscriber] = []
        self.counsellor = Counsellor()
        self.state = TrainerState.STARTING
        self.step = 0
        self.tokens_seen = 0
        self.elapsed_s = 0.0
        self._stopping = False
        self._recent_losses: list[float] = []
        self._bad_streak = 0
        self._rolled_back = False
        """Whether the last run of bad steps rolled back, with no good step since."""
        self._chat_s = 0.0  # chat answered mid-step or mid-evaluation (_serve_chats), kept out of timings
        self._pause_error: Exception | None = None  # a reply's, raised mid-step: see _pause
        self.lr_scale = 1.0
        self._log_broken = False
        self._prepared = False
        self.updates: dict[str, Any] | None = None
        """The last logged step's update sizes per layer, {"step", "updates"}: what the x-ray shows."""

    # -- wiring ---------------------------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> None:
        self.subscribers.append(fn)

    @property
    def commands(self) -> Any:
        """The queue commands arrive on (as `Command.to_dict()` output)."""
        return self.inbox.queue

    def send(self, command: Command) -> None:
        self.inbox.put(command)

    def emit(self, event: Event) -> None:
        for fn in list(self.subscribers):
            fn(event)

    def _set_state(self, state: TrainerState, detail: str = "") -> None:
        self.state = state
        self.emit(StateEvent(self.step, state.value, detail))

    # -- setting up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Open (or create) the baby's soul, its library, brain and optimizer; resume if it has lived."""
        if self._prepared:
            return

        def progress(task: str, done: float, detail: str = "") -> None:
            self.emit(ProgressEvent(self.step, task, done, detail))

        self.cohort = join_cohort(self.options.device)
        if not self.cohort.lead:
            self.cohort.barrier()  # the lead gives birth (tokenizer, corpus, config) first
        self.room = open_classroom(
            self.options,
            self.syllabus_overrides,
            self.brain_overrides,
            progress,
            self.warn,
            readonly=not self.cohort.lead,
        )
        if self.cohort.lead:
            self.cohort.barrier()
        room = self.room
        self.syllabus = room.syllabus
        self.paths = room.paths
        self.librarian = room.librarian
        torch.manual_seed(self.options.seed)  # before the brain is built: its first weights follow the seed
        self.librarian.scribe_max_share = self.syllabus.scribe_max_share
        self.librarian.bpe_dropout = self.syllabus.bpe_dropout
        self.model = build_brain(config_from_dict(room.record.brain)).to(room.device)
        self.optimizer = make_optimizer(self.model, self.syllabus, room.device)
        self.batch_gen = torch.Generator().manual_seed(self.options.seed + 1_000_003 * self.cohort.rank)
        self.rng = random.Random(self.options.seed)
        self.metabolism = Metabolism()
        self.pixel = torch.full((3,), 0.5, device=room.device)
        self.pixel_target = torch.full((3,), 0.5, device=room.device)
        self.calligraphist = Calligraphist()
        self.scribe = Scribe(self.calligraphist, self.rng)
        self.speaker = Speaker(self)
        self.chat_log = ChatLog(self.paths.chat)
        self.checkpointer = Checkpointer(
            self.paths,
            self.model,
            self.optimizer,
            room.device,
            save_minutes=self.syllabus.save_minutes,
            milestone_keep=self.syllabus.milestone_keep,
            warn=self.warn,
        )
        self.val_batches = [
            (x.to(room.device), y.to(room.device))
            for x, y in self.librarian.val_batches(
                self.syllabus.batch_size, self.block_size, self.syllabus.eval_batches
            )
        ]
        self.held_in_batches = [  # half as many: enough for the gap, at half the extra eval cost
            (x.to(room.device), y.to(room.device))
            for x, y in self.librarian.held_in_batches(
                self.syllabus.batch_size, self.block_size, max(1, self.syllabus.eval_batches // 2)
            )
        ]
        self.token_bytes = self.librarian.token_bytes.to(room.device)
        self.plateau = Plateau(patience=self.syllabus.plateau_patience)
        self._prepared = True
        self._resume()
        self._settle_best_self()
        self._apply_weight_decay()
        self.learner = maybe_compile(  # what the training step runs
            self.cohort.wrap(self.model, room.device),
            self.options.compile,
            room.device,
            on_start=lambda: self.emit(
                ProgressEvent(self.step, "compile", 0.0, "compiling the training step (once per run)")
            ),
            on_warmup=lambda s: self.emit(
                ProgressEvent(self.step, "compile", 1.0, f"warm-up took {s:.1f} s")
            ),
            on_fallback=self.warn,
            steps_left=self.options.steps,  # of this run, as the budget counts them (not the baby's age)
            minutes=self.options.minutes,
        )
        if self.cohort.world == 1:  # a torchrun run is headless: nobody chats with its ranks
            self.model.pause = self._pause  # a reply waits for a layer, not a whole step
        memory.give_back()  # what the probes and the tokenizer's training freed

    @property
    def block_size(self) -> int:
        return self.model.config.max_seq_len

    def warn(self, message: str) -> None:
        self.emit(ErrorEvent(self.step, message, fatal=False))

    # -- what the speaker needs (school.chat_host.ChatHost) -------------------------------------

    @property
    def tokenizer(self) -> Tokenizer:
        return self.librarian.tokenizer

    @property
    def weights(self) -> str:
        return f"live (step {self.step})"

    @property
    def record(self) -> BabyRecord:
        return self.room.record

    def interrupts(self, reply_id: str) -> bool:
        return self.inbox.interrupts(reply_id)

    def milestone(self, step: int | str) -> Brain:
        tensors = load_milestone(self.paths.milestones, step, str(self.room.device))
        model = build_brain(config_from_dict(self.room.record.brain)).to(self.room.device)
        ckpt.load_model_tensors(model, tensors)
        return model

    def learn(self, text: str, source: str) -> None:
        self.librarian.add_text(text, source)

    # -- one step of school ---------------------------------------------------------------------

    def train_step(self) -> dict[str, float]:
        """One optimizer step on a fresh batch; returns its stats."""
        syl, model = self.syllabus, self.model
        with self.counsellor.time("batch"):
            x, y = self.librarian.batch(syl.batch_size, self.block_size, self.batch_gen, syl.extra_fraction)
            x, y = x.to(self.room.device, non_blocking=True), y.to(self.room.device, non_blocking=True)
        lr = syl.lr_at(self.step) * self.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with self.counsellor.time("forward"), self.room.autocast():
            if model.scores_targets:  # head and loss fused: no (B, T, V) logits (brain/head_loss.py)
                lm_loss, pixel_pred, accuracy = self.learner(x, self.pixel, y)
            else:
                logits, pixel_pred = self.learner(x, self.pixel)
                lm_loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
                # every 8th position is plenty for a running accuracy, at 1/8 of the argmax's cost
                accuracy = (logits.detach()[:, ::8].argmax(-1) == y[:, ::8]).float().mean()
            pixel_loss = F.mse_loss(pixel_pred, self.pixel_target.expand_as(pixel_pred))
            loss = lm_loss + syl.pixel_weight * pixel_loss
        self.optimizer.zero_grad(set_to_none=True)  # the last step's gradients go before a reply's cache
        self._serve_chats()  # the weights stay the last step's until the optimizer moves them
        with self.counsellor.time("backward"):
            try:
                loss.backward()
            except Exception as e:  # a compiled step's backward compiles at its first call
                if isinstance(self.learner, Compiled) and self.learner.backward_failed(e):
                    self.optimizer.zero_grad(set_to_none=True)
                    return self.train_step()
                raise
            self._raise_pause_error()  # before the optimizer: the weights stay the last step's
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), syl.grad_clip)
            # the guard stays on the device: a fused AdamW skips its update (and its step count)
            # when found_inf is 1, so a non-finite step never reaches the weights without the host
            # waiting for the loss first; other optimizers are guarded on the host
            finite = torch.isfinite(loss.detach()) & torch.isfinite(grad_norm)
            if self.optimizer.defaults.get("fused"):
                self.optimizer.found_inf = (~finite).float()
                self.optimizer.step()
            elif bool(finite):
                self.optimizer.step()
        # one read-back per step, after the whole step is queued
        loss_v, acc_v, gn_v, total_v = torch.stack(
            [lm_loss.detach(), accuracy, grad_norm.detach().float(), loss.detach().float()]
        ).tolist()
        if not math.isfinite(total_v):
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip("loss", total_v)
        if not math.isfinite(gn_v):
            self.optimizer.zero_grad(set_to_none=True)
            return self._skip("gradient norm", gn_v)
        self._bad_streak, self._rolled_back = 0, False
        reading = self.metabolism.update(loss_v, acc_v, self.step, self.clock())
        self.pixel = pixel_pred.detach().float().mean(0)  # what it felt is what it feels next
        self.pixel_target = torch.tensor(reading.rgb, device=self.room.device)
        self.step += 1
        self.tokens_seen += x.numel()
        self._recent_losses.append(loss_v)
        self._reading = reading
        return {"loss": loss_v, "accuracy": acc_v, "grad_norm": gn_v, "lr": lr}

    def _skip(self, what: str, value: float) -> dict[str, float]:
        """A non-finite step never reaches the weights; a run of them rolls back and slows down."""
        self._bad_streak += 1
        self.warn(f"non-finite {what} ({value}) at step {self.step}: step skipped")
        if self._bad_streak >= ROLLBACK_AFTER:
            self._bad_streak = 0
            self.lr_scale *= 0.5
            if self._rolled_back:  # the checkpoint it went back to fails too: its weights are the trouble
                best = self.checkpointer.back_to_best()
                where = (
                    f"the checkpoint fails too: back to its best self (step {best.step:,})"
                    if best is not None
                    else "the checkpoint fails too, and there is no best self to go back to"
                )
            else:
                try:
                    found = self.checkpointer.resume()
                except SoulError:  # checkpoints, but none usable: as good as none
                    found = None
                self._rolled_back = found is not None
                if found is not None:
                    self.step, self.tokens_seen = found.state.step, found.state.tokens_seen
                where = f"rolled back to step {self.step}" if found else "no checkpoint to roll back to"
            self.warn(f"{ROLLBACK_AFTER} bad steps in a row: {where}; learning rate now ×{self.lr_scale:g}")
        return {"skipped": 1.0, "loss": float("nan"), "accuracy": 0.0, "grad_norm": float("nan"), "lr": 0.0}

    @torch.no_grad()
    def evaluate(self) -> EvalEvent:
        """Held-out loss (nats per token) and bits per byte over fixed validation windows, and the
        same bits per byte on fixed training windows in the same pass (eval mode: no dropout)."""
        self.model.eval()
        val_loss, val_bpb = self._score(self.val_batches)
        _, train_bpb = self._score(self.held_in_batches)
        self.model.train()
        train_loss = sum(self._recent_losses) / max(1, len(self._recent_losses))
        self._recent_losses.clear()
        return EvalEvent(self.step, val_loss, val_bpb, train_loss, train_bpb)

    @torch.no_grad()
    def _score(self, batches: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
        """Nats per token and bits per UTF-8 byte of the text the targets stand for."""
        total_loss, total_bytes, total_tokens = 0.0, 0.0, 0
        for x, y in batches:
            self._serve_chats()  # an evaluation is ~9 steps' work: a reply does not wait it out
            logits, _ = self.model(x)
            total_loss += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
            total_bytes += self.librarian.scored_bytes(self.token_bytes, x, y).item()
            total_tokens += y.numel()
        return total_loss / max(1, total_tokens), total_loss / (math.log(2) * max(1.0, total_bytes))

    def _fit_to_time(self, step_s: float, seconds_left: float, eval_s: float = 0.0) -> None:
        """Fit what is left of the schedule to a timed run's pace and, after an evaluation, space
        the evaluations to its cost (Syllabus.space_evals). The pace measured before any
        evaluation leaves them out, so each evaluation refits the decay to end with the time.
        Every rank takes the lead's figures: learning rates that differ by a step move the
        weights apart."""
        step_s, seconds_left, eval_s = self.cohort.agree(step_s, seconds_left, eval_s)
        self.syllabus.space_evals(eval_s, step_s)  # nothing to space before an evaluation (0 s)
        self.syllabus.fit_to_time(self.step, step_s, seconds_left)

    # -- knowing when it memorises ---------------------------------------------------------------

    def _after_eval(self, event: EvalEvent | None) -> None:
        """Show the eval; keep a new best as the best self; adapt on a plateau (every rank alike).

        `event` is None on the ranks that do not evaluate: they learn of a plateau from the lead.
        """
        p, verdict, lr_before = self.plateau, Verdict.WAITING, self.plateau.lr_scale
        if event is not None:
            self.emit(event)
            verdict = p.observe(event.step, event.val_bpb)
        if self.cohort.world > 1:  # every rank adapts at the same step, or their weights drift apart
            plateau = self.cohort.any(verdict == Verdict.PLATEAU)
            if plateau and event is None:
                p.adapt()
            verdict = Verdict.PLATEAU if plateau else verdict
        if event is not None and p.best_step == event.step:  # the best held-out score yet
            self.calligraphist.memorising = False
            self.emit(self.checkpointer.save_best(self.step, event.val_bpb, self.librarian.validation_id))
        if verdict == Verdict.PLATEAU:
            self.lr_scale *= p.lr_scale / lr_before
            self._apply_weight_decay()
            self.calligraphist.memorising = True
            worse = event is not None and event.val_bpb - p.best >= RETURN_MARGIN and p.best_step != self.step
            returned = self._return_to_best_self() if self.cohort.any(worse) else False
            decay = self.syllabus.weight_decay * p.decay_scale
            self.emit(PlateauEvent(self.step, p.best_step, p.best, p.patience, p.lr_scale, decay, returned))

    def _return_to_best_self(self) -> bool:
        """Set the live weights back to the best self's (every rank alike), keeping the step count,
        the optimizer's moments and the schedule: Keras's restore_best_weights, on a plateau.

        Without it a small library's live baby, trained on, drifts ever further into learning its
        text by heart (a 190 KB folder: held-out 2.221 at its best, 2.334 five minutes later, with
        its own text at 0.89); from its best self, more gently, it stays near that best.
        """
        try:
            tensors = load_milestone(self.paths.milestones, BEST, str(self.room.device))
            ckpt.load_model_tensors(self.model, tensors)
        except SoulError as e:
            self.warn(f"could not go back to its best self ({e}); training on from here")
            return False
        return True

    def _apply_weight_decay(self) -> None:
        """The syllabus's weight decay times the plateau's factor, on the matrices' group."""
        for group in self.optimizer.param_groups:
            if group["params"] and all(q.dim() >= 2 for q in group["params"]):
                group["weight_decay"] = self.syllabus.weight_decay * self.plateau.decay_scale

    def _settle_best_self(self) -> None:
        """A best self scored on other held-out text (a new library) is no rival: start over."""
        best = read_best(self.paths.milestones)
        if best is not None and best.validation != self.librarian.validation_id:
            if self.cohort.lead:
                forget_best(self.paths.milestones)
            self._start_over()
        elif best is not None and best.val_bpb < self.plateau.best:  # kept after the last checkpoint
            self.plateau.best, self.plateau.best_step = best.val_bpb, best.step
            self.plateau.mark = min(self.plateau.mark, best.val_bpb)
        elif best is None and math.isfinite(self.plateau.best):  # its best self is gone
            self._start_over()

    def _start_over(self) -> None:
        """Forget the plateau, and undo its slower learning rate (a rollback's factor stays)."""
        self.lr_scale /= self.plateau.lr_scale
        self.plateau.start_over()

    def guess(self) -> None:
        """Let the baby continue a training snippet; the scribe comments, and learns from it too."""
        prompt, truth = self.librarian.sample_snippet(48, self.batch_gen)
        guess = self.speaker.greedy(prompt, len(truth))
        match = sum(int(a == b) for a, b in zip(guess, truth, strict=False)) / max(1, len(truth))
        dec = self.librarian.decode
        event = GuessEvent(self.step, dec(prompt[-24:]), dec(guess), dec(truth), match)
        self.emit(event)
        said = self.scribe.comment(self.step, event.guess, event.truth, match)
        if said is not None:
            self.emit(said)
            self.librarian.add_text(said.line, "scribe")
            append_jsonl(self.paths.scribe, said.to_dict())

    # -- the loop -------------------------------------------------------------------------------

    def run(self, should_continue: Callable[[], bool] | None = None) -> None:
        """Train until a stop command, the step or time budget, or should_continue() turns False.

        Holds the baby's lock while it trains: a second trainer of the same baby is refused with a
        line naming this process.
        """
        lock = None
        if not self._prepared and int(os.environ.get("RANK", "0")) == 0:
            lock = BabyLock(baby_paths(self.options.baby, self.options.home), log=self.warn)
            lock.acquire(" ".join([Path(sys.argv[0]).name, *sys.argv[1:]])[:200])
        try:
            self._run(should_continue)
        finally:
            if lock is not None:
                lock.release()

    def _run(self, should_continue: Callable[[], bool] | None) -> None:
        self.prepare()
        if not self.cohort.lead:  # the lead alone writes the soul and speaks
            self.subscribers.clear()
            clean = False
            try:
                self._loop(should_continue)
                clean = True
            finally:
                self.cohort.leave(together=clean)
            return
        for old in prune_logs(self.paths.logs, self.syllabus.logs_max_mb * 2**20):
            self.warn(f"old run log {old.name} removed: logs are kept under {self.syllabus.logs_max_mb} MB")
        log = RunLog(self.paths.logs)
        self.run_id = log.run_id

        def write_log(event: Event) -> None:
            if isinstance(event, XRayEvent):  # an answer for one screen, megabytes of numbers
                return
            try:
                log.write(event)
            except OSError as e:  # a full disk costs log lines, never the training
                if not self._log_broken:
                    self._log_broken = True
                    self.warn(f"cannot write the run log ({e.strerror or e}); training goes on")

        self.subscribe(write_log)
        clean = False
        try:
            self._loop(should_continue)
            clean = True
        except Exception as e:
            self.emit(ErrorEvent(self.step, f"{type(e).__name__}: {e}", fatal=True))
            raise
        finally:
            self.subscribers.remove(write_log)
            self.cohort.leave(together=clean)

    def _loop(self, should_continue: Callable[[], bool] | None) -> None:
        syl, opts = self.syllabus, self.options
        self._set_state(TrainerState.TRAINING, self.room.hello(self.model))
        run_start = last_check = last_log_t = timed_from = time.monotonic()
        paused_before = 0.0
        # paused_for: this run's pauses (off the --minutes budget); paused_since_log: off the speed
        paused_for = paused_since_log = 0.0
        last_log_tokens, steps_this_run = self.tokens_seen, 0
        eval_s = math.inf
        while True:
            self._serve_commands()
            now = time.monotonic()
            if now - last_check > 0.5:
                last_check = now
                if should_continue is not None and not should_continue():
                    self._stopping = True
            if self.cohort.world > 1:  # every rank stops at the same step, or DDP waits for ever
                budget_spent = (opts.steps is not None and steps_this_run >= opts.steps) or (
                    opts.minutes is not None and now - run_start >= opts.minutes * 60
                )
                self._stopping = self.cohort.any(self._stopping or budget_spent)
            if self._stopping:
                break
            if self.state == TrainerState.PAUSED:
                t0 = time.monotonic()
                if (command := self.inbox.wait(0.05)) is not None:
                    self.handle(command)
                paused_for += time.monotonic() - t0
                paused_since_log += time.monotonic() - t0
                continue
            if (opts.steps is not None and steps_this_run >= opts.steps) or (
                opts.minutes is not None and now - run_start - paused_for >= opts.minutes * 60
            ):
                break
            # a logged step also records how far it moved each layer (a copy of the weights first)
            before = snapshot(self.model) if (self.step + 1) % syl.log_every == 0 else None
            t0, self._chat_s = time.monotonic(), 0.0
            stats = self.train_step()
            steps_this_run += 1
            self.elapsed_s += time.monotonic() - t0 - self._chat_s
            if steps_this_run == 1:  # the first step may have compiled: time the steps after it
                memory.give_back()  # and what compiling it freed
                timed_from, paused_before = time.monotonic(), paused_for
            elif steps_this_run == FIT_AFTER_STEPS + 1 and opts.minutes is not None:
                now = time.monotonic()
                # chat included, pauses not (and no evaluation yet: each one refits below)
                step_s = (now - timed_from - (paused_for - paused_before)) / FIT_AFTER_STEPS
                self._fit_to_time(step_s, opts.minutes * 60 - (now - run_start - paused_for))
            if stats.get("skipped"):
                continue
            if before is not None:
                self.updates = {"step": self.step, "updates": measure(self.model, before)}
            self.speaker.after_step()
            if self.step % syl.log_every == 0:
                now = time.monotonic()
                tps = (self.tokens_seen - last_log_tokens) / max(1e-9, now - last_log_t - paused_since_log)
                last_log_t, last_log_tokens, paused_since_log = now, self.tokens_seen, 0.0
                self._emit_step(stats, tps)
            if self.step % syl.eval_every == 0:
                eval_start, self._chat_s = time.monotonic(), 0.0
                event = self.evaluate() if self.cohort.lead else None
                # the cheapest evaluation yet (a reply it answered left out): one slowed by the
                # machine must not space them for good
                eval_s = min(eval_s, time.monotonic() - eval_start - self._chat_s)
                self._after_eval(event)
                memory.give_back()  # an eval's batches are the largest temporaries there are
                if opts.minutes is not None and steps_this_run > FIT_AFTER_STEPS:
                    now = time.monotonic()  # the pace since the first step, evaluations included
                    pace = (now - timed_from - (paused_for - paused_before)) / (steps_this_run - 1)
                    left = opts.minutes * 60 - (now - run_start - paused_for)
                    self._fit_to_time(pace, left, eval_s=eval_s)
            if not self.cohort.lead:
                continue
            if self.step % syl.guess_every == 0:
                self.guess()
            if is_milestone(self.step, syl.milestone_every):
                self.save_milestone()
            if self.step % syl.save_every == 0 or self.checkpointer.due():
                self.save("autosave")
        self.save("stop")
        self._set_state(TrainerState.STOPPED)

    def _emit_step(self, stats: dict[str, float], tokens_per_s: float) -> None:
        r = self._reading
        pred, target = tuple(self.pixel.tolist()), tuple(self.pixel_target.tolist())
        self.emit(
            StepEvent(
                self.step,
                stats["loss"],
                stats["lr"],
                stats["grad_norm"],
                stats["accuracy"],
                self.tokens_seen,
                tokens_per_s,
                self.elapsed_s,
                pred,
                target,
            )
        )
        self.emit(PixelEvent(self.step, pred, target, r.loss_ratio, r.trend, r.accuracy, r.pulse))

    # -- commands -------------------------------------------------------------------------------

    def _serve_commands(self) -> None:
        while (command := self.inbox.next()) is not None:
            self.handle(command)

    def _serve_chats(self) -> None:
        """Answer a chat waiting now, in the middle of a step or an evaluation, rather than after
        it: a 1 MB library's step takes ~200 ms on 2 cores and its first reply token 6 ms. A step
        calls this after every layer of its forward and again of its backward (the brain's
        `pause`), and between the two; an evaluation between its batches. Only
        the chat's own commands jump in, and only while they are first in line. The time they take
        adds to `_chat_s`, which the loop keeps out of the step's and the evaluation's timings."""
        t0 = time.monotonic()
        while (command := self.inbox.next_of(MID_STEP_COMMANDS)) is not None:
            self.handle(command)
        self._chat_s += time.monotonic() - t0

    def _pause(self) -> None:
        """The brain's pause: `_serve_chats` inside the step. An error a reply raises there is kept
        and raised once the backward is done (`_raise_pause_error`): inside a compiled step's first
        forward or backward it would be taken for a compile failure, and training would fall back
        to eager steps under a false "torch.compile failed"."""
        if self._pause_error is not None:
            return
        try:
            self._serve_chats()
        except Exception as e:
            self._pause_error = e

    def _raise_pause_error(self) -> None:
        if self._pause_error is not None:
            error, self._pause_error = self._pause_error, None
            raise error

    def handle(self, command: Command) -> None:
        match command:
            case Pause() if self.state == TrainerState.TRAINING:
                self._set_state(TrainerState.PAUSED)
            case Resume() if self.state == TrainerState.PAUSED:
                self._set_state(TrainerState.TRAINING)
            case Pause() | Resume():
                pass  # already so
            case Save():
                self.save("manual")
            case Stop():
                self._stopping = True
            case Chat():
                self.speaker.reply(command)
            case Correct():
                self.speaker.correct(command)
            case Attend():
                self.speaker.attend(command)
            case XRayRequest():
                self.speaker.xray(command, learning_of(self.paths, command.weights, self.updates))
            case Steer():
                self.speaker.steer(command)
            case Teach():
                self.speaker.teach(command)
            case CancelChat():
                pass  # the reply it meant has already finished
            case _:
                self.warn(f"unknown command {command.kind!r}")

    # -- keeping what was learned (the checkpointer does the writing) ----------------------------

    def resume_state(self) -> ResumeState:
        """Everything besides tensors that an exact resume needs."""
        return ResumeState(
            step=self.step,
            tokens_seen=self.tokens_seen,
            elapsed_s=self.elapsed_s,
            rng_batch=codec.tensor_to_bytes(self.batch_gen.get_state()),
            rng_torch=codec.tensor_to_bytes(torch.get_rng_state()),
            rng_python=codec.random_state_to_json(self.rng.getstate()),
            metabolism=self.metabolism.state_dict(),
            pixel=self.pixel.tolist(),
            pixel_target=self.pixel_target.tolist(),
            lr_scale=self.lr_scale,
            updates=self.updates,
            plateau=self.plateau.state_dict(),
        )

    def _resume(self) -> None:
        resumed = self.checkpointer.resume()
        if resumed is None:
            return
        for w in resumed.warnings:
            self.warn(w)
        s = resumed.state
        self.step, self.tokens_seen, self.elapsed_s = s.step, s.tokens_seen, s.elapsed_s
        # an adopted baby (or an older soul) may lack some of this: start fresh there
        if self.cohort.lead and s.rng_batch is not None:
            self.batch_gen.set_state(codec.bytes_to_tensor(s.rng_batch))
        elif not self.cohort.lead:  # the checkpoint holds the lead's data position; the others take their own
            self.batch_gen.manual_seed(hash((self.options.seed, self.cohort.rank, self.step)) % 2**62)
        if s.rng_torch is not None:
            torch.set_rng_state(codec.bytes_to_tensor(s.rng_torch))
        if s.rng_python is not None:
            self.rng.setstate(codec.json_to_random_state(s.rng_python))
        self.metabolism.load_state_dict(s.metabolism)
        if s.pixel is not None and s.pixel_target is not None:
            self.pixel = torch.tensor(s.pixel, device=self.room.device)
            self.pixel_target = torch.tensor(s.pixel_target, device=self.room.device)
        self.lr_scale = s.lr_scale
        self.updates = s.updates
        self.plateau.load_state_dict(s.plateau)

    def save(self, reason: str) -> None:
        if not self.cohort.lead:
            return
        previous = self.state
        self._set_state(TrainerState.SAVING, reason)
        self.emit(self.checkpointer.save(self.resume_state(), reason))
        self._set_state(previous if previous != TrainerState.SAVING else TrainerState.TRAINING)

    def save_milestone(self) -> None:
        """A snapshot of the weights alone, for talking to an earlier self."""
        if self.cohort.lead:
            self.emit(self.checkpointer.save_milestone(self.step, self.updates))


def make_optimizer(model: torch.nn.Module, syl: Any, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; matrices decay, norms, gains and biases do not (as nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": syl.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=syl.lr, betas=(0.9, syl.beta2), fused=device.type in ("cpu", "cuda"))
