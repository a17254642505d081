"""The tutor: the training loop as an object that the CLI, the app's trainer process and tests drive.

It takes commands (pause, resume, save, stop, chat, chat_cancel, correct) on a thread-safe queue
and emits typed events (school.events) to its subscribers. Everything it needs to resume exactly
(weights, optimizer, step, RNG states, data position, metabolism) is in its checkpoints.
"""

from __future__ import annotations

import contextlib
import math
import os
import queue
import random
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from brain import build_brain, config_from_dict
from school.calligraphist import Calligraphist
from school.classroom import Classroom, open_classroom
from school.cohort import join_cohort
from school.counsellor import Counsellor, RunLog, prune_logs
from school.events import (
    ChatEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    GuessEvent,
    PixelEvent,
    ProgressEvent,
    StateEvent,
    StepEvent,
)
from school.keeper import Keeper
from school.metabolism import Metabolism
from school.options import TrainOptions
from school.scribe import Scribe
from school.speaker import Speaker
from soul import checkpoint as ckpt
from soul.jsonl import append_jsonl
from soul.lock import BabyLock
from soul.milestones import is_milestone
from soul.paths import baby_paths

Subscriber = Callable[[Event], None]
ROLLBACK_AFTER = 3  # consecutive non-finite steps before rolling back to the last checkpoint


