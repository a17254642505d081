"""The observer: follows a baby that trains elsewhere (another process, a GPU box over a shared folder).

It replays the newest run log as events, as the tutor would have emitted them, and answers chat
from the newest checkpoint, reloading it when a newer one lands. It never writes weights: pause,
save and corrections belong to the trainer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tokenizers import Tokenizer

from brain import Brain, build_brain, config_from_dict
from school.commands import Attend, CancelChat, Chat, Command, Steer, Stop, Teach, XRayRequest
from school.counsellor import event_of, newest_log, parse_records
from school.events import ErrorEvent, Event, StateEvent, TrainerState
from school.inbox import Inbox
from school.options import TrainOptions
from school.revive import revive
from school.speaker import Speaker
from school.xray.learning import learning_of
from soul import checkpoint as ckpt
from soul.chat_log import ChatLog
from soul.checkpoint import list_checkpoints
from soul.milestones import load_milestone
from soul.paths import baby_paths
from soul.record import BabyRecord

REPLAY = 300  # log records shown at once when watching starts
POLL_S = 0.2


class LogTail:
    """Follows the newest `*.jsonl` in a folder, across new runs, yielding whole new records."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.path, self.offset, self.partial = folder, None, 0, b""

    def read(self) -> list[dict[str, Any]]:
        newest = newest_log(self.folder)
        if newest is None:
            return []
        if newest != self.path:
            self.path, self.offset, self.partial = newest, 0, b""
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = self.partial + f.read()
            self.offset = f.tell()
        whole, _, self.partial = data.rpartition(b"\n")  # the last piece may still be being written
        return parse_records(whole)


class Observer:
    """Follows a baby's logs and talks as it; a ChatHost for the speaker (see the module docstring)."""

    model: Brain
    tokenizer: Tokenizer
    record: BabyRecord

    def __init__(self, options: TrainOptions, commands: Any = None) -> None:
        self.options = options
        self.inbox = Inbox(commands, self.warn)
        self.subscribers: list[Callable[[Event], None]] = []
        self.paths = baby_paths(options.baby, options.home)
        self.chat_log = ChatLog(self.paths.chat)
        self.pixel: torch.Tensor | None = None
        self.step = 0
        self.weights_step = -1
        self.updates: dict[str, Any] | None = None
        """The newest checkpoint's recorded update sizes, for the x-ray."""

    @property
    def commands(self) -> Any:
        """The queue commands arrive on (as `Command.to_dict()` output)."""
        return self.inbox.queue

    def send(self, command: Command) -> None:
        self.inbox.put(command)

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        self.subscribers.append(fn)

    def emit(self, event: Event) -> None:
        for fn in list(self.subscribers):
            fn(event)

    def warn(self, message: str) -> None:
        self.emit(ErrorEvent(self.step, message))

    # -- what the speaker needs (school.chat_host.ChatHost) -------------------------------------

    @property
    def weights(self) -> str:
        return f"live (step {self.weights_step})"

    def interrupts(self, reply_id: str) -> bool:
        return self.inbox.interrupts(reply_id)

    def milestone(self, step: int | str) -> Brain:
        model = build_brain(config_from_dict(self.record.brain))
        ckpt.load_model_tensors(model, load_milestone(self.paths.milestones, step, "cpu"))
        return model

    def learn(self, text: str, source: str) -> None:
        self.warn(f"watching only: the {source} belongs to the trainer, which runs elsewhere")

    # -- following ------------------------------------------------------------------------------

    def wake(self) -> None:
        """Load (or reload) the newest checkpoint's weights."""
        baby = revive(self.paths)
        self.model, self.tokenizer, self.record = baby.model, baby.tokenizer, baby.record
        self.step, self.weights_step = baby.step, baby.step
        self.updates = baby.updates
        for w in baby.warnings:
            self.warn(w)
        hello = {
            "baby": self.paths.name,
            "brain": baby.record.brain_name,
            "preset": baby.record.preset,
            "params": self.model.num_params(),
            "device": "elsewhere",
            "library": "watching",
        }
        self.emit(StateEvent(self.step, TrainerState.WATCHING.value, json.dumps(hello)))

    def run(self, should_continue: Callable[[], bool] | None = None) -> None:
        self.wake()
        speaker = Speaker(self)
        tail = LogTail(self.paths.logs)
        for record in tail.read()[-REPLAY:]:
            self._show(record)
        while should_continue is None or should_continue():
            for record in tail.read():
                self._show(record)
            newest = list_checkpoints(self.paths.checkpoints)
            if newest and newest[-1][0] != self.weights_step:
                self.wake()
            command = self.inbox.wait(POLL_S)
            match command:
                case None | CancelChat():
                    continue
                case Stop():
                    break
                case Chat():
                    speaker.reply(command)
                case Attend():
                    speaker.attend(command)
                case XRayRequest():
                    speaker.xray(command, learning_of(self.paths, command.weights, self.updates))
                case Steer():
                    speaker.steer(command)  # regenerating trains nothing: a watcher may
                case Teach():
                    self.warn("watching only: a steered reply can be regenerated here, not taught")
                case _:
                    self.warn(f"watching only: {command.kind} belongs to the trainer, which runs elsewhere")
        self.emit(StateEvent(self.step, TrainerState.STOPPED.value, "watch ended"))

    def _show(self, record: dict[str, Any]) -> None:
        try:
            event = event_of(record)
        except (KeyError, TypeError, ValueError):
            return  # a record from another version: skip it
        if event.kind == "state":
            return  # the trainer's own states (training, saving) would mislead: we are watching
        self.step = max(self.step, event.step)
        self.emit(event)
