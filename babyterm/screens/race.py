"""The race view: fresh babies of each rung of the ladder learn the same library, drawn as they go.

The race runs behind a RaceLink (by default its own process, babyterm.race_link); this screen
drains its events on a timer, draws every racer's curve on one plot and, at the end, their answers
side by side under the sentence on what each rung adds.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Label

from babyterm.race_link import RaceLink
from babyterm.text import one_line
from babyterm.widgets.race_answers import RaceAnswers
from babyterm.widgets.race_plot import RacePlot
from school.events import ErrorEvent, Event, RaceAnswerEvent, RacePointEvent, StateEvent

POLL_HZ = 10


class RaceScreen(Screen[None]):
    """The curves on top, the racers side by side below; Escape leaves (ending a race still running)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", tooltip="leave the race view (a race still running is ended)"),
    ]

    def __init__(self, link: RaceLink) -> None:
        super().__init__()
        self.link = link
        self.brains = list(link.settings.brains)
        self.state = "starting"
        """starting, racing, done, or error."""
        self.answers = 0

    def compose(self) -> ComposeResult:
        yield Label(id="race-title")
        yield RacePlot(id="race-plot")
        yield RaceAnswers(self.brains, id="race-answers")
        yield Footer()

    def on_mount(self) -> None:
        self.show_title()
        try:
            self.link.start()
        except Exception as e:  # a race that cannot start is shown, not raised
            self.take([ErrorEvent(0, f"could not start the race: {e}", fatal=True)])
        self.set_interval(1 / POLL_HZ, self.drain)

    def show_title(self) -> None:
        s = self.link.settings
        what = {
            "starting": "the newborns are being born (one tokenizer for all)…",
            "racing": "racing",
            "done": "done: the babies are kept as " + ", ".join(f"race-{b}" for b in self.brains),
            "error": "stopped by an error",
        }[self.state]
        head = f" race · {', '.join(self.brains)} · {s.minutes:g} min · prompt “{one_line(s.prompt, 30)}” · "
        self.query_one("#race-title", Label).update(Content(head + what))

    def drain(self) -> None:
        try:
            events = self.link.poll()
        except Exception as e:
            events = [ErrorEvent(0, f"lost the race: {e}", fatal=True)]
        self.take(events)

    def take(self, events: list[Event]) -> None:
        """Draw what the race reported since the last drain."""
        plot, answers = self.query_one(RacePlot), self.query_one(RaceAnswers)
        for event in events:
            if isinstance(event, RacePointEvent) and event.brain in self.brains:
                if self.state == "starting":
                    self.state = "racing"
                plot.add(event.brain, event.seconds, event.val_bpb)
                answers.score(event.brain, event.seconds, event.val_bpb)
            elif isinstance(event, RaceAnswerEvent) and event.brain in self.brains:
                answers.answered(event.brain, event.answer)
                self.answers += 1
            elif isinstance(event, ErrorEvent):
                self.notify(
                    one_line(event.message, 300),
                    title="race error" if event.fatal else "race warning",
                    severity="error" if event.fatal else "warning",
                    markup=False,
                )
                if event.fatal:
                    self.state = "error"
            elif isinstance(event, StateEvent) and event.state == "stopped" and self.state != "error":
                self.state = "done" if self.answers == len(self.brains) else "error"
        if events:
            self.show_title()

    def action_back(self) -> None:
        if self.link.is_alive():
            self.notify("race ended early", timeout=3)
        self.link.stop()  # a terminate: the race's process takes no command between steps
        if len(self.app.screen_stack) > 1:
            self.dismiss()
        else:  # `babyterm race --app`: the race is the whole app
            self.app.exit()
