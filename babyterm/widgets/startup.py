"""First-launch progress: what the trainer is preparing (tokenizer, corpus) instead of a frozen screen."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import Label, ProgressBar

from babyterm.messages import EventBatch
from babyterm.text import one_line
from school.events import ProgressEvent, StateEvent, StepEvent


class StartupProgress(Horizontal):
    """A task name and a bar, shown while ProgressEvents arrive and hidden once training begins."""

    def compose(self) -> ComposeResult:
        yield Label(id="startup-task")
        yield ProgressBar(total=1.0, show_eta=False, id="startup-bar")  # no ETA: it reads the clock

    def on_event_batch(self, message: EventBatch) -> None:
        for event in message.events:
            if isinstance(event, ProgressEvent):
                self.add_class("-active")
                detail = f" · {event.detail}" if event.detail else ""
                self.query_one("#startup-task", Label).update(Content(one_line(f"{event.task}{detail}", 60)))
                self.query_one("#startup-bar", ProgressBar).update(progress=max(0.0, min(1.0, event.done)))
            elif isinstance(event, StepEvent) or (
                isinstance(event, StateEvent) and event.state != "starting"
            ):
                self.remove_class("-active")
