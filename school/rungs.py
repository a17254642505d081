"""The ladder of brains as the race names it, torch-free: the default racers and what each rung adds."""

from __future__ import annotations

from collections.abc import Sequence

from brain import BRAIN_NAMES  # the names only: brain/__init__ is torch-free
from soul.paths import SoulError

DEFAULT_BRAINS = ("mlp", "attention", "transformer", "babyllm")
DEFAULT_PROMPT = "The"
RUNG_NOTES = {
    "mlp": "reads a fixed window of the last few tokens through one hidden layer; nothing older",
    "attention": "adds attention: one head weighs every earlier token by how well it matches",
    "transformer": "the modern rung: many heads in many blocks, rotary positions, a gated feed-forward",
    "babyllm": "another road: neurons averaged over learned windows and decaying memories",
}
"""What each rung adds, one sentence each, for the printer and the app's race view."""


def check_brains(brains: Sequence[str]) -> list[str]:
    """The race's brains in order, each once; SoulError (one line) for an unknown one or none."""
    chosen = list(dict.fromkeys(b.strip() for b in brains if b.strip()))
    unknown = [b for b in chosen if b not in BRAIN_NAMES]
    if unknown:
        raise SoulError(f"unknown brain {unknown[0]!r}: choose from {', '.join(BRAIN_NAMES)}")
    if not chosen:
        raise SoulError(f"a race needs at least one brain: choose from {', '.join(BRAIN_NAMES)}")
    return chosen
