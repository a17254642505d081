"""Inspect mode: walk the tokens of the replies, see each one's alternatives and what it looked at."""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer

from babyterm.messages import TrainerCommand
from babyterm.text import one_line
from babyterm.widgets.attention_strip import AttentionStrip
from babyterm.widgets.chat_message import ChatMessage
from babyterm.widgets.token_inspector import TokenInspector
from school.commands import Attend, Steer, Teach
from school.events import InsightEvent

ATTEND_DELAY = 0.15
"""Seconds a selection must rest before the trainer is asked what that token looked at."""
KEEP_INSIGHTS = 64


class InspectPanel(Vertical, can_focus=True):
    """Shown and focused while inspecting, so its keys are the ones in play; the chat pane's Escape
    (stop a reply first) closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("left,h", "move(-1)", "token", key_display="←/→", tooltip="inspect: the previous token"),
        Binding("right,l", "move(1)", "token", show=False, tooltip="inspect: the next token"),
        Binding("up", "other_reply(-1)", "reply", key_display="↑/↓", tooltip="inspect: the reply before"),
        Binding("down", "other_reply(1)", "reply", show=False, tooltip="inspect: the reply after"),
        Binding(
            "left_square_bracket",
            "layer(-1)",
            "layer",
            key_display="[/]",
            tooltip="inspect: the layer before (avg before the first)",
        ),
        Binding("right_square_bracket", "layer(1)", "layer", show=False, tooltip="inspect: the next layer"),
        Binding(
            "left_curly_bracket,comma",
            "head(-1)",
            "head",
            key_display="{/}",
            tooltip="inspect: the head before (avg before the first)",
        ),
        Binding(
            "right_curly_bracket,full_stop", "head(1)", "head", show=False, tooltip="inspect: the next head"
        ),
        Binding(
            "1",
            "steer(0)",
            "steer",
            key_display="1-5",
            tooltip="inspect: make this token its alternative 1-5 and regenerate the rest (greedy)",
        ),
        *(
            Binding(
                str(n + 1),
                f"steer({n})",
                "steer",
                show=False,
                tooltip=f"inspect: steer to alternative {n + 1}",
            )
            for n in range(1, 5)
        ),
        Binding("t", "teach", "teach this", tooltip="inspect: a steered reply becomes training text"),
    ]

    class Toggled(Message):
        """Inspect mode began or ended."""

        def __init__(self, active: bool) -> None:
            super().__init__()
            self.active = active

    def __init__(self, replies: Callable[[], list[ChatMessage]], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.replies = replies
        """The replies there are to inspect (those with token data), oldest first."""
        self.selection: tuple[ChatMessage, int] | None = None
        self.insights: OrderedDict[tuple[str, int], InsightEvent] = OrderedDict()
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield TokenInspector(id="token-inspector")
        yield AttentionStrip(id="attention")

    @property
    def selected(self) -> tuple[str, int] | None:
        """(reply id, token index) while inspecting."""
        return None if self.selection is None else (self.selection[0].reply_id, self.selection[1])

    def open(self) -> bool:
        """Select the first token of the newest reply that has token data; False (said) if none has."""
        replies = self.replies()
        if not replies:
            self.notify("no reply to inspect yet: ask the baby something first", severity="warning")
            return False
        self.select(replies[-1], 0)
        self.post_message(self.Toggled(True))
        self.focus()
        return True

    def close(self, keep_focus: bool = False) -> None:
        self._highlight(None)
        if self._timer is not None:
            self._timer.stop()
        if not keep_focus:
            self.screen.set_focus(None)
        self.post_message(self.Toggled(False))

    def _highlight(self, selection: tuple[ChatMessage, int] | None) -> None:
        if self.selection is not None:
            self.selection[0].selected = None
            self.selection[0].show()
        self.selection = selection
        if selection is not None:
            selection[0].selected = selection[1]
            selection[0].show()
            selection[0].scroll_visible()

    def select(self, reply: ChatMessage, index: int) -> None:
        index = max(0, min(index, len(reply.tokens) - 1))
        self._highlight((reply, index))
        self.query_one(TokenInspector).show_token(reply.tokens[index], index, len(reply.tokens))
        strip = self.query_one(AttentionStrip)
        known = self.insights.get((reply.reply_id, index))
        if known is not None:
            strip.show_insight(known)
            return
        strip.waiting()
        if self._timer is not None:  # only the selection the user rests on is asked about
            self._timer.stop()
        self._timer = self.set_timer(ATTEND_DELAY, self._ask)

    def _ask(self) -> None:
        self._timer = None
        selected = self.selected
        if selected is not None and selected not in self.insights:
            reply_id, index = selected
            self.post_message(TrainerCommand(Attend(id=reply_id, index=index)))

    def take(self, event: InsightEvent) -> None:
        """An answer to `attend`: kept, and shown if the user is still on that token."""
        key = (event.reply_id, event.index)
        self.insights[key] = event
        while len(self.insights) > KEEP_INSIGHTS:
            self.insights.popitem(last=False)
        if self.selected == key:
            self.query_one(AttentionStrip).show_insight(event)

    def action_steer(self, choice: int) -> None:
        """Token becomes its alternative `choice` (0-4): the trainer regenerates the reply from there."""
        if self.selection is None:
            return
        reply, index = self.selection
        top = reply.tokens[index].get("top", [])
        if not 0 <= choice < len(top):
            self.notify(f"this token has no alternative {choice + 1}", severity="warning", timeout=3)
            return
        steered_id = uuid.uuid4().hex
        self.post_message(
            TrainerCommand(
                Steer(id=steered_id, reply_id=reply.reply_id, index=index, token_id=top[choice][0])
            )
        )
        self.notify(
            f"steering token {index + 1} to “{one_line(str(top[choice][2]), 20)}”…", timeout=3, markup=False
        )

    def action_teach(self) -> None:
        if self.selection is None:
            return
        reply = self.selection[0]
        if not any(t.get("steered") for t in reply.tokens):
            self.notify(
                "only a steered reply can be taught: steer a token first (1-5)", severity="warning", timeout=4
            )
        elif getattr(self.app, "link", None) is not None and self.app.link.watch:
            self.notify("watching only: a steered reply cannot be taught here", severity="warning", timeout=4)
        else:
            self.post_message(TrainerCommand(Teach(id=reply.reply_id)))

    def action_move(self, delta: int) -> None:
        if self.selection is not None:
            self.select(self.selection[0], self.selection[1] + delta)

    def action_other_reply(self, delta: int) -> None:
        replies = self.replies()
        if self.selection is None or not replies:
            return
        at = replies.index(self.selection[0]) if self.selection[0] in replies else len(replies) - 1
        self.select(replies[max(0, min(at + delta, len(replies) - 1))], self.selection[1])

    def action_layer(self, delta: int) -> None:
        if not self.query_one(AttentionStrip).cycle_layer(delta):
            self._no_heads()

    def action_head(self, delta: int) -> None:
        if not self.query_one(AttentionStrip).cycle_head(delta):
            self._no_heads()

    def _no_heads(self) -> None:
        strip = self.query_one(AttentionStrip)
        why = "babyllm reads through windows, not heads" if strip.event else "still asking the baby"
        self.notify(why, severity="warning", timeout=3)
