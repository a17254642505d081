"""What the app shows again when it reopens a baby: its recent losses and colour, and the scribe's
last words (the chat pane reloads its own history)."""

from __future__ import annotations

from school.counsellor import event_of, logs_newest_first, tail_records
from school.events import Event
from soul.paths import BabyPaths

RECALLED_KINDS = ("step", "eval", "pixel")
RUNS_LOOKED_AT = 8  # each read is bounded, so this bounds the work at launch


def recall(paths: BabyPaths, scribe_lines: int, enough: int = 500) -> list[Event]:
    """Recent events from the soul, in order; a damaged record is left out, never raised.

    Runs too short to log a step (a launch closed at once) are read through to the runs before.
    """
    records: list[dict] = []
    for log in logs_newest_first(paths.logs)[:RUNS_LOOKED_AT]:
        records[:0] = [r for r in tail_records(log) if r["kind"] in RECALLED_KINDS]
        if len(records) >= enough:
            break
    records += [r for r in tail_records(paths.scribe, 64 * 1024) if r["kind"] == "scribe"][-scribe_lines:]
    events = []
    for record in records:
        try:
            events.append(event_of(record))
        except (KeyError, TypeError, ValueError):
            continue
    return events
