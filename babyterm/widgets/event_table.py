"""The events of one run in a table, filtered by kind and by text."""

from __future__ import annotations

import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.timer import Timer
from textual.widgets import DataTable, Input, Select

from babyterm.text import count, one_line
from school.counsellor import filter_events

KINDS = ("step", "eval", "guess", "scribe", "chat", "save", "error", "state", "pixel", "progress")
MAX_ROWS = 2000
"""Rows shown at once (the newest that match): a DataTable of a whole day's run would crawl."""


def _f(v: Any, fmt: str) -> str:
    return format(v, fmt) if isinstance(v, (int, float)) else "?"


def describe(record: dict[str, Any]) -> str:
    """One readable line of a log record's fields (model text cleaned, kept short)."""
    kind, r = record.get("kind"), record
    if kind == "step":
        return (
            f"loss {_f(r.get('loss'), '.3f')}  acc {_f(r.get('accuracy'), '.1%')}"
            f"  lr {_f(r.get('lr'), '.1e')}  {count(r.get('tokens_per_s') or 0)} tok/s"
        )
    if kind == "eval":
        return (
            f"val {_f(r.get('val_loss'), '.3f')}  bpb {_f(r.get('val_bpb'), '.3f')}"
            f"  train {_f(r.get('train_loss'), '.3f')}"
        )
    if kind == "guess":
        guess, truth = one_line(str(r.get("guess", "")), 50), one_line(str(r.get("truth", "")), 50)
        return f"{_f(r.get('match'), '.0%')}  “{guess}”  truth “{truth}”"
    if kind == "scribe":
        return f"[{r.get('mood', '?')}] {one_line(str(r.get('line', '')), 200)}"
    if kind == "chat":  # one record per reply (school.counsellor leaves the streamed pieces out)
        said = one_line(str(r.get("text", "")), 200)
        asked = one_line(str(r.get("prompt", "")), 60)
        who = "correction: " if r.get("role") == "correction" else (f"“{asked}” → " if asked else "")
        return f"{str(r.get('reply_id', ''))[:6]}  {who}{said}"
    if kind == "save":
        return f"{r.get('reason', '')} in {_f(r.get('seconds'), '.2f')}s  {r.get('path', '')}"
    if kind == "error":
        return ("FATAL " if r.get("fatal") else "") + one_line(str(r.get("message", "")), 200)
    if kind == "state":
        return f"{r.get('state', '')}  {one_line(str(r.get('detail', '')), 120)}".rstrip()
    rest = {k: v for k, v in r.items() if k not in ("time", "run", "step", "kind")}
    return one_line("  ".join(f"{k} {_short(v)}" for k, v in rest.items()), 200)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}"
    if isinstance(v, (list, tuple)):
        return " ".join(_short(x) for x in v)
    return str(v)


class EventTable(Vertical):
    """A kind filter, a text filter and the table of matching events (the newest MAX_ROWS)."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.records: list[dict[str, Any]] = []
        self.shown = 0
        self._debounce: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="event-filters"):
            yield Select([(k, k) for k in KINDS], prompt="all kinds", id="kind-filter")
            yield Input(placeholder="filter text…", id="text-filter")
        yield DataTable(id="events", cursor_type="row", zebra_stripes=True)

    def on_mount(self) -> None:
        table = self.query_one("#events", DataTable)
        for name in ("time", "step", "kind", "what"):
            table.add_column(name, key=name)

    @property
    def kind(self) -> str | None:
        value = self.query_one("#kind-filter", Select).value
        return value if isinstance(value, str) else None  # Select.NULL: every kind

    @property
    def text(self) -> str:
        return self.query_one("#text-filter", Input).value.strip()

    def show_records(self, records: list[dict[str, Any]]) -> None:
        self.records = records
        self.refilter()

    def refilter(self) -> None:
        matching = list(filter_events(self.records, self.kind, self.text or None))
        self.shown = len(matching)
        table = self.query_one("#events", DataTable)
        table.clear()
        table.add_rows(
            (
                time.strftime("%H:%M:%S", time.localtime(r["time"]))
                if isinstance(r.get("time"), (int, float))
                else "",
                f"{r.get('step', '')}",
                Text(str(r.get("kind", ""))),
                Text(describe(r)),  # Text, not str: a str cell is read as markup, and model text has `[`
            )
            for r in matching[-MAX_ROWS:]
        )
        cut = f" (newest {MAX_ROWS:,})" if len(matching) > MAX_ROWS else ""
        self.border_subtitle = f"{len(matching):,} of {len(self.records):,} events{cut}"

    def jump_to_newest(self) -> None:
        table = self.query_one("#events", DataTable)
        if table.row_count:
            table.move_cursor(row=table.row_count - 1)

    @on(Select.Changed, "#kind-filter")
    def kind_changed(self) -> None:
        self.refilter()

    @on(Input.Changed, "#text-filter")
    def text_changed(self) -> None:
        # Filtering re-reads every record; wait for a pause in the typing.
        if self._debounce is not None:
            self._debounce.stop()
        self._debounce = self.set_timer(0.15, self.refilter)
