"""The app's line to a trainer: commands out, events in. The trainer runs in its own process.

A separate (spawned) process keeps torch out of the app's process and the GIL out of the
interface's way; see STYLE.md for the measurements behind this choice.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.resource_tracker
import queue
from typing import Any, Protocol

from school.commands import Command, Stop
from school.events import ErrorEvent, Event, StateEvent, TrainerState, event_from_dict
from school.options import TrainOptions


class TrainerLink(Protocol):
    """What the app needs from a trainer, wherever it runs."""

    @property
    def watch(self) -> bool:
        """True when the trainer only follows a baby that trains elsewhere (`babyterm watch`)."""
        ...

    def start(self) -> None: ...
    def send(self, command: Command) -> None: ...
    def poll(self, max_events: int = 2000) -> list[Event]: ...
    def is_alive(self) -> bool: ...
    def stop(self, timeout: float = 60.0) -> None: ...


_CONTEXT: Any = None


def prepare_multiprocessing() -> None:
    """Create the spawn context and its resource tracker before Textual replaces stderr.

    Inside a running app stderr has fileno() == -1, and starting them then fails with
    'bad value(s) in fds_to_keep'.
    """
    global _CONTEXT
    if _CONTEXT is None:
        _CONTEXT = mp.get_context("spawn")  # fork after torch has run threads can hang the child
        multiprocessing.resource_tracker.ensure_running()


def spawn_context() -> Any:
    """The spawn context every process of the app starts from (prepared on first use)."""
    prepare_multiprocessing()
    return _CONTEXT


def drain(events: Any, max_events: int) -> list[Event]:
    """What a child process has said so far (at most `max_events`), rebuilt as typed events."""
    out: list[Event] = []
    while len(out) < max_events:
        try:
            out.append(event_from_dict(events.get_nowait()))
        except queue.Empty:
            break
    return out


class ProcessLink:
    """Runs the tutor in a spawned process (babyterm.trainer_process) and talks to it by queues.

    With watch=True the process runs an observer instead: it follows a baby that trains elsewhere.
    """

    def __init__(self, options: TrainOptions, watch: bool = False) -> None:
        prepare_multiprocessing()
        self.options = options
        self.watch = watch
        self._commands = _CONTEXT.Queue()
        self._events = _CONTEXT.Queue()
        self._process: Any = None
        self._reported_exit = False

    def start(self) -> None:
        from babyterm.trainer_process import trainer_main

        self._reported_exit = False
        self._process = _CONTEXT.Process(
            target=trainer_main,
            args=(self.options.to_dict(), self._commands, self._events, self.watch),
            daemon=True,
        )
        self._process.start()

    def send(self, command: Command) -> None:
        self._commands.put(command.to_dict())

    def poll(self, max_events: int = 2000) -> list[Event]:
        out = drain(self._events, max_events)
        if not out and self._process is not None and not self._process.is_alive() and not self._reported_exit:
            self._reported_exit = True  # a trainer that died without a word still gets reported
            code = self._process.exitcode
            if code not in (0, None):
                out.append(ErrorEvent(step=0, message=f"trainer process exited with code {code}", fatal=True))
            out.append(StateEvent(step=0, state=TrainerState.STOPPED.value, detail=f"exit code {code}"))
        return out

    def is_alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    def stop(self, timeout: float = 60.0) -> None:
        """Ask the trainer to save and stop, wait for it, and kill it if it will not go."""
        if self._process is None:
            return
        if self._process.is_alive():
            self._commands.put(Stop().to_dict())
            self._process.join(timeout)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
