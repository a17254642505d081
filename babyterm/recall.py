"""What the app shows again when it reopens a baby: the last run's recent losses and colour, and the
scribe's last words (the chat pane reloads its own history)."""

from __future__ import annotations

from school.counsellor import event_of, newest_log, tail_records
from school.events import Event
from soul.paths import BabyPaths

RECALLED_KINDS = ("step", "eval", "pixel")


def recall(paths: BabyPaths, scribe_lines: int) -> list[Event]:
    """Recent events from the soul, in order; a damaged record is left out, never raised."""
    log = newest_log(paths.logs)
    records = [r for r in tail_records(log) if r["kind"] in RECALLED_KINDS] if log else []
    records += [r for r in tail_records(paths.scribe, 64 * 1024) if r["kind"] == "scribe"][-scribe_lines:]
    events = []
    for record in records:
        try:
            events.append(event_of(record))
        except (KeyError, TypeError, ValueError):
            continue
    return events