class Tutor(Keeper):
    """Teaches one baby. `run()` trains until stopped; each piece is also callable on its own."""

    def __init__(
        self,
        options: TrainOptions,
        commands: Any = None,
        clock: Callable[[], float] = time.time,
        syllabus_overrides: dict[str, Any] | None = None,
        brain_overrides: dict[str, Any] | None = None,
    ) -> None:
        self.options = options
        self.commands = commands if commands is not None else queue.Queue()
        self.clock = clock
        self.syllabus_overrides = syllabus_overrides or {}
        self.brain_overrides = brain_overrides or {}  # for a new baby only (tests, benchmarks)
        self.subscribers: list[Subscriber] = []
        self.counsellor = Counsellor()
        self.state = "starting"
        self.step = 0
        self.tokens_seen = 0
        self.elapsed_s = 0.0
        self._stopping = False
        self._deferred: deque[dict[str, Any]] = deque()
        self._recent_losses: list[float] = []
        self._bad_streak = 0
        self.lr_scale = 1.0
        self._log_broken = False
        self.room: Classroom | None = None

    # -- wiring ---------------------------------------------------------------------------------

    def subscribe(self, fn: Subscriber) -> None:
        self.subscribers.append(fn)

    def send(self, command: dict[str, Any]) -> None:
        self.commands.put(command)

    def emit(self, event: Event) -> None:
        for fn in list(self.subscribers):
            fn(event)

    def _set_state(self, state: str, detail: str = "") -> None:
        self.state = state
        self.emit(StateEvent(self.step, state, detail))

    # -- setting up -----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Open (or create) the baby's soul, its library, brain and optimizer; resume if it has lived."""
        if self.room is not None:
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
            self._warn,
            readonly=not self.cohort.lead,
        )
        if self.cohort.lead:
            self.cohort.barrier()
        room = self.room
        self.syllabus = room.syllabus
        self.paths = room.paths
        self.librarian = room.librarian
        self.model = build_brain(config_from_dict(room.record.brain)).to(room.device)
        self.learner = self.cohort.wrap(self.model, room.device)  # what the training step runs
        if self.options.compile:
            self.learner = torch.compile(self.learner)
        self.optimizer = make_optimizer(self.model, self.syllabus, room.device)
        self.batch_gen = torch.Generator().manual_seed(self.options.seed + 1_000_003 * self.cohort.rank)
        self.rng = random.Random(self.options.seed)
        torch.manual_seed(self.options.seed)
        self.metabolism = Metabolism()
        self.pixel = torch.full((3,), 0.5, device=room.device)
        self.pixel_target = torch.full((3,), 0.5, device=room.device)
        self.calligraphist = Calligraphist()
        self.scribe = Scribe(self.calligraphist, self.rng)
        self.speaker = Speaker(self)
        self.val_batches = [
            (x.to(room.device), y.to(room.device))
            for x, y in self.librarian.val_batches(
                self.syllabus.batch_size, self.block_size, self.syllabus.eval_batches
            )
        ]
        self.token_bytes = self.librarian.token_bytes.to(room.device)
        self._resume()

    @property
    def block_size(self) -> int:
        return self.model.config.max_seq_len

    def _warn(self, message: str) -> None:
        self.emit(ErrorEvent(self.step, message, fatal=False))

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
            logits, pixel_pred = self.learner(x, self.pixel)
            lm_loss = F.cross_entropy(logits.float().flatten(0, 1), y.flatten())
            pixel_loss = F.mse_loss(pixel_pred, self.pixel_target.expand_as(pixel_pred))
            loss = lm_loss + syl.pixel_weight * pixel_loss
        with self.counsellor.time("backward"):
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
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
        # every 8th position is plenty for a running accuracy, at 1/8 of the argmax's cost
        accuracy = (logits.detach()[:, ::8].argmax(-1) == y[:, ::8]).float().mean()
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
        self._bad_streak = 0
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
        self._warn(f"non-finite {what} ({value}) at step {self.step}: step skipped")
        if self._bad_streak >= ROLLBACK_AFTER:
            self._bad_streak = 0
            self.lr_scale *= 0.5
            found = ckpt.load_latest(self.paths.checkpoints, self.room.device)
            if found is not None:
                ckpt.load_model_tensors(self.model, found.model)
                if found.optim:
                    self.optimizer.load_state_dict(found.optim)
                self.step, self.tokens_seen = found.state["step"], found.state["tokens_seen"]
            where = (
                f"rolled back to step {self.step}" if found is not None else "no checkpoint to roll back to"
            )
            self._warn(f"{ROLLBACK_AFTER} bad steps in a row: {where}; learning rate now ×{self.lr_scale:g}")
        return {"skipped": 1.0, "loss": float("nan"), "accuracy": 0.0, "grad_norm": float("nan"), "lr": 0.0}

    @torch.no_grad()
    def evaluate(self) -> EvalEvent:
        """Validation loss (nats per token) and bits per byte over fixed validation windows."""
        self.model.eval()
        total_loss, total_bytes, total_tokens = 0.0, 0.0, 0
        for x, y in self.val_batches:
            logits, _ = self.model(x)
            total_loss += F.cross_entropy(logits.float().flatten(0, 1), y.flatten(), reduction="sum").item()
            total_bytes += self.token_bytes[y].sum().item()
            total_tokens += y.numel()
        self.model.train()
        train_loss = sum(self._recent_losses) / max(1, len(self._recent_losses))
        self._recent_losses.clear()
        return EvalEvent(
            self.step,
            total_loss / total_tokens,
            total_loss / (math.log(2) * max(1.0, total_bytes)),
            train_loss,
        )

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
        if self.room is None and int(os.environ.get("RANK", "0")) == 0:
            lock = BabyLock(baby_paths(self.options.baby, self.options.home), log=self._warn)
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
            try:
                self._loop(should_continue)
            finally:
                self.cohort.leave()
            return
        for old in prune_logs(self.paths.logs, self.syllabus.logs_max_mb * 2**20):
            self._warn(f"old run log {old.name} removed: logs are kept under {self.syllabus.logs_max_mb} MB")
        log = RunLog(self.paths.logs)
        self.run_id = log.run_id

        def write_log(event: Event) -> None:
            try:
                log.write(event)
            except OSError as e:  # a full disk costs log lines, never the training
                if not self._log_broken:
                    self._log_broken = True
                    self._warn(f"cannot write the run log ({e.strerror or e}); training goes on")

        self.subscribe(write_log)
        try:
            self._loop(should_continue)
        except Exception as e:
            self.emit(ErrorEvent(self.step, f"{type(e).__name__}: {e}", fatal=True))
            raise
        finally:
            self.subscribers.remove(write_log)
            self.cohort.leave()

    def _loop(self, should_continue: Callable[[], bool] | None) -> None:
        syl, opts = self.syllabus, self.options
        self._set_state("training", self.room.hello(self.model))
        run_start = last_check = self._last_save = last_log_t = time.monotonic()
        paused_for, last_log_tokens, steps_this_run = 0.0, self.tokens_seen, 0
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
            if self.state == "paused":
                t0 = time.monotonic()
                self._wait_for_command(0.05)
                paused_for += time.monotonic() - t0
                continue
            if (opts.steps is not None and steps_this_run >= opts.steps) or (
                opts.minutes is not None and now - run_start - paused_for >= opts.minutes * 60
            ):
                break
            t0 = time.monotonic()
            stats = self.train_step()
            steps_this_run += 1
            self.elapsed_s += time.monotonic() - t0
            if stats.get("skipped"):
                continue
            if self.step % syl.log_every == 0:
                now = time.monotonic()
                tps = (self.tokens_seen - last_log_tokens) / max(1e-9, now - last_log_t - paused_for)
                last_log_t, last_log_tokens, paused_for = now, self.tokens_seen, 0.0
                self._emit_step(stats, tps)
            if not self.cohort.lead:
                continue
            if self.step % syl.eval_every == 0:
                self.emit(self.evaluate())
            if self.step % syl.guess_every == 0:
                self.guess()
            if is_milestone(self.step, syl.milestone_every):
                self.save_milestone()
            if self.step % syl.save_every == 0 or time.monotonic() - self._last_save > syl.save_minutes * 60:
                self.save("autosave")
        self.save("stop")
        self._set_state("stopped")

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

    def next_command(self) -> dict[str, Any] | None:
        if self._deferred:
            return self._deferred.popleft()
        try:
            return self.commands.get_nowait()
        except queue.Empty:
            return None

    def _wait_for_command(self, timeout: float) -> None:
        with contextlib.suppress(queue.Empty):
            self._deferred.append(self.commands.get(timeout=timeout))

    def _serve_commands(self) -> None:
        while (cmd := self.next_command()) is not None:
            self.handle(cmd)

    def handle(self, cmd: dict[str, Any]) -> None:
        name = cmd.get("cmd")
        if name == "pause" and self.state == "training":
            self._set_state("paused")
        elif name == "resume" and self.state == "paused":
            self._set_state("training")
        elif name == "save":
            self.save("manual")
        elif name == "stop":
            self._stopping = True
        elif name == "chat":
            self.speaker.reply(cmd)
        elif name == "correct":
            self.speaker.correct(cmd)
        elif name == "attend":
            self.speaker.attend(cmd)
        elif name == "chat_cancel":
            pass  # the reply it meant has already finished
        else:
            self._warn(f"unknown command {name!r}")

    def emit_chat(self, reply_id: str, text: str, **kw: Any) -> None:
        self.emit(ChatEvent(self.step, reply_id, text, **kw))


def make_optimizer(model: torch.nn.Module, syl: Any, device: torch.device) -> torch.optim.Optimizer:
    """AdamW; matrices decay, norms, gains and biases do not (as nanoGPT)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": syl.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=syl.lr, betas=(0.9, syl.beta2), fused=device.type in ("cpu", "cuda"))
