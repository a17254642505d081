"""Which weights answer: `live` (the newest), `best` (the best self) or a milestone's step, parsed once.

`babyterm chat`, `export` (and serve and xray) take it as `--step live|best|N`; the app's chat as
`/step best` or `/step N` (and `/live`).
"""

from __future__ import annotations

from soul.best_self import BEST

LIVE = "live"
Weights = str | int
"""LIVE, BEST, or a milestone's step."""


def parse_weights(text: str) -> Weights:
    """`live`, `best`, or a step (`12,000`, `12_000` and `step-12000` read as 12000); ValueError otherwise."""
    word = text.strip().lower()
    if word in (LIVE, BEST):
        return word
    try:
        step = int(word.replace(",", "").replace("_", "").removeprefix("step-"))
    except ValueError:
        raise ValueError(f"{text!r} is not live, best or a step number") from None
    if step < 0:
        raise ValueError(f"a step is 0 or more, not {step}")
    return step


def describe(weights: Weights) -> str:
    """How a reply names the weights that gave it."""
    if weights == LIVE:
        return LIVE
    if weights == BEST:
        return "best self"
    return f"milestone step {weights}"
