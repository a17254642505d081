"""A scripted chat host for server tests: answers each Chat with numbered pieces, one per `delay`,
until its max_tokens or its cancel; records every command in arrival order."""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable

from school.commands import CancelChat, Chat, Command, command_from_dict
from school.events import ChatEvent, Event, StateEvent


class FakeHost:
    def __init__(self, delay: float = 0.0, piece: str = "la ") -> None:
        self.delay, self.piece = delay, piece
        self.taken: list[Command] = []  # every command, in arrival order
        self.subscribers: list[Callable[[Event], None]] = []
        self.inbox: queue.Queue = queue.Queue()
        self.deferred: deque[Command] = deque()  # what arrived mid-reply, served after it
        self.step = 7
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def commands(self) -> queue.Queue:
        """The queue commands arrive on, as the tutor's and the observer's."""
        return self.inbox

    def send(self, command: Command) -> None:
        self.inbox.put(command.to_dict())  # the wire format, as the real hosts take it

    def subscribe(self, fn: Callable[[Event], None]) -> None:
        self.subscribers.append(fn)

    def emit(self, event: Event) -> None:
        for fn in list(self.subscribers):
            fn(event)

    def chats(self) -> list[Chat]:
        return [c for c in self.taken if isinstance(c, Chat)]

    def cancelled(self) -> set[str]:
        return {c.id for c in self.taken if isinstance(c, CancelChat)}

    def stop(self) -> None:
        self.inbox.put(None)
        self._thread.join(5)
        self.emit(StateEvent(self.step, "stopped"))

    def _run(self) -> None:
        while True:
            if self.deferred:
                command = self.deferred.popleft()
            elif (raw := self.inbox.get()) is None:
                return
            else:
                command = command_from_dict(raw)
                self.taken.append(command)
            if isinstance(command, Chat):
                self._answer(command)

    def _answer(self, chat: Chat) -> None:
        said = []
        for _ in range(chat.max_tokens):
            try:  # a cancel of this reply ends it between pieces, as the speaker's interrupts() does
                raw = self.inbox.get(timeout=self.delay) if self.delay else self.inbox.get_nowait()
            except queue.Empty:
                raw = None
            if raw is not None:
                command = command_from_dict(raw)
                self.taken.append(command)
                if isinstance(command, CancelChat) and command.id == chat.id:
                    break
                self.deferred.append(command)
            said.append({"id": 5, "text": self.piece})
            self.emit(ChatEvent(self.step, chat.id, self.piece, source=chat.source))
        text = self.piece * len(said)
        self.emit(ChatEvent(self.step, chat.id, text, final=True, tokens=said, source=chat.source))
