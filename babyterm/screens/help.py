"""The help screen: every key of the app, read from the bindings themselves so it never goes stale,
and the chat's /commands."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Static

from babyterm.chat_settings import COMMANDS
from babyterm.screens.logs import LogsScreen
from babyterm.screens.main import MainScreen
from babyterm.screens.race import RaceScreen
from babyterm.screens.xray import XRayScreen
from babyterm.widgets.chat import ChatPane
from babyterm.widgets.inspect_panel import InspectPanel

NAMES = {
    "space": "Space",
    "escape": "Esc",
    "tab": "Tab",
    "question_mark": "?",
    "slash": "/",
    "enter": "Enter",
    "left": "←",
    "right": "→",
    "up": "↑",
    "down": "↓",
    "left_square_bracket": "[",
    "right_square_bracket": "]",
    "left_curly_bracket": "{",
    "right_curly_bracket": "}",
    "comma": "comma",
    "full_stop": "period",
}


def key_name(key: str) -> str:
    *mods, last = key.split("+")
    return "+".join([*(m.capitalize() for m in mods), NAMES.get(last, last.upper() if mods else last)])


def key_rows(bindings: Iterable[BindingType]) -> list[tuple[str, str]]:
    """(keys, what they do), keys of the same action together: `Space, p  pause/resume`."""
    rows: dict[str, list[str]] = {}
    described: dict[str, str] = {}
    for b in bindings:
        if not isinstance(b, Binding):
            continue
        for key in b.key.split(","):
            rows.setdefault(b.action, []).append(key_name(key.strip()))
        described.setdefault(b.action, b.tooltip or b.description or b.action.replace("_", " "))
    return [(", ".join(dict.fromkeys(keys)), described[action]) for action, keys in rows.items()]


class HelpScreen(ModalScreen[None]):
    """A box of every key; Escape or ? closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,question_mark", "dismiss", "close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(self.keys(), id="help-keys")

    def on_mount(self) -> None:
        self.query_one("#help-box").border_title = "babyterm · keys"
        self.query_one("#help-box").border_subtitle = "Esc or ? to close"

    def keys(self) -> Content:
        sections = [
            ("anywhere", [*key_rows(type(self.app).BINDINGS), ("Ctrl+P", "command palette")]),
            ("main screen", key_rows(MainScreen.BINDINGS)),
            (
                "chat",
                [
                    ("Enter", "send your message; the reply streams in"),
                    *key_rows(ChatPane.BINDINGS),
                    *COMMANDS,
                ],
            ),
            ("inspect mode (i or /inspect)", key_rows(InspectPanel.BINDINGS)),
            ("x-ray screen (x)", key_rows(XRayScreen.BINDINGS)),
            ("logs screen", key_rows(LogsScreen.BINDINGS)),
            ("race view (R)", key_rows(RaceScreen.BINDINGS)),
        ]
        parts: list[Content | str | tuple[str, str]] = []
        for title, rows in sections:
            parts += [(title, "bold $accent"), "\n"]
            for keys, what in rows:
                parts += [(f"  {keys:<15}", "bold"), " ", (what, "$text"), "\n"]
            parts.append("\n")
        return Content.assemble(*parts[:-2])
