"""The loss stream: a line per logged step and eval, coloured by the calligraphist; saves and errors too."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.widgets import RichLog

from babyterm.lines import eval_line, step_line
from babyterm.messages import EventBatch
from babyterm.text import one_line
from school.calligraphist import Calligraphist
from school.events import ErrorEvent, EvalEvent, Event, PlateauEvent, SaveEvent, StateEvent, StepEvent

STREAM_KINDS = (StepEvent, EvalEvent, SaveEvent, ErrorEvent, StateEvent, PlateauEvent)
"""The events this widget shows."""


class LossStream(RichLog):
    """A scrolling log with markup off (model and error text may hold `[`); the newest line at the bottom."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"loss-stream--note", "loss-stream--save", "loss-stream--error"}
    DEFAULT_CSS = """
    LossStream > .loss-stream--note { color: $text-muted; }
    LossStream > .loss-stream--save { color: $success; }
    LossStream > .loss-stream--error { color: $error; text-style: bold; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(max_lines=1000, markup=False, highlight=False, wrap=False, id=id)
        self.can_focus = False  # keys belong to the app; the mouse still scrolls it
        self.calligraphist = Calligraphist()
        self.last_state = ""

    def on_event_batch(self, message: EventBatch) -> None:
        for event in message.events:
            line = self.format(event)
            if line is not None:
                self.write(line)

    def format(self, event: Event) -> Text | None:
        """The event's line, or None for events not worth a line (a state that did not change)."""
        if isinstance(event, StepEvent):
            return step_line(self.calligraphist, event)
        if isinstance(event, EvalEvent):
            return eval_line(self.calligraphist, event)
        if isinstance(event, PlateauEvent):
            self.calligraphist.memorising = True  # training stats stop looking like progress
            style = self.get_component_rich_style("loss-stream--note")
            return Text(f"plateau{event.step:>5}  {one_line(event.message, 400)}", style=style)
        if isinstance(event, SaveEvent) and event.reason == "best":
            style = self.get_component_rich_style("loss-stream--save")
            return Text(f"best {event.step:>7}  kept as its best self in {event.seconds:.2f}s", style=style)
        if isinstance(event, SaveEvent):
            style = self.get_component_rich_style("loss-stream--save")
            return Text(f"save {event.step:>7}  {event.reason} save in {event.seconds:.2f}s", style=style)
        if isinstance(event, ErrorEvent):
            style = self.get_component_rich_style("loss-stream--error")
            what = "error" if event.fatal else "warn "
            return Text(f"{what}{event.step:>7}  {one_line(event.message, 200)}", style=style)
        # A save's "saving" state is left out (its save line says it better), and so is the return
        # from it to the state before.
        if isinstance(event, StateEvent) and event.state not in (self.last_state, "saving"):
            self.last_state = event.state
            style = self.get_component_rich_style("loss-stream--note")
            return Text(f"── {event.state} at step {event.step:,} ──", style=style)
        return None
