"""The main screen: watch the baby learn (loss, pixel, scribe) and talk to it (chat pane)."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import Screen
from textual.widgets import Footer

from babyterm.messages import EventBatch, PixelChanged
from babyterm.recall import recall
from babyterm.screens.xray import XRayScreen
from babyterm.widgets.chat import ChatPane
from babyterm.widgets.loss_plot import LossPlot
from babyterm.widgets.loss_stream import STREAM_KINDS, LossStream
from babyterm.widgets.pixel import Pixel
from babyterm.widgets.scribe import KEEP as SCRIBE_KEEP
from babyterm.widgets.scribe import ScribeFeed
from babyterm.widgets.startup import StartupProgress
from babyterm.widgets.status_bar import StatusBar
from school.events import (
    ChatEvent,
    EvalEvent,
    Event,
    InsightEvent,
    PixelEvent,
    ProgressEvent,
    ScribeEvent,
    ServeEvent,
    StateEvent,
    StepEvent,
    TaughtEvent,
)
from soul.paths import BabyPaths


class MainScreen(Screen[None]):
    """Lays out the widgets and hands each the events it owns, one batch per drain."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("c", "focus_chat", "chat", tooltip="talk to the baby (tab too)"),
        Binding("tab", "focus_chat", "chat", show=False, tooltip="talk to the baby"),  # not focus-next
        Binding("escape", "stop_reply", "stop reply", tooltip="stop the reply that is streaming in"),
        Binding("k", "confidence", "conf", tooltip="colour replies by the baby's confidence (/conf)"),
        Binding("i", "inspect", "inspect", tooltip="inspect the last reply token by token (/inspect)"),
        Binding("x", "xray", "x-ray", tooltip="see inside: the typed text, or the reply, through the brain"),
    ]

    def __init__(self, paths: BabyPaths, chat_max_tokens: int = 120, recall: bool = True) -> None:
        super().__init__()
        self.paths = paths
        self.chat_max_tokens = chat_max_tokens
        self.recall = recall  # off when watching: the observer replays the run log itself

    def compose(self) -> ComposeResult:
        yield StatusBar(self.paths.name, id="status")
        yield StartupProgress(id="startup")
        with Horizontal(id="main"):
            with Vertical(id="school"):
                with Horizontal(id="top"):
                    yield LossPlot(id="loss-plot")
                    yield Pixel(id="pixel")
                yield LossStream(id="loss-stream")
                yield ScribeFeed(id="scribe")
            yield ChatPane(self.paths.chat, self.chat_max_tokens, milestones=self.paths.milestones, id="chat")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#loss-stream").border_title = "training"
        self.query_one("#scribe").border_title = "scribe"
        self.watch(self.app, "trainer_state", self.show_state)
        if self.recall:  # the baby's recent past, until its trainer speaks
            self.dispatch(recall(self.paths, SCRIBE_KEEP), past=True)

    def show_state(self, state: str) -> None:
        self.query_one(StatusBar).state = state

    @property
    def chat(self) -> ChatPane:
        return self.query_one(ChatPane)

    def dispatch(self, events: list[Event], past: bool = False) -> None:
        """Route one drain's events: a message per widget, never one per event.

        past: events recalled from the soul, which say nothing about what the trainer does now.
        """
        routes: list[tuple[str, tuple[type[Event], ...]]] = [
            ("#status", (EvalEvent,) if past else (StepEvent, StateEvent, EvalEvent, ServeEvent)),
            ("#startup", () if past else (ProgressEvent, StepEvent, StateEvent)),
            ("#loss-stream", STREAM_KINDS),
            ("#scribe", (ScribeEvent,)),
            ("#chat", (ChatEvent, InsightEvent, TaughtEvent)),
        ]
        # query, not query_one: a drain can land while the app closes and its widgets are gone
        for selector, kinds in routes:
            mine = [e for e in events if isinstance(e, kinds)]
            for widget in self.query(selector) if mine else ():
                widget.post_message(EventBatch(mine))
        train = [(e.step, e.loss) for e in events if isinstance(e, StepEvent)]
        val = [(e.step, e.val_loss) for e in events if isinstance(e, EvalEvent)]
        for plot in self.query(LossPlot) if train or val else ():
            plot.add(train, val)
        pixels = [e for e in events if isinstance(e, PixelEvent)]
        for pixel in self.query(Pixel) if pixels else ():
            pixel.post_message(PixelChanged(pixels[-1]))

    def action_focus_chat(self) -> None:
        self.query_one("#chat-input").focus()

    def action_stop_reply(self) -> None:
        self.chat.cancel()

    def action_confidence(self) -> None:
        self.chat.confidence = not self.chat.confidence

    def action_inspect(self) -> None:
        self.chat.inspector.open()

    def action_xray(self) -> None:
        text = self.chat.xray_text()
        if not text:
            self.notify(
                "nothing to x-ray: type some text, or ask the baby something first", severity="warning"
            )
            return
        weights = self.chat.settings.weights
        self.app.push_screen(XRayScreen(text, "live" if weights is None else weights, self.chat.taught))

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop_reply":  # shown only while a reply is streaming
            chat = self.query(ChatPane)
            return bool(chat) and chat.first().in_flight is not None
        return True
