"""The chat pane: talk to the baby while it learns, steer how it samples, and look inside its replies
(confidence per token, the alternatives it weighed, what it looked at), live or as an earlier self."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import ClassVar

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.reactive import reactive
from textual.widgets import Input, Static

from babyterm.chat_settings import (
    SETTINGS,
    ChatSettings,
    SettingError,
    help_lines,
    milestone_step,
    weights_label,
)
from babyterm.messages import EventBatch, TrainerCommand
from babyterm.widgets.chat_message import ChatMessage
from babyterm.widgets.inspect_panel import InspectPanel
from babyterm.widgets.settings_line import SettingsLine
from babyterm.xray_text import taught_line
from school.commands import CancelChat, Chat, Correct
from school.events import ChatEvent, InsightEvent, TaughtEvent
from school.options import MAX_PROMPT_CHARS
from school.transcript import export_transcript, parse_since
from soul.chat_log import ChatLine, ChatLog
from soul.milestones import list_milestones
from soul.paths import SoulError

__all__ = ["ChatMessage", "ChatPane"]

HISTORY = 200
"""Messages of earlier sessions shown at launch."""


class ChatPane(Vertical):
    """History, the inspect panel and an input; sends chat, chat_cancel and correct commands up."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(
            "escape",
            "stop_or_leave",
            "stop/leave",
            tooltip="stop the reply; else leave inspect mode; else leave the chat",
        )
    ]

    confidence: reactive[bool] = reactive(False, init=False)
    """Replies coloured by how sure the baby was of each token."""

    def __init__(
        self,
        history: Path | None = None,
        max_tokens: int = 120,
        *,
        milestones: Path | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id)
        self.history = history
        self.milestones = milestones
        self.max_tokens = max_tokens
        self.settings = ChatSettings(max_tokens=max_tokens)
        self.replies: dict[str, ChatMessage] = {}
        self.in_flight: str | None = None
        self.last_reply: str | None = None
        self.prompts: dict[str, str] = {}  # reply id -> what it answered, for the x-ray
        self.taught: list[TaughtEvent] = []  # what taught steers became, for the x-ray's logits

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="chat-history"):
            yield Static(
                "Say something to the baby: it answers with the weights it has right now.", classes="hint"
            )
        yield InspectPanel(self.inspectable, id="inspect")
        yield Input(placeholder="say something…  /help", id="chat-input")
        yield SettingsLine(id="chat-settings")

    def on_mount(self) -> None:
        log = self.query_one("#chat-history", VerticalScroll)
        log.can_focus = False
        log.anchor()
        self.show_settings()
        if self.history is not None:
            skipped: list[str] = []
            lines = ChatLog(self.history).tail(HISTORY, warn=skipped.append)
            self.add(*(self._from_line(line) for line in lines))
            if skipped:
                self.notify(f"{skipped[-1]} ({len(skipped)} in all)", severity="warning", markup=False)

    def _from_line(self, line: ChatLine) -> ChatMessage:
        role, reply_id = line.role, line.reply_id
        message = ChatMessage(role, line.text, step=line.step, reply_id=reply_id, weights=line.weights)
        if role == "baby" and message.reply_id:
            self.last_reply = message.reply_id
        return message

    def add(self, *messages: ChatMessage) -> None:
        if messages:
            self.query(".hint").remove()
        for m in messages:
            if m.role == "baby" and m.reply_id:
                self.replies[m.reply_id] = m
            m.confidence = self.confidence
        self.query_one("#chat-history", VerticalScroll).mount_all(messages)

    def say(self, text: str) -> None:
        """A note from the app itself (/help, /steps), kept in the history until the app closes."""
        self.add(ChatMessage("note", text))

    def show_settings(self) -> None:
        target = weights_label(self.settings.weights)
        self.border_title = f"chat · {target}"
        modes = ["confidence" if self.confidence else "", "inspect" if self.has_class("-inspecting") else ""]
        self.border_subtitle = " · ".join(m for m in modes if m)
        self.query_one(SettingsLine).show(self.settings)

    # -- what the user types ----------------------------------------------------------------------

    @on(Input.Submitted, "#chat-input")
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.clear()
        if text.startswith("/"):
            try:
                self.run_command(text)
            except SettingError as e:  # a bad value is a one-line notice and changes nothing
                self.notify(str(e), severity="warning", markup=False)
        elif text:
            self.ask(text)

    def run_command(self, text: str) -> None:
        name, _, arg = text[1:].partition(" ")
        name, arg = name.lower(), arg.strip()
        if name in SETTINGS:
            said = self.settings.set(name, arg)
            self.show_settings()
            self.notify(said, timeout=2, markup=False)
        elif name == "correct":
            self.correct(arg)
        elif name == "export":
            self.export(arg)
        elif name == "help":
            self.say(help_lines(self.settings, self.confidence))
        elif name in ("conf", "confidence"):
            self.confidence = {"on": True, "off": False}.get(arg.lower(), not self.confidence)
        elif name == "inspect":
            self.inspector.open()
        elif name == "reset":
            self.settings = ChatSettings(max_tokens=self.max_tokens, weights=self.settings.weights)
            self.show_settings()
            self.notify("sampling settings back to their defaults", timeout=2)
        elif name == "steps":
            steps = list_milestones(self.milestones) if self.milestones else []
            listed = ", ".join(f"{s:,}" for s in steps) or "none yet (the first is kept at step 100)"
            self.say(f"milestones: {listed}\n/step N talks to one, /live to the baby now")
        elif name == "step":
            if self.milestones is None:
                raise SettingError("this baby keeps no milestones")
            self.point_at(milestone_step(self.milestones, arg))
        elif name == "live":
            self.point_at(None)
        else:
            raise SettingError(f"unknown chat command /{name}; /help lists them")

    def point_at(self, step: int | str | None) -> None:
        """Which weights answer from now on: a milestone's, the best self's ("best"), or the live ones."""
        self.settings.weights = step
        self.show_settings()
        who = (
            "the live weights"
            if step is None
            else "its best self"
            if isinstance(step, str)
            else f"the baby as it was at step {step:,}"
        )
        self.notify(f"talking to {who}", timeout=3)

    def ask(self, text: str) -> str:
        """Send a message; the reply's pieces will land in a new baby message. Returns the reply id."""
        self.cancel()  # one reply at a time: a new question stops the old answer
        shown = text
        if len(text) > MAX_PROMPT_CHARS:
            text = text[-MAX_PROMPT_CHARS:]
            shown = "…" + text
            said = f"a long message: the baby reads only its last {MAX_PROMPT_CHARS:,} characters"
            self.notify(said, severity="warning", timeout=4)
        reply_id = uuid.uuid4().hex
        reply = ChatMessage("baby", reply_id=reply_id)
        reply.add_class("-streaming")
        self.add(ChatMessage("you", shown), reply)
        self.in_flight = self.last_reply = reply_id
        self.screen.refresh_bindings()
        self.post_message(TrainerCommand(Chat(id=reply_id, text=text, **self.settings.command_fields())))
        return reply_id

    def export(self, arg: str) -> None:
        """`/export FILE.md [--since 2h]`: the whole chat history as Markdown (school.transcript)."""
        target, _, since = arg.partition("--since")
        if not target.strip():
            raise SettingError("/export needs a file name, like /export chat.md")
        if self.history is None:
            raise SettingError("this chat keeps no history to export")
        out = Path(target.strip()).expanduser()
        try:
            when = parse_since(since) if since.strip() else None
            n = export_transcript(self.history, self.history.parent.name, out, when)
        except SoulError as e:
            raise SettingError(str(e)) from None
        self.notify(f"wrote {n} exchange{'s' if n != 1 else ''} to {out}", timeout=4, markup=False)

    def correct(self, text: str) -> None:
        """Tell the baby what its last reply should have been: the correction becomes training text."""
        if not text:
            raise SettingError("write the better reply after /correct")
        if self.last_reply is None:
            raise SettingError("there is no reply to correct yet")
        self.add(ChatMessage("correction", text))
        self.post_message(TrainerCommand(Correct(id=self.last_reply, text=text)))

    def cancel(self) -> bool:
        """Stop the reply in flight, if any; True when there was one."""
        if self.in_flight is None:
            return False
        reply_id, self.in_flight = self.in_flight, None
        self.replies[reply_id].finish(note="stopped")
        self.screen.refresh_bindings()
        self.post_message(TrainerCommand(CancelChat(id=reply_id)))
        return True

    def abandon(self, reply_id: str, why: str) -> None:
        """Close a reply that will never come (the trainer is not running)."""
        if reply_id in self.replies:
            self.replies[reply_id].finish(note=why)
        if self.in_flight == reply_id:
            self.in_flight = None
            self.screen.refresh_bindings()

    def action_stop_or_leave(self) -> None:
        if self.cancel():
            return
        if self.has_class("-inspecting"):
            self.inspector.close()
        else:
            self.screen.set_focus(None)  # back to the app's keys (space, s, l, …)

    def watch_confidence(self, on: bool) -> None:
        for reply in self.replies.values():
            reply.confidence = on
            reply.show()
        self.show_settings()

    # -- inspect mode (the panel does the work; the pane widens for it) ---------------------------

    @property
    def inspector(self) -> InspectPanel:
        return self.query_one(InspectPanel)

    def inspectable(self) -> list[ChatMessage]:
        """Replies that carry token data (this session's; history has none)."""
        return [m for m in self.replies.values() if m.tokens]

    def on_inspect_panel_toggled(self, message: InspectPanel.Toggled) -> None:
        self.set_class(message.active, "-inspecting")
        self.screen.set_class(message.active, "-inspecting")  # a narrow screen gives the pixel's room
        self.show_settings()
        self.screen.refresh_bindings()

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        if self.has_class("-inspecting") and isinstance(event.widget, Input):
            self.inspector.close(keep_focus=True)  # typing again ends the inspection

    # -- events in --------------------------------------------------------------------------------

    def xray_text(self) -> str:
        """What the x-ray reads: the text being typed, else the inspected (or last) exchange."""
        typed = self.query_one("#chat-input", Input).value.strip()
        if typed and not typed.startswith("/"):
            return typed
        selected = self.inspector.selected
        reply_id = selected[0] if selected is not None else self.last_reply
        reply = self.replies.get(reply_id or "")
        if reply is None or not reply.text:
            return ""
        prompt = self.prompts.get(reply.reply_id or "", "")
        return f"{prompt}\n{reply.text}" if prompt else reply.text  # the framing's one-turn case

    def on_event_batch(self, message: EventBatch) -> None:
        for event in message.events:
            if isinstance(event, TaughtEvent):
                self.taught = [*[t for t in self.taught if t.reply_id != event.reply_id][-7:], event]
                self.notify(taught_line(event), title="steering", timeout=6, markup=False)
            elif isinstance(event, InsightEvent):
                self.inspector.take(event)
            elif isinstance(event, ChatEvent):
                self.chat_event(event)

    def chat_event(self, event: ChatEvent) -> None:
        reply = self.replies.get(event.reply_id)
        if reply is None:  # a reply to a question asked elsewhere (or before a restart)
            reply = ChatMessage("baby", reply_id=event.reply_id, step=event.step)
            if event.source == "http":
                reply.note = "to an HTTP client"
            self.add(reply)
        reply.weights = event.weights
        if event.final:
            reply.step = event.step
            self.prompts[event.reply_id] = event.prompt
            reply.finish(event.text, tokens=event.tokens)
            if self.in_flight == event.reply_id:
                self.in_flight = None
                self.screen.refresh_bindings()
        else:
            reply.add_piece(event.text, event.step)
