"""The observer: follows a baby that trains elsewhere (another process, a GPU box over a shared folder).

It replays the newest run log as events, as the tutor would have emitted them, and answers chat
from the newest checkpoint, reloading it when a newer one lands. It never writes weights: pause,
save and corrections belong to the trainer.
"""

from __future__ import annotations

import json
import queue
from collections import deque
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

from school import tokenizer as T
from school.counsellor import event_of, newest_log, parse_records
from school.events import ChatEvent, ErrorEvent, Event, StateEvent
from school.options import TrainOptions
from school.revive import revive
from school.speaker import Speaker
from soul.checkpoint import list_checkpoints
from soul.paths import baby_paths

REPLAY = 300  # log records shown at once when watching starts
POLL_S = 0.2


class Shelf:
    """The librarian's tokenizer half: what talking needs, without a corpus."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer

    def encode(self, text: str) -> list[int]:
        return T.encode(self.tokenizer, text)

    def decode(self, ids: Any, continuation: bool = False) -> str:
        return T.decode(self.tokenizer, ids, continuation=continuation)


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
    """Quacks enough like the tutor for the speaker; see the module docstring."""

    def __init__(self, options: TrainOptions, commands: Any = None) -> None:
        self.options = options
        self.commands = commands if commands is not None else queue.Queue()
        self.subscribers: list[Callable[[Event], None]] = []
        self._deferred: deque[dict[str, Any]] = deque()
        self.paths = baby_paths(options.baby, options.home)
        self.pixel = None
        self.step = 0

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        self.subscribers.append(fn)

    def emit(self, event: Event) -> None:
        for fn in list(self.subscribers):
            fn(event)

    def _warn(self, message: str) -> None:
        self.emit(ErrorEvent(self.step, message))

    def emit_chat(self, reply_id: str, text: str, **kw: Any) -> None:
        self.emit(ChatEvent(self.step, reply_id, text, **kw))

    def _wake(self) -> None:
        """Load (or reload) the newest checkpoint's weights."""
        baby = revive(self.paths)
        self.model, self.step, self.weights_step = baby.model, baby.step, baby.step
        self.librarian = Shelf(baby.tokenizer)
        self.room = SimpleNamespace(device=torch.device("cpu"), record=baby.record)
        for w in baby.warnings:
            self._warn(w)
        hello = {
            "baby": self.paths.name,
            "brain": baby.record.brain_name,
            "preset": baby.record.preset,
            "params": self.model.num_params(),
            "device": "elsewhere",
            "library": "watching",
        }
        self.emit(StateEvent(self.step, "watching", json.dumps(hello)))

    def run(self, should_continue: Callable[[], bool] | None = None) -> None:
        self._wake()
        speaker = Speaker(self)  # type: ignore[arg-type]
        tail = LogTail(self.paths.logs)
        for record in tail.read()[-REPLAY:]:
            self._show(record)
        while should_continue is None or should_continue():
            for record in tail.read():
                self._show(record)
            newest = list_checkpoints(self.paths.checkpoints)
            if newest and newest[-1][0] != self.weights_step:
                self._wake()
            try:
                cmd = self._deferred.popleft() if self._deferred else self.commands.get(timeout=POLL_S)
            except queue.Empty:
                continue
            name = cmd.get("cmd")
            if name == "stop":
                break
            if name == "chat":
                speaker.reply(cmd)
            elif name == "attend":
                speaker.attend(cmd)
            elif name != "chat_cancel":
                self._warn(f"watching only: {name} belongs to the trainer, which runs elsewhere")
        self.emit(StateEvent(self.step, "stopped", "watch ended"))

    def _show(self, record: dict[str, Any]) -> None:
        try:
            event = event_of(record)
        except (KeyError, TypeError, ValueError):
            return  # a record from another version: skip it
        if event.kind == "state":
            return  # the trainer's own states (training, saving) would mislead: we are watching
        self.step = max(self.step, event.step)
        self.emit(event)
