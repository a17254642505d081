"""A scripted trainer for app tests: records commands, emits fixed events, honours pause, streams chat
(with per-token insight, answering `attend`, and talking as a milestone when asked)."""

from __future__ import annotations

import json
import math
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.css.query import NoMatches
from textual.pilot import Pilot

from school.commands import Attend, CancelChat, Chat, Command, Pause, Resume, Save, XRayRequest
from school.counsellor import RunLog
from school.events import (
    ChatEvent,
    ErrorEvent,
    EvalEvent,
    Event,
    PixelEvent,
    SaveEvent,
    ScribeEvent,
    StateEvent,
    StepEvent,
)
from soul.paths import BabyPaths
from tests.fake_insight import insight, reply_tokens

HELLO = json.dumps(
    {
        "baby": "baby",
        "brain": "transformer",
        "preset": "tiny",
        "params": 1_312_768,
        "device": "cpu",
        "library": "Python's built-in docs",
    }
)
REPLY = ("Hel", "lo [wor", "ld]\x1b[31m", " ok")
"""A reply's pieces: markup-like brackets and an escape sequence the app must show safely."""
MOODS = ("new best", "great", "fine", "meh", "omg")


def step_events(step: int) -> list[Event]:
    """The events of one logged step; every number is a function of the step (no clocks, no randomness)."""
    loss = 2.0 + 3.0 * math.exp(-step / 40) + 0.15 * math.sin(step * 1.7)
    acc = 0.1 + 0.4 * (1 - math.exp(-step / 60))
    pred = (0.5 + 0.3 * math.sin(step / 7), 0.4 + 0.2 * math.cos(step / 5), 0.6)
    target = (0.55, 0.45 + 0.1 * math.sin(step / 9), 0.5)
    out: list[Event] = [
        StepEvent(
            step,
            loss,
            3e-4,
            0.8 + 0.1 * math.cos(step),
            acc,
            step * 2048,
            8192.0 + step,
            step * 0.5,
            pred,
            target,
        ),
        PixelEvent(step, pred, target, 1.0 + 0.05 * math.sin(step), 0.01 * math.cos(step / 3), acc, 0.4),
    ]
    if step % 10 == 0:
        out.append(EvalEvent(step, loss + 0.12, (loss + 0.12) / 2.8, loss + 0.02))
    if step % 15 == 0:
        mood = MOODS[step // 15 % len(MOODS)]
        line = f"Step {step}: it wrote [the cat] and called it a day. Mood: {mood}."
        out.append(ScribeEvent(step, mood, line, "[the cat]", "the cat sat on the mat"))
    return out


class FakeLink:
    """A `TrainerLink` whose trainer lives in the test: one logged step per poll unless paused."""

    def __init__(
        self, *, auto: bool = True, reply: tuple[str, ...] = REPLY, brain: str = "transformer"
    ) -> None:
        self.auto = auto
        self.reply = reply
        self.brain = brain
        self.watch = False
        self.sent: list[Command] = []
        self.started = 0
        self.stopped = False
        self.alive = False
        self.paused = False
        self.step = 0
        self.queue: deque[Event] = deque()
        self.chats: dict[str, list[str]] = {}  # reply id -> pieces still to stream
        self.said: dict[str, str] = {}  # reply id -> text streamed so far
        self.asked: dict[str, Chat] = {}  # reply id -> its chat command
        self.pieces: dict[str, list[str]] = {}  # reply id -> pieces streamed so far

    # -- the test drives ------------------------------------------------------------------------

    def emit(self, *events: Event) -> None:
        self.queue.extend(events)

    def advance(self, steps: int) -> None:
        """Queue `steps` steps' events at once (a deterministic screen without waiting on the timer)."""
        for _ in range(steps):
            self.step += 1
            self.queue.extend(step_events(self.step))

    def die(self, message: str = "CUDA out of memory") -> None:
        self.queue.append(ErrorEvent(self.step, message, fatal=True))
        self.alive = False

    def commands(self, kind: str) -> list[Command]:
        return [c for c in self.sent if c.kind == kind]

    # -- TrainerLink ----------------------------------------------------------------------------

    def start(self) -> None:
        self.started += 1
        self.alive = True
        self.queue.append(StateEvent(self.step, "training", HELLO.replace("transformer", self.brain)))

    def send(self, command: Command) -> None:
        self.sent.append(command)
        match command:
            case Pause():
                self.paused = True
                self.queue.append(StateEvent(self.step, "paused"))
            case Resume():
                self.paused = False
                self.queue.append(StateEvent(self.step, "training"))
            case Save():
                self._save()
            case Chat():
                self.chats[command.id] = list(self.reply)
                self.said[command.id] = ""
                self.pieces[command.id] = []
                self.asked[command.id] = command
            case CancelChat() if command.id in self.chats:
                del self.chats[command.id]
                self.queue.append(self.final(command.id))
            case Attend():
                self._attend(command)
            case XRayRequest():
                from tests.fake_xray import xray_event  # torch only for the tests that x-ray

                self.queue.append(xray_event(self.step, command, self.brain))

    def _save(self) -> None:
        state = "paused" if self.paused else "training"
        self.queue.extend(
            [
                StateEvent(self.step, "saving", "manual"),
                SaveEvent(self.step, f"/soul/checkpoints/{self.step}", "manual", 0.05),
                StateEvent(self.step, state),
            ]
        )

    def _attend(self, command: Attend) -> None:
        reply_id = command.id
        if reply_id in self.asked and reply_id not in self.chats:
            asked = {**self.asked[reply_id].to_dict(), "brain": self.brain}
            self.queue.append(insight(self.step, command.to_dict(), asked, self.pieces[reply_id]))
        else:
            self.queue.append(ErrorEvent(self.step, f"no insight kept for reply {reply_id!r}"))

    def weights(self, reply_id: str) -> str:
        """Which weights answer, as the speaker names them."""
        asked = self.asked[reply_id].weights
        return f"live (step {self.step})" if asked == "live" else f"milestone step {asked}"

    def final(self, reply_id: str) -> ChatEvent:
        return ChatEvent(
            self.step,
            reply_id,
            self.said[reply_id],
            final=True,
            prompt=self.asked[reply_id].text,
            weights=self.weights(reply_id),
            tokens=reply_tokens(self.pieces[reply_id]),
        )

    def poll(self, max_events: int = 2000) -> list[Event]:
        if self.alive and self.auto and not self.paused:
            self.advance(1)
        for reply_id, pieces in list(self.chats.items()):
            piece = pieces.pop(0)
            self.said[reply_id] += piece
            self.pieces[reply_id].append(piece)
            self.queue.append(ChatEvent(self.step, reply_id, piece, weights=self.weights(reply_id)))
            if not pieces:
                del self.chats[reply_id]
                self.queue.append(self.final(reply_id))
        out = [self.queue.popleft() for _ in range(min(max_events, len(self.queue)))]
        return out

    def is_alive(self) -> bool:
        return self.alive

    def stop(self, timeout: float = 60.0) -> None:
        self.stopped = True
        if self.alive:
            self.queue.extend(
                [
                    SaveEvent(self.step, "/soul/checkpoints/last", "stop", 0.05),
                    StateEvent(self.step, "stopped"),
                ]
            )
        self.alive = False


# -- scripted data and waiting, shared by the app tests and the snapshot tests -----------------


async def until(pilot: Pilot[Any], cond: Callable[[], bool], timeout: float = 3.0) -> None:
    """Let the app run (its 15 Hz drain included) until `cond` holds (a NoMatches counts as not yet)."""
    for _ in range(int(timeout / 0.05)):
        try:
            if cond():
                return
        except NoMatches:
            pass
        await pilot.pause(0.05)
    raise AssertionError("the app never got there")


def write_chat(paths: BabyPaths) -> None:
    """An earlier session's chat, as the trainer writes it; the last line cut short by a crash."""
    lines = [
        {"time": 1.0, "role": "you", "text": "hello baby", "step": 10, "weights": "live", "reply_id": "r1"},
        {
            "time": 2.0,
            "role": "baby",
            "text": "the [cat]\x1b[2J",
            "step": 10,
            "weights": "live",
            "reply_id": "r1",
        },
    ]
    paths.root.mkdir(parents=True, exist_ok=True)
    paths.chat.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"cut short')


def write_logs(home: Path) -> None:
    """Two babies, three runs, written by the counsellor's own RunLog with a fixed clock."""
    tick = iter(range(1_000_000))
    runs = {"ada": [("20251123-090000-aaaa", 30), ("20251123-100000-bbbb", 45)], "bob": [("b1", 20)]}
    for baby, logs in runs.items():
        paths = BabyPaths(home, baby)
        paths.logs.mkdir(parents=True)
        paths.config.write_text("{}")
        for run_id, steps in logs:
            log = RunLog(paths.logs, run_id, clock=lambda: 1_763_888_400.0 + 2 * next(tick))
            for step in range(1, steps + 1):
                for event in step_events(step):
                    log.write(event)
            log.write(SaveEvent(steps, "/soul/x", "stop", 0.1))
            log.write(ErrorEvent(steps, f"{baby} disk is [slow]"))
