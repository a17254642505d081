"""The ladder of brains as the race names it, torch-free: the default racers and what each rung adds."""

from __future__ import annotations

DEFAULT_BRAINS = ("mlp", "attention", "transformer", "babyllm")
DEFAULT_PROMPT = "The"
RUNG_NOTES = {
    "mlp": "reads a fixed window of the last few tokens through one hidden layer; nothing older",
    "attention": "adds attention: one head weighs every earlier token by how well it matches",
    "transformer": "the modern rung: many heads in many blocks, rotary positions, a gated feed-forward",
    "babyllm": "another road: neurons averaged over learned windows and decaying memories",
}
"""What each rung adds, one sentence each, for the printer and the app's race view."""
