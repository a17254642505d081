"""What a token looked at: the context as a heat strip, by layer and head (transformer) or window reach
with the window sizes, their mix and the memory gates (babyllm); emphasised words underlined, boost shown."""

from __future__ import annotations

from functools import lru_cache

from textual.color import Color
from textual.content import Content
from textual.style import Style
from textual.widgets import Static

from babyterm.text import clean
from school.events import InsightEvent

STRIP_LINES = 4
"""At most this many lines of context; older text is cut (the newest is what a token leans on most)."""
# Heat colours are data, like the pixel: cold is nearly the pane, hot is a bright ember.
COLD, HOT = Color(40, 42, 58), Color(250, 165, 60)
DARK_TEXT, LIGHT_TEXT = Color(20, 20, 24), Color(215, 215, 225)


@lru_cache(maxsize=64)
def _heat_style(level: int, emphasised: bool) -> Style:
    t = level / 20
    return Style(
        background=COLD.blend(HOT, t),
        foreground=DARK_TEXT if t > 0.55 else LIGHT_TEXT,
        underline=emphasised or None,
        bold=emphasised or None,
    )


def heat_style(weight: float, top: float, emphasised: bool = False) -> Style:
    """A background scaled to the strongest weight shown (20 levels)."""
    return _heat_style(round(20 * weight / top) if top > 0 else 0, emphasised)


def piece_text(piece: str) -> str:
    return clean(piece).replace("\n", "↵") or "∅"


def boosted(multiplier: float) -> bool:
    return abs(multiplier - 1.0) > 1e-6


def cycle(current: int | None, count: int, delta: int) -> int | None:
    """Step through avg (None), 0, 1, … count-1 and round again."""
    options: list[int | None] = [None, *range(count)]
    return options[(options.index(current) + delta) % len(options)]


class AttentionStrip(Static):
    """Shows one InsightEvent; `at_layer` and `at_head` (None = average) pick the weights drawn."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.event: InsightEvent | None = None
        self.at_layer: int | None = None
        self.at_head: int | None = None

    def waiting(self) -> None:
        self.event = None
        self.border_title = "looked at"
        self.update(Content.styled("what it looked at: asking the baby…", "$text-muted italic"))

    def show_insight(self, event: InsightEvent) -> None:
        self.event = event
        if event.layers:  # keep the user's layer and head while they fit this brain
            self.at_layer = (
                self.at_layer if self.at_layer is not None and self.at_layer < len(event.layers) else None
            )
            self.at_head = (
                self.at_head if self.at_head is not None and self.at_head < len(event.layers[0]) else None
            )
        self.draw()

    def cycle_layer(self, delta: int) -> bool:
        """Next or previous layer (avg between the last and the first); False when there are none."""
        if self.event is None or not self.event.layers:
            return False
        self.at_layer = cycle(self.at_layer, len(self.event.layers), delta)
        self.draw()
        return True

    def cycle_head(self, delta: int) -> bool:
        if self.event is None or not self.event.layers:
            return False
        self.at_head = cycle(self.at_head, len(self.event.layers[0]), delta)
        self.draw()
        return True

    def weights(self) -> list[float]:
        """The drawn weight of each context position: the mean, or the picked layer's and head's."""
        event = self.event
        if event is None:
            return []
        if not event.layers or (self.at_layer is None and self.at_head is None):
            return list(event.mean)
        layers = event.layers if self.at_layer is None else [event.layers[self.at_layer]]
        rows = [heads if self.at_head is None else [heads[self.at_head]] for heads in layers]
        flat = [row for heads in rows for row in heads]
        return [sum(column) / len(flat) for column in zip(*flat, strict=False)]

    def title(self) -> str:
        event = self.event
        if event is None:
            return ""
        if event.windows:
            return "babyllm · window reach"
        if not event.layers:
            return "looked at · average"
        layer = "avg" if self.at_layer is None else f"{self.at_layer + 1}/{len(event.layers)}"
        head = "avg" if self.at_head is None else f"{self.at_head + 1}/{len(event.layers[0])}"
        return f"looked at · layer {layer} · head {head}"

    def draw(self) -> None:
        event = self.event
        if event is None:
            return
        self.border_title = self.title()
        parts = [*self.window_lines(event), *self.strip(event)] if event.windows else self.strip(event)
        self.update(Content.assemble(*parts))

    def on_resize(self) -> None:
        self.draw()  # the strip keeps as much context as the width shows

    def window_lines(self, event: InsightEvent) -> list[str | tuple[str, str | Style]]:
        """babyllm's learned window sizes with their share of the mix, and its memory gates."""
        w = event.windows
        mixed = zip(w.get("sizes", []), w.get("mix", []), strict=False)
        return [
            ("size:mix ", "$text-muted"),
            " ".join(f"{size:.1f}:{mix:.0%}" for size, mix in mixed),
            "\n",
            ("memory gates ", "$text-muted"),
            " ".join(f"{g:.2f}" for g in w.get("gates", [])),
            "\n",
        ]

    def strip(self, event: InsightEvent) -> list[str | tuple[str, str | Style]]:
        weights = self.weights()
        n = min(len(event.context), len(weights))
        emphasis = list(event.emphasis) + [1.0] * n
        budget = max(self.size.width, 30) * STRIP_LINES
        start, used = n, 0
        while start > 0 and used + len(piece_text(event.context[start - 1])) <= budget:
            start -= 1
            used += len(piece_text(event.context[start]))
        top = max(weights[start:n], default=0.0)
        parts: list[str | tuple[str, str | Style]] = [("…", "$text-muted")] if start > 0 else []
        for i in range(start, n):
            parts.append((piece_text(event.context[i]), heat_style(weights[i], top, boosted(emphasis[i]))))
        strongest = sorted(range(n), key=lambda i: -weights[i])[:3]
        parts += ["\n", ("most: ", "$text-muted")]
        parts.append(" · ".join(f'"{piece_text(event.context[i])}" {weights[i]:.0%}' for i in strongest))
        marked = [i for i in range(n) if boosted(emphasis[i])]
        if marked:
            # neighbouring marked pieces are one word ("b" "e" -> "be"); each word once
            runs: list[str] = []
            for i in marked:
                if i - 1 in marked:
                    runs[-1] += piece_text(event.context[i])
                else:
                    runs.append(piece_text(event.context[i]))
            words = " ".join(dict.fromkeys(run.strip() for run in runs))
            parts += ["\n", (f"boost ×{emphasis[marked[0]]:.3g} on ", "$text-muted")]
            parts.append((words, "underline bold"))
        return parts
