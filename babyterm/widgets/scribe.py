"""The scribe's corner: its latest roasts and praise, each with the guess it was about, newest last."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Static

from babyterm.messages import EventBatch
from babyterm.palette import band_style
from babyterm.text import one_line, style
from school.calligraphist import BANDS_BY_NAME, NEUTRAL
from school.events import ScribeEvent

KEEP = 40
"""Comments kept on screen; older ones scroll away for good (they are in the logs)."""


def comment(event: ScribeEvent) -> Content:
    """The scribe's line in its mood's colour (the calligraphist's band), then the guess and the truth."""
    band = BANDS_BY_NAME.get(event.mood, NEUTRAL)
    return Content.assemble(
        (f"{event.step:>6} ", "$text-muted"),
        (f"{band.symbol or '✎'} ", "$text-muted"),
        (one_line(event.line, 400), style(band_style(band))),
        "\n",
        ("       guess ", "$text-muted"),
        one_line(event.guess, 120),
        ("   truth ", "$text-muted"),
        one_line(event.truth, 120),
    )


class ScribeFeed(VerticalScroll):
    """Comments as they come; anchored to the bottom so the newest is always in view."""

    def compose(self) -> ComposeResult:
        yield Static("The scribe reads the baby's guesses and will have opinions soon.", classes="hint")

    def on_mount(self) -> None:
        self.can_focus = False
        self.anchor()

    def on_event_batch(self, message: EventBatch) -> None:
        new = [e for e in message.events if isinstance(e, ScribeEvent)][-KEEP:]
        if not new:
            return
        self.query(".hint").remove()
        self.mount_all(Static(comment(e), classes="scribe-line") for e in new)
        extra = len(self.children) - KEEP
        if extra > 0:
            for child in list(self.children)[:extra]:
                child.remove()
