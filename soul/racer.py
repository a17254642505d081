"""What a race leaves in its racers' folders, so that the next race starts over only what it made.

A race starts its racers (`race-BRAIN`) from newborns. A racer the user went on to train or talk to
is theirs now, and starting it over would lose it.
"""

from __future__ import annotations

import json

from soul.atomic import write_json_atomic
from soul.checkpoint import list_checkpoints
from soul.paths import BabyPaths

RACE_MARK = "race.json"
"""In a racer's folder: the step its race left it at. A race starts its racers over only while they
are as their race left them."""


def grown_since_race(paths: BabyPaths) -> str:
    """Why starting the baby at `paths` over would lose something of the user's ("" when nothing):
    it was trained on or talked to after its race, or no race made it."""
    if not paths.root.exists():
        return ""
    try:
        left_at = json.loads((paths.root / RACE_MARK).read_text(encoding="utf-8"))["step"]
    except (OSError, ValueError, KeyError, TypeError):
        return "no race left it as it is"
    if paths.chat.exists():
        return "it has a chat history"
    step = _newest_step(paths)
    return f"it trained on to step {step:,} after its race" if step != left_at else ""


def mark_raced(paths: BabyPaths) -> None:
    """Record where a race leaves the baby: its newest checkpoint's step (0 for none), which is what
    the next race compares, so a final save that failed does not make the racer look grown."""
    write_json_atomic(paths.root / RACE_MARK, {"step": _newest_step(paths)})


def _newest_step(paths: BabyPaths) -> int:
    found = list_checkpoints(paths.checkpoints)
    return found[-1][0] if found else 0
