"""The range each chat sampling setting takes, and its one-line refusal (torch- and textual-free).

The chat pane's /commands and `babyterm chat`'s flags both parse through these, so a value one
refuses the other refuses too, in the same words. (The HTTP server keeps the ranges of the APIs it
speaks, OpenAI's and Ollama's, in babyterm.server.)
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class SettingError(ValueError):
    """A chat setting the chat refuses (a value out of range, an unknown step), with a one-line reason."""


@dataclass(frozen=True)
class Limit:
    """A number in [low, high], or (low, high] when low_open; `what` names it in a refusal."""

    what: str
    cast: type
    low: float
    high: float
    low_open: bool = False

    def parse(self, text: str, or_off: bool = False) -> int | float:
        """The value `text` spells, or a SettingError saying what it must be (`or_off`: the pane
        also takes the word "off", and says so)."""
        refusal = self.refusal(text, "or off" if or_off else "")
        if refusal:
            raise SettingError(f"{self.what} {refusal}")
        return self.cast(text)

    def refusal(self, text: str, also: str = "") -> str:
        """Why `text` is not a value in range ("must be …, not …"), or "" when it is one."""
        try:
            value = self.cast(text)
        except ValueError:
            value = None
        inside = value is not None and math.isfinite(value) and value <= self.high
        inside = inside and (value > self.low if self.low_open else value >= self.low)
        if inside:
            return ""
        kind = "a whole number" if self.cast is int else "a number"
        low, high = (f"{x:,}" if self.cast is int else f"{x:g}" for x in (self.low, self.high))
        span = f"above {low}, up to {high}" if self.low_open else f"from {low} to {high}"
        got = repr(text) if text else "nothing"
        return f"must be {kind} {span}{', ' + also if also else ''}, not {got}"


LIMITS: dict[str, Limit] = {
    # keyed by the Chat command's field (school.commands)
    "temperature": Limit("temperature", float, 0.0, 5.0),
    "top_k": Limit("top-k", int, 0, 100_000),
    "top_p": Limit("top-p", float, 0.0, 1.0, low_open=True),
    "min_p": Limit("min-p", float, 0.0, 1.0),
    "dynatemp_range": Limit("dynatemp range", float, 0.0, 5.0),
    "dynatemp_exponent": Limit("dynatemp exponent", float, 0.0, 10.0, low_open=True),
    "repetition_penalty": Limit("repetition penalty", float, 0.0, 10.0, low_open=True),
    "max_tokens": Limit("max tokens", int, 1, 2000),
    "seed": Limit("seed", int, 0, 2**63 - 1),
    "emphasis": Limit("emphasis", float, 0.0, 100.0, low_open=True),
}
"""Every sampling setting a chat takes: the /commands' and `babyterm chat`'s flags' one range."""
