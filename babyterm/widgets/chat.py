"""The chat pane: talk to the baby while it learns, watch its reply stream in, stop it, correct it."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Input, Static

from babyterm.messages import EventBatch, TrainerCommand
from babyterm.text import clean
from school.events import ChatEvent
from soul.jsonl import tail_jsonl

HISTORY = 200
"""Messages of earlier sessions shown at launch."""


class ChatMessage(Static):
    """One message; a baby's reply grows piece by piece until its final event (or Escape) closes it."""

    def __init__(
        self, role: str, text: str = "", *, step: int | None = None, reply_id: str = "", weights: str = ""
    ) -> None:
        super().__init__(classes=f"-{role}")
        self.role = role
        self.text = text
        self.step = step
        self.reply_id = reply_id
        self.note = ""
        self.weights = weights
        self.done = role != "baby" or bool(text)

    def on_mount(self) -> None:
        self.show()

    def show(self) -> None:
        header = {"you": "you", "baby": "baby", "correction": "you · correction"}.get(self.role, self.role)
        if self.role == "baby" and self.step is not None:
            header += f" · step {self.step:,}"
        if self.weights not in ("", "live"):
            header += f" · {clean(self.weights)}"  # answered by a milestone, not the live weights
        body = clean(self.text) or ("…" if not self.done else "(no words yet)")
        parts: list[str | tuple[str, str]] = [(header, "$text-muted"), "\n", body]
        if not self.done:
            parts.append(("▍", "$accent"))
        if self.note:
            parts.append((f"  ({self.note})", "$text-muted italic"))
        self.update(Content.assemble(*parts))

    def add_piece(self, piece: str, step: int) -> None:
        if self.done:
            return  # pieces that arrive after Escape stopped the reply
        self.text += piece
        self.step = step
        self.show()

    def finish(self, text: str | None = None, note: str = "") -> None:
        if text:
            self.text = text
        self.note = note or self.note
        self.done = True
        self.remove_class("-streaming")
        self.show()


class ChatPane(Vertical):
    """History and an input; sends chat, chat_cancel and correct commands up to the app."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "stop_or_leave", "stop/leave", tooltip="stop the reply; with none, leave the chat")
    ]

    def __init__(self, history: Path | None = None, max_tokens: int = 120, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.history = history
        self.max_tokens = max_tokens
        self.replies: dict[str, ChatMessage] = {}
        self.in_flight: str | None = None
        self.last_reply: str | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="chat-history"):
            yield Static(
                "Say something to the baby: it answers with the weights it has right now.", classes="hint"
            )
        yield Input(placeholder="say something…  /correct TEXT", id="chat-input")

    def on_mount(self) -> None:
        self.border_title = "chat"
        log = self.query_one("#chat-history", VerticalScroll)
        log.can_focus = False
        log.anchor()
        if self.history is not None:
            self.add(*(self._from_record(r) for r in tail_jsonl(self.history, HISTORY)))

    def _from_record(self, record: dict) -> ChatMessage:
        role, text = str(record.get("role", "?")), str(record.get("text", ""))
        step = record.get("step") if isinstance(record.get("step"), int) else None
        reply_id, weights = str(record.get("reply_id", "")), str(record.get("weights", ""))
        message = ChatMessage(role, text, step=step, reply_id=reply_id, weights=weights)
        if role == "baby" and message.reply_id:
            self.last_reply = message.reply_id
        return message

    def add(self, *messages: ChatMessage) -> None:
        if messages:
            self.query(".hint").remove()
        for m in messages:
            if m.role == "baby" and m.reply_id:
                self.replies[m.reply_id] = m
        self.query_one("#chat-history", VerticalScroll).mount_all(messages)

    @on(Input.Submitted, "#chat-input")
    def submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        event.input.clear()
        if text.startswith("/correct"):
            self.correct(text.removeprefix("/correct").strip())
        elif text.startswith("/"):
            self.notify(
                f"unknown chat command {text.split()[0]!r}; try /correct TEXT",
                severity="warning",
                markup=False,
            )
        elif text:
            self.ask(text)

    def ask(self, text: str) -> str:
        """Send a message; the reply's pieces will land in a new baby message. Returns the reply id."""
        self.cancel()  # one reply at a time: a new question stops the old answer
        reply_id = uuid.uuid4().hex
        reply = ChatMessage("baby", reply_id=reply_id)
        reply.add_class("-streaming")
        self.add(ChatMessage("you", text), reply)
        self.in_flight = self.last_reply = reply_id
        self.screen.refresh_bindings()
        self.post_message(
            TrainerCommand({"cmd": "chat", "id": reply_id, "text": text, "max_tokens": self.max_tokens})
        )
        return reply_id

    def correct(self, text: str) -> None:
        """Tell the baby what its last reply should have been: the correction becomes training text."""
        if not text:
            self.notify("write the better reply after /correct", severity="warning")
            return
        if self.last_reply is None:
            self.notify("there is no reply to correct yet", severity="warning")
            return
        self.add(ChatMessage("correction", text))
        self.post_message(TrainerCommand({"cmd": "correct", "id": self.last_reply, "text": text}))

    def cancel(self) -> bool:
        """Stop the reply in flight, if any; True when there was one."""
        if self.in_flight is None:
            return False
        reply_id, self.in_flight = self.in_flight, None
        self.replies[reply_id].finish(note="stopped")
        self.screen.refresh_bindings()
        self.post_message(TrainerCommand({"cmd": "chat_cancel", "id": reply_id}))
        return True

    def abandon(self, reply_id: str, why: str) -> None:
        """Close a reply that will never come (the trainer is not running)."""
        if reply_id in self.replies:
            self.replies[reply_id].finish(note=why)
        if self.in_flight == reply_id:
            self.in_flight = None
            self.screen.refresh_bindings()

    def action_stop_or_leave(self) -> None:
        if not self.cancel():
            self.screen.set_focus(None)  # back to the app's keys (space, s, l, …)

    def on_event_batch(self, message: EventBatch) -> None:
        for event in message.events:
            if not isinstance(event, ChatEvent):
                continue
            reply = self.replies.get(event.reply_id)
            if reply is None:  # a reply to a question asked elsewhere (or before a restart)
                reply = ChatMessage("baby", reply_id=event.reply_id, step=event.step)
                self.add(reply)
            if event.final:
                reply.step, reply.weights = event.step, event.weights
                reply.finish(event.text)
                if self.in_flight == event.reply_id:
                    self.in_flight = None
                    self.screen.refresh_bindings()
            else:
                reply.add_piece(event.text, event.step)
