"""The x-ray screen: one text through the baby's brain, stage by stage, on its real weights.

The numbers come from the trainer process (torch lives only there): the screen sends an
XRayRequest and draws the XRayEvent that answers it, with babyterm.xray_text's lines.
"""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer

from babyterm.messages import TrainerCommand
from babyterm.text import one_line
from babyterm.widgets.xray_stage import XRayStage
from babyterm.widgets.xray_stages import XRayStages
from babyterm.widgets.xray_tokens import XRayTokens
from babyterm.xray_text import Focus, sentence, stage_lines, taught_line
from school.commands import XRayRequest
from school.events import Event, TaughtEvent, XRayEvent


class XRayScreen(Screen[None]):
    """Keys move the focus: tokens ←/→, layers ↑/↓, heads [/], stages Tab/Shift+Tab."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "app.pop_screen", "back", tooltip="x-ray: back to the main screen"),
        Binding("left", "token(-1)", "token", key_display="←/→", tooltip="x-ray: the previous token"),
        Binding("right", "token(1)", "token", show=False, tooltip="x-ray: the next token"),
        Binding("up", "layer(-1)", "layer", key_display="↑/↓", tooltip="x-ray: the layer before"),
        Binding("down", "layer(1)", "layer", show=False, tooltip="x-ray: the next layer"),
        Binding(
            "left_square_bracket", "head(-1)", "head", key_display="[/]", tooltip="x-ray: the head before"
        ),
        Binding("right_square_bracket", "head(1)", "head", show=False, tooltip="x-ray: the next head"),
        Binding("tab", "stage(1)", "stage", key_display="tab/⇧tab", tooltip="x-ray: the next stage"),
        Binding("shift+tab", "stage(-1)", "stage", show=False, tooltip="x-ray: the stage before"),
    ]

    token: reactive[int] = reactive(0, init=False)
    layer: reactive[int] = reactive(0, init=False)
    head: reactive[int] = reactive(0, init=False)
    stage: reactive[int] = reactive(0, init=False)

    def __init__(
        self, text: str, weights: str | int = "live", taught: list[TaughtEvent] | None = None
    ) -> None:
        super().__init__()
        self.text, self.weights = text, weights
        self.request_id = uuid.uuid4().hex
        self.shot: dict[str, Any] | None = None
        self.taught: list[TaughtEvent] = list(taught or [])
        """Taught steers: each token's chance when taught and, once known, 10 training steps later."""

    def compose(self) -> ComposeResult:
        yield XRayTokens(id="xray-tokens")
        yield XRayStages(id="xray-stages")
        yield XRayStage(id="xray-stage")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(XRayStage).waiting(f"asking the baby for an x-ray of “{one_line(self.text, 80)}”…")
        self.post_message(
            TrainerCommand(XRayRequest(id=self.request_id, text=self.text, weights=self.weights))
        )

    def take(self, events: list[Event]) -> None:
        """Events from the app's drain: this screen's x-ray, and what a taught steer became."""
        for event in events:
            if isinstance(event, XRayEvent) and event.request_id == self.request_id:
                if event.error:
                    self.query_one(XRayStage).waiting(f"no x-ray: {event.error}")
                    continue
                self.shot = event.xray
                self.token = len(self.shot["tokens"]) - 1
                self.draw()
            elif isinstance(event, TaughtEvent):
                self.taught = [t for t in self.taught if t.reply_id != event.reply_id] + [event]
                self.draw()

    # -- drawing --------------------------------------------------------------------------------

    @property
    def stages(self) -> list[str]:
        return [s["name"] for s in self.shot["stages"]] if self.shot else []

    @property
    def focus_now(self) -> Focus:
        return Focus(self.token, self.layer, self.head)

    def draw(self) -> None:
        shot = self.shot
        if shot is None:
            return
        name = self.stages[self.stage]
        self.query_one(XRayTokens).show_tokens(shot["tokens"], self.token)
        self.query_one(XRayStages).show_stages(self.stages, self.stage)
        lines = stage_lines(shot, name, self.focus_now)
        if name == "logits":
            lines += [taught_line(e) for e in self.taught]
        where = f"layer {self.layer} · head {self.head}" if shot["layers"] and name in LAYERED else ""
        title = " · ".join(x for x in (name, shot["brain"], shot["weights"], where) if x)
        self.query_one(XRayStage).show_stage(title, sentence(shot, name), lines)

    def watch_token(self) -> None:
        self.draw()

    watch_layer = watch_head = watch_stage = watch_token

    # -- keys -----------------------------------------------------------------------------------

    def action_token(self, delta: int) -> None:
        if self.shot:
            self.token = max(0, min(self.token + delta, len(self.shot["tokens"]) - 1))

    def action_layer(self, delta: int) -> None:
        if self.shot and self.shot["layers"]:
            self.layer = (self.layer + delta) % len(self.shot["layers"])
            self.head = min(self.head, len(self.shot["layers"][self.layer]["heads"]) - 1)
        elif self.shot:
            self.notify(
                f"the {self.shot['brain']} brain has no stack of layers", severity="warning", timeout=3
            )

    def action_head(self, delta: int) -> None:
        if self.shot and self.shot["layers"]:
            self.head = (self.head + delta) % len(self.shot["layers"][self.layer]["heads"])
        elif self.shot:
            self.notify(
                f"the {self.shot['brain']} brain has no attention heads", severity="warning", timeout=3
            )

    def action_stage(self, delta: int) -> None:
        if self.shot:
            self.stage = (self.stage + delta) % len(self.stages)


LAYERED = ("attention", "mlp", "position")
