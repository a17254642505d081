"""The x-ray's token strip: every piece of the text in turn, the chosen one lit, byte pieces marked."""

from __future__ import annotations

from typing import Any

from textual.content import Content
from textual.widgets import Static

from babyterm.xray_text import piece


class XRayTokens(Static):
    """Pieces side by side in two alternating tints (so their edges show); the focused one in accent."""

    def show_tokens(self, tokens: list[dict[str, Any]], focus: int) -> None:
        parts: list[str | tuple[str, str]] = []
        for t in tokens:
            style = "$text-muted" if t["index"] % 2 else "$text"
            if t["byte_fallback"]:
                style = "italic $warning"
            if t["index"] == focus:
                style = "bold reverse $accent"
            parts += [(piece(t["piece"]), style), " "]
        chosen = tokens[focus]
        self.border_title = f"token {focus + 1} of {len(tokens)} · id {chosen['id']}"
        self.update(Content.assemble(*parts))
