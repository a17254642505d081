"""The trainer's inbox: typed commands read off the queue, plus those looked at early and kept."""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Callable
from typing import Any

from school.commands import CancelChat, Command, CommandError, Stop, command_from_dict


class Inbox:
    """Commands arrive on `queue` as `Command.to_dict()` output; a malformed one is refused with a
    warning and never reaches a handler."""

    def __init__(self, commands: Any, warn: Callable[[str], None]) -> None:
        self.queue = commands if commands is not None else queue.Queue()
        self.warn = warn
        self.deferred: deque[Command] = deque()

    def put(self, command: Command) -> None:
        self.queue.put(command.to_dict())

    def _take(self, block: bool, timeout: float | None = None) -> Command | None:
        """One command off the queue (None when it is empty), refusing what does not parse."""
        while True:
            try:
                raw = self.queue.get(block, timeout) if block else self.queue.get_nowait()
            except queue.Empty:
                return None
            try:
                return command_from_dict(raw)
            except CommandError as e:
                self.warn(f"command refused: {e}")

    def next(self) -> Command | None:
        """The next waiting command, without waiting."""
        return self.deferred.popleft() if self.deferred else self._take(block=False)

    def next_of(self, kinds: tuple[type[Command], ...]) -> Command | None:
        """The next waiting command if it is one of `kinds`; any other stays first in line, so
        commands are still handled in the order they came."""
        if not self.deferred:
            if (command := self._take(block=False)) is None:
                return None
            self.deferred.append(command)
        return self.deferred.popleft() if isinstance(self.deferred[0], kinds) else None

    def wait(self, timeout: float) -> Command | None:
        """The next command, waiting up to `timeout` seconds for one."""
        return self.deferred.popleft() if self.deferred else self._take(block=True, timeout=timeout)

    def interrupts(self, reply_id: str) -> bool:
        """Whether a command that arrived mid-reply ends it: a cancel of this reply, or a stop.

        Every other command waits its turn, after the reply.
        """
        while (command := self._take(block=False)) is not None:
            match command:
                case CancelChat(id=cancelled) if cancelled == reply_id:
                    return True
                case Stop():
                    self.deferred.append(command)
                    return True
                case _:
                    self.deferred.append(command)
        return False
