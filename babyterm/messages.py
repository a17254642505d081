"""Messages that cross widgets: trainer events in batches, and commands on their way to the trainer."""

from __future__ import annotations

from textual.message import Message

from school.commands import Command
from school.events import Event, PixelEvent


class EventBatch(Message, bubble=False):
    """The events one widget owns from one drain of the trainer link (at most ~15 a second)."""

    def __init__(self, events: list[Event]) -> None:
        super().__init__()
        self.events = events


class PixelChanged(Message, bubble=False):
    """The pixel's latest colour; only the newest matters, so a queued one is replaced."""

    def __init__(self, event: PixelEvent) -> None:
        super().__init__()
        self.event = event

    def can_replace(self, message: Message) -> bool:
        return isinstance(message, PixelChanged)


class TrainerCommand(Message):
    """A command for the trainer (school.commands); bubbles up to the app, which owns the link."""

    def __init__(self, command: Command) -> None:
        super().__init__()
        self.command = command
