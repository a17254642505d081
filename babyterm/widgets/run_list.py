"""The runs of every baby under the home, newest first: baby, start, steps, best validation loss."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from textual.widgets import DataTable

from school.counsellor import RunSummary, list_runs
from soul.paths import list_babies


@dataclass(frozen=True)
class Run:
    """A run and the baby it belongs to."""

    baby: str
    summary: RunSummary


def find_runs(home: Path) -> list[Run]:
    """Every run of every baby, newest first."""
    runs = [Run(p.name, s) for p in list_babies(home) for s in list_runs(p.logs)]
    return sorted(runs, key=lambda r: (r.summary.start_time, r.summary.run_id), reverse=True)


def when(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(t))


class RunList(DataTable[str]):
    """One row per run; the row key is the log's path."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)
        self.runs: dict[str, Run] = {}

    def on_mount(self) -> None:
        self.add_column("baby", key="baby")
        self.add_column("started", key="start")
        self.add_column("steps", key="steps")
        self.add_column("best bpb", key="best")  # held-out bits per byte, the headline figure

    def load(self, home: Path) -> None:
        """(Re)read the runs; keeps the cursor on the same run where it still exists."""
        current = self.selected
        self.clear()
        self.runs = {}
        for run in find_runs(home):
            key = str(run.summary.path)
            self.runs[key] = run
            s = run.summary
            best = "" if s.best_val_bpb is None else f"{s.best_val_bpb:.3f}"
            self.add_row(run.baby, when(s.start_time), f"{s.last_step:,}", best, key=key)
        if current is not None and str(current.summary.path) in self.runs:
            self.move_cursor(row=self.get_row_index(str(current.summary.path)))

    @property
    def selected(self) -> Run | None:
        if not self.runs or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        return self.runs.get(key or "")
