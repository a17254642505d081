"""What `babyterm train` prints: a line per logged step and eval, coloured on a terminal, plain in a pipe."""

from __future__ import annotations

import re
from typing import TextIO

from rich.console import Console
from rich.text import Text

from babyterm.lines import event_line, plain
from school.calligraphist import Calligraphist
from school.events import (
    ErrorEvent,
    EvalEvent,
    Event,
    GuessEvent,
    PlateauEvent,
    ProgressEvent,
    SaveEvent,
    ScribeEvent,
    StateEvent,
    StepEvent,
)

_CONTROL = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|[\x00-\x08\x0b-\x1f\x7f-\x9f]"
)


def clean_text(text: str) -> str:
    """Model text may hold escape sequences and control bytes: never let them reach a terminal raw."""
    return _CONTROL.sub("", text)


class Printer:
    def __init__(self, out: TextIO) -> None:
        self.console = Console(file=out, highlight=False, soft_wrap=True)
        self.colour = self.console.is_terminal
        self.calligraphist = Calligraphist()
        self._last_progress = ""

    def _line(self, text: Text | str) -> None:
        if isinstance(text, Text) and not self.colour:
            text = text.plain
        self.console.print(text, markup=False)

    def show(self, e: Event) -> None:
        if isinstance(e, (StepEvent, EvalEvent)):
            self._line(event_line(self.calligraphist, e) if self.colour else plain(e))
        elif isinstance(e, GuessEvent):
            self._line(Text(f"  guess  {clean_text(e.guess)!r}  truth {clean_text(e.truth)!r}", style="dim"))
        elif isinstance(e, ScribeEvent):
            band_style = "italic"
            self._line(Text(f"  scribe ({e.mood}): {clean_text(e.line)}", style=band_style))
        elif isinstance(e, PlateauEvent):
            self.calligraphist.memorising = True  # training stats stop looking like progress
            self._line(Text(f"  plateau at step {e.step}: {e.message}", style="bold yellow"))
        elif isinstance(e, SaveEvent) and e.reason == "best":
            self._line(Text(f"  best self kept at step {e.step} ({e.seconds:.2f} s)", style="dim"))
        elif isinstance(e, SaveEvent):
            self._line(Text(f"  saved step {e.step} ({e.reason}, {e.seconds:.2f} s)", style="dim"))
        elif isinstance(e, ErrorEvent):
            self._line(Text(f"  {'error' if e.fatal else 'warning'}: {e.message}", style="bold red"))
        elif isinstance(e, ProgressEvent):
            line = f"  {e.task}: {e.done:.0%} {e.detail}".rstrip()
            if line != self._last_progress:
                self._last_progress = line
                self._line(Text(line, style="dim"))
        elif isinstance(e, StateEvent) and (e.state == "stopped" or (e.state == "training" and e.detail)):
            self._line(Text(f"  {e.state} {_hello(e.detail)}".rstrip(), style="bold"))


def _hello(detail: str) -> str:
    import json

    try:
        h = json.loads(detail)
    except ValueError:
        return detail
    if not isinstance(h, dict):
        return detail
    bf16 = " in bf16" if h.get("precision") == "bf16" else ""
    return (
        f"{h['baby']}: {h['brain']} {h['preset']}, {h['params'] / 1e6:.2f}M params on {h['device']}{bf16}, "
        f"reading {h['library']}"
    )
