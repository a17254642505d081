"""The logs screen: every run of every baby, the events of the chosen run, and its loss plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.markup import escape
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Label

from babyterm.widgets.event_table import EventTable
from babyterm.widgets.loss_plot import LossPlot
from babyterm.widgets.run_list import Run, RunList
from school.counsellor import read_log


class LogsScreen(Screen[None]):
    """Runs on the left (newest first) above the chosen run's loss plot; its events on the right."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "back", key_display="esc/l", tooltip="back to the baby"),
        Binding("l", "back", "back", show=False, tooltip="back to the baby"),
        Binding("n", "newest", "newest", tooltip="the newest run and its newest event"),
        Binding("slash", "filter", "filter", key_display="/", tooltip="filter the events by text"),
    ]

    def __init__(self, home: Path) -> None:
        super().__init__()
        self.home = home
        self.current_run: Run | None = None

    def compose(self) -> ComposeResult:
        yield Label(id="logs-title")
        with Horizontal(id="logs"):
            with Vertical(id="logs-left"):
                yield RunList(id="runs")
                yield LossPlot(id="run-plot")
            yield EventTable(id="run-events")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#runs").border_title = "runs"
        self.query_one("#run-events").border_title = "events"
        self.query_one(LossPlot).empty_message = "no steps in this run"
        self.action_newest()

    def action_back(self) -> None:
        self.dismiss()

    def action_newest(self) -> None:
        """Re-read the runs and go to the newest run's newest event."""
        runs = self.query_one(RunList)
        runs.load(self.home)
        babies = len({r.baby for r in runs.runs.values()})
        self.query_one("#logs-title", Label).update(
            Content(f" logs · {len(runs.runs)} runs of {babies} {'baby' if babies == 1 else 'babies'}")
        )
        if runs.row_count:
            runs.move_cursor(row=0)
            runs.focus()
            self.load(runs.selected)
        else:
            self.query_one(EventTable).show_records([])

    def action_filter(self) -> None:
        self.query_one("#text-filter").focus()

    @on(DataTable.RowHighlighted, "#runs")
    def run_highlighted(self) -> None:
        self.load(self.query_one(RunList).selected)

    def load(self, run: Run | None) -> None:
        if run is None:
            return
        if run == self.current_run:
            self.query_one(EventTable).jump_to_newest()
        else:
            self.current_run = run
            self.read_run(run)

    @work(thread=True, exclusive=True, group="read-log")
    def read_run(self, run: Run) -> None:
        # A long run's log is tens of thousands of lines: read it off the event loop.
        records = list(read_log(run.summary.path))
        self.app.call_from_thread(self.show_run, run, records)

    def show_run(self, run: Run, records: list[dict[str, Any]]) -> None:
        if not self.is_attached or run != self.current_run:
            return  # the screen closed, or another run was chosen while this one was read
        table = self.query_one(EventTable)
        table.border_title = escape(f"events · {run.baby} · {run.summary.run_id}")
        table.show_records(records)
        table.jump_to_newest()
        plot = self.query_one(LossPlot)
        plot.clear()
        plot.add(
            [(r["step"], r["loss"]) for r in records if r.get("kind") == "step" and _num(r.get("loss"))],
            [
                (r["step"], r["val_loss"])
                for r in records
                if r.get("kind") == "eval" and _num(r.get("val_loss"))
            ],
        )


def _num(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
