"""The pixel: a big block of the colour the baby predicts about itself, next to the colour it aims for.

The colour is data, so it is the one place the app sets colours from code rather than the stylesheet.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.color import Color
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static

from babyterm.messages import PixelChanged
from babyterm.text import style
from school.events import RGB, PixelEvent

GLOSS = (
    ("red", "red", "loss vs its average"),
    ("green", "green", "loss trend"),
    ("blue", "blue", "accuracy"),
    ("light", "bright_white", "time pulse"),
)


def to_color(rgb: RGB) -> Color:
    r, g, b = (round(255 * max(0.0, min(1.0, v))) for v in rgb)
    return Color(r, g, b)


def ink_for(background: Color) -> Color:
    """Black or white text, whichever reads on the background."""
    return Color(0, 0, 0) if background.brightness > 0.55 else Color(255, 255, 255)


def bar(value: float, width: int = 6) -> str:
    filled = round(max(0.0, min(1.0, value)) * width)
    return "▰" * filled + "▱" * (width - filled)


class Pixel(Vertical):
    """The predicted colour (big), the target colour, their numbers and what moves each channel."""

    def compose(self) -> ComposeResult:
        with Horizontal(id="pixel-blocks"):
            yield Static(id="pixel-pred")
            yield Static(id="pixel-target")
        yield Static(id="pixel-numbers")
        yield Static(id="pixel-gloss")

    def on_mount(self) -> None:
        self.border_title = "pixel"
        self.query_one("#pixel-numbers", Static).update(Content.styled("no colour yet", "$text-muted"))
        self.query_one("#pixel-gloss", Static).update(self.gloss(None))

    def on_pixel_changed(self, message: PixelChanged) -> None:
        self.show(message.event)

    def show(self, event: PixelEvent) -> None:
        pred, target = to_color(event.pred), to_color(event.target)
        for widget_id, colour, caption in (
            ("#pixel-pred", pred, "predicted"),
            ("#pixel-target", target, "target"),
        ):
            block = self.query_one(widget_id, Static)
            block.styles.background = colour
            block.styles.color = ink_for(colour)
            block.update(f"{caption}\n{colour.hex}", layout=False)  # fixed sizes: no relayout
        rows = [
            ("pred   ", event.pred),
            ("target ", event.target),
        ]
        numbers = Content("\n").join(
            Content.assemble((label, "$text-muted"), " ".join(f"{v:.2f}" for v in rgb)) for label, rgb in rows
        )
        self.query_one("#pixel-numbers", Static).update(numbers, layout=False)
        self.query_one("#pixel-gloss", Static).update(self.gloss(event), layout=False)

    def gloss(self, event: PixelEvent | None) -> Content:
        """One line per channel: its name in its colour, a bar of its target value, and what drives it."""
        if event is None:
            values: list[float | None] = [None] * 4
            notes = [g[2] for g in GLOSS]
        else:
            values = [*event.target, event.pulse]
            trend = "improving" if event.trend > 0 else "flat" if event.trend == 0 else "worsening"
            notes = [
                f"loss {event.loss_ratio:.2f}× avg",
                f"trend {event.trend:+.1%} {trend}",
                f"accuracy {event.accuracy:.1%}",
                f"pulse {event.pulse:.2f}",
            ]
        lines = []
        for (name, colour, _), value, note in zip(GLOSS, values, notes, strict=True):
            lines.append(
                Content.assemble(
                    (f"{name:<6}", style(colour)),
                    (bar(value) if value is not None else "      ", "$text-muted"),
                    " ",
                    note,
                )
            )
        return Content("\n").join(lines)
