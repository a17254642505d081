"""Which update sizes go with which weights: the live ones' last record, or a milestone's own."""

from __future__ import annotations

from typing import Any

from soul.milestones import read_manifest
from soul.paths import BabyPaths


def learning_of(paths: BabyPaths, weights: str | int, live: dict[str, Any] | None) -> dict[str, Any] | None:
    """The update sizes recorded for `weights`: `live` for "live", else the milestone's record."""
    if weights in ("live", ""):
        return live
    try:
        step = int(str(weights).removeprefix("step-"))
    except ValueError:
        return None
    record = read_manifest(paths.milestones).get(step)
    return record.updates if record is not None else None
