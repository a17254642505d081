"""The header: who is learning, on what brain, how far it has come, and what the trainer is doing."""

from __future__ import annotations

import json
from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.reactive import reactive
from textual.widgets import Label

from babyterm.messages import EventBatch
from babyterm.text import count, duration, one_line
from school.events import EvalEvent, ServeEvent, StateEvent, StepEvent

STATE_CLASSES = {
    "starting": "-busy",
    "training": "-good",
    "paused": "-calm",
    "saving": "-busy",
    "stopped": "-calm",
    "error": "-bad",
}
"""The colour class of each trainer state; pending states ("pausing…") read as busy."""


def parse_hello(detail: str) -> dict[str, Any]:
    """The trainer's introduction (a JSON object in the "training" StateEvent's detail), or {}."""
    if not detail.startswith("{"):
        return {}
    try:
        hello = json.loads(detail)
    except ValueError:
        return {}
    return hello if isinstance(hello, dict) else {}


class StatusBar(Horizontal):
    """One line: baby, brain and size, held-out bits/byte (the headline), step, tokens seen, training
    time, tokens/s, and the state."""

    state: reactive[str] = reactive("starting")

    def __init__(self, baby: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.baby = baby
        self.hello: dict[str, Any] = {}
        self.last_step: StepEvent | None = None
        self.serving = ""
        """The HTTP server's address while outside clients can talk to the baby (w)."""
        self.last_eval: EvalEvent | None = None

    def compose(self) -> ComposeResult:
        yield Label(id="status-baby")
        yield Label(id="status-brain")
        yield Label(id="status-extra")  # preset and device: the first to go on a narrow screen
        yield Label(id="status-stats")
        yield Label(id="status-state")

    def on_mount(self) -> None:
        self.show_info()
        self.watch_state(self.state)

    def on_event_batch(self, message: EventBatch) -> None:
        hello, serving = self.hello, self.serving
        for event in message.events:
            if isinstance(event, StepEvent):
                self.last_step = event
            elif isinstance(event, ServeEvent):
                self.serving = event.url
            elif isinstance(event, EvalEvent):
                self.last_eval = event
            elif isinstance(event, StateEvent) and (said := parse_hello(event.detail)):
                self.hello = said
        if self.hello is not hello or self.serving != serving:
            self.show_info()
        else:
            self.show_stats()

    def show_info(self) -> None:
        h = self.hello
        baby = one_line(str(h.get("baby", self.baby)), 30)
        if self.serving:  # where outside clients talk to it
            baby += f" ⇄ {self.serving.removeprefix('http://')}"
        self.query_one("#status-baby", Label).update(Content(baby))
        brain = one_line(str(h.get("brain", "")), 20)
        if isinstance(h.get("params"), (int, float)):
            brain += f" {count(h['params'])}"
        self.query_one("#status-brain", Label).update(Content(brain))
        extra = " · ".join(one_line(str(h[k]), 16) for k in ("preset", "device") if h.get(k))
        if h.get("precision") == "bf16":
            extra += " bf16"
        self.query_one("#status-extra", Label).update(Content(extra))
        self.show_stats()

    def show_stats(self) -> None:
        e = self.last_step
        stats: list[tuple[str, str] | str] = []
        if self.last_eval is not None:  # the headline: bits per byte of text it never learns from
            stats += [(f"{self.last_eval.val_bpb:.3f}", "bold"), (" bpb held out", "$text-muted")]
        if e is not None:
            for value, unit in (
                (f"{e.step:,}", "step "),
                (count(e.tokens_seen), " tokens"),
                (duration(e.elapsed_s), ""),
                (count(e.tokens_per_s), " tok/s"),
            ):
                if stats:
                    stats.append("  ")
                stats += (
                    [(unit, "$text-muted"), (value, "bold")]
                    if unit == "step "
                    else [(value, "bold"), (unit, "$text-muted")]
                )
        # layout=False: the stats take the bar's remaining width whatever they say, so no relayout.
        self.query_one("#status-stats", Label).update(Content.assemble(*stats), layout=False)

    def watch_state(self, state: str) -> None:
        if not self.is_mounted:
            return
        label = self.query_one("#status-state", Label)
        for cls in set(STATE_CLASSES.values()):
            label.remove_class(cls)
        label.add_class(STATE_CLASSES.get(state, "-busy"))
        label.update(f"● {state} ")
